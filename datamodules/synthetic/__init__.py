"""Deterministic synthetic audio-visual speaker datasets, written in the real datasets' on-disk layouts.

No real dataset can be downloaded where this project is tested, so the real loaders and preprocessing run
on these instead. One speaker model (`speakers.py`: voice and face tied by a shared latent), one speech
synthesiser (`speech.py`), one face renderer (`faces.py`) and per-layout writers (`layouts.py`,
`video_layouts.py`) make every layout::

    from datamodules.synthetic import ensure_dataset
    root = ensure_dataset("hq_voxceleb", Path("data/demo/hq_voxceleb"), size="demo")

or from a shell::

    python -m datamodules.synthetic --layout hq_voxceleb --size demo --out data/demo/hq_voxceleb
"""

from .dataset import GENERATOR_VERSION, LAYOUTS, ensure_dataset, generate_dataset, is_generated, read_marker

__all__ = [
    "GENERATOR_VERSION",
    "LAYOUTS",
    "ensure_dataset",
    "generate_dataset",
    "is_generated",
    "read_marker",
]
