"""Generate a whole synthetic dataset atomically, or reuse one already generated with the same parameters.

A dataset is built in a hidden sibling folder of `root`; `.synthetic.json` is written last and the folder
is then renamed to `root`, so `root` either holds a complete dataset or does not exist (a crash leaves at
most a hidden `.<name>.building-*` folder, removed on the way out when Python can still run).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import broken, clip_layouts, layouts, tcd_timit, video_layouts, youtubers
from .speakers import make_speakers

GENERATOR_VERSION = 1
# Bumped when only the `lips` data changes, so that the `jaw` demo data already on disk stays valid.
# 2: held-out speakers in LRW and AVSpeech, the speaker named in each truth file.
LIPS_VERSION = 2
MARKER = ".synthetic.json"


@dataclass(frozen=True)
class Layout:
    """How to generate one dataset layout: its file writer, its sizes, and its bad-file writer."""

    write: Callable[..., dict[str, int]]
    sizes: dict[str, Any]
    write_broken: Callable[[Path, list, np.random.Generator], list[dict[str, str]]]


LAYOUTS: dict[str, Layout] = {
    "hq_voxceleb": Layout(
        layouts.write_hq_voxceleb, layouts.HQ_VOXCELEB_SIZES, broken.write_broken_hq_voxceleb
    ),
    "lrw": Layout(video_layouts.write_lrw, video_layouts.LRW_SIZES, video_layouts.write_broken_lrw),
    "grid": Layout(video_layouts.write_grid, video_layouts.GRID_SIZES, video_layouts.write_broken_grid),
    "youtubers": Layout(
        youtubers.write_youtubers, youtubers.YOUTUBERS_SIZES, youtubers.write_broken_youtubers
    ),
    "avspeech": Layout(
        clip_layouts.write_avspeech, clip_layouts.AVSPEECH_SIZES, clip_layouts.write_broken_avspeech
    ),
    "tcd_timit": Layout(
        tcd_timit.write_tcd_timit, tcd_timit.TCD_TIMIT_SIZES, tcd_timit.write_broken_tcd_timit
    ),
}


def _layout(name: str, size: str) -> Layout:
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; choose one of {sorted(LAYOUTS)}")
    if size not in LAYOUTS[name].sizes:
        raise ValueError(f"unknown size {size!r} for {name}; choose one of {sorted(LAYOUTS[name].sizes)}")
    return LAYOUTS[name]


def _params(layout: str, size: str, seed: int, articulation: str) -> dict[str, Any]:
    params = {"layout": layout, "size": size, "seed": seed, "generator_version": GENERATOR_VERSION}
    # Only a `lips` dataset records its articulation, so markers written before it existed still match.
    lips = {"articulation": articulation, "lips_version": LIPS_VERSION}
    return params | (lips if articulation != "jaw" else {})


def _matches(marker: dict[str, Any] | None, params: dict[str, Any], broken: bool) -> bool:
    """Whether a `.synthetic.json` describes a dataset made with `params`, with bad files iff `broken`."""
    if marker is None:
        return False
    same_articulation = marker.get("articulation", "jaw") == params.get("articulation", "jaw")
    return (
        all(marker.get(k) == v for k, v in params.items())
        and same_articulation
        and bool(marker.get("broken")) == broken
    )


def read_marker(root: Path) -> dict[str, Any] | None:
    """The `.synthetic.json` of a generated dataset, or None when `root` holds none (or a corrupt one)."""
    try:
        return json.loads((Path(root) / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _check_replaceable(root: Path) -> None:
    """Refuse to replace a folder this generator did not make: it may be someone's real data."""
    if root.exists() and read_marker(root) is None and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"{root} exists and is not a synthetic dataset (no {MARKER}); refusing to overwrite it. "
            "Pass another output folder or delete this one."
        )


def _sibling(root: Path, purpose: str) -> Path:
    return root.parent / f".{root.name}.{purpose}-{os.getpid()}-{time.time_ns()}"


def _move_into_place(built: Path, root: Path, marker: dict[str, Any]) -> None:
    """Rename `built` to `root`, replacing a previous synthetic dataset there.

    When `root` meanwhile received a dataset with the same parameters (another process won the race), that
    one is kept: its files are identical, and a reader may already be using them.
    """
    if not root.exists():
        os.rename(built, root)
    elif read_marker(root) != marker:
        old = _sibling(root, "old")
        os.rename(root, old)
        os.rename(built, root)
        shutil.rmtree(old, ignore_errors=True)


def _build(building: Path, layout: Layout, params: dict[str, Any], with_broken: bool) -> dict[str, Any]:
    size_config = layout.sizes[params["size"]]
    speakers = make_speakers(size_config.speakers, params["seed"])
    files_rng, broken_rng = np.random.default_rng([params["seed"], GENERATOR_VERSION]).spawn(2)
    articulation = params.get("articulation", "jaw")
    progress = params["size"] != "tiny"
    counts = layout.write(building, speakers, size_config, files_rng, progress, articulation)
    bad = layout.write_broken(building, speakers, broken_rng) if with_broken else []
    return {**params, "counts": counts, "size_config": asdict(size_config), "broken": bad}


def generate_dataset(
    layout: str,
    root: Path,
    size: str = "demo",
    seed: int = 0,
    broken: bool = False,
    articulation: str = "jaw",
) -> Path:
    """Write the synthetic `layout` dataset of `size` to `root` and return `root`.

    A previous synthetic dataset at `root` is replaced; any other non-empty folder is left alone and
    `FileExistsError` raised. `broken` adds bad files, listed in `.synthetic.json` under "broken" as
    {"path": relative path, "defect": name} (see `broken.py`). `articulation` is how speech and mouth go
    together (`speech.ARTICULATIONS`); a `lips` dataset also holds each talking clip's truth (`truth.py`).
    """
    spec, root = _layout(layout, size), Path(root).expanduser().absolute()
    _check_replaceable(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    building = _sibling(root, "building")
    building.mkdir()
    try:
        params = _params(layout, size, seed, articulation)
        text = json.dumps(_build(building, spec, params, broken), indent=1) + "\n"
        (building / MARKER).write_text(text)
        _move_into_place(building, root, json.loads(text))
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return root


def is_generated(
    root: Path,
    layout: str,
    size: str = "demo",
    seed: int = 0,
    broken: bool = False,
    articulation: str = "jaw",
) -> bool:
    """Whether `root` holds a complete synthetic dataset made with exactly these parameters."""
    return _matches(read_marker(root), _params(layout, size, seed, articulation), broken)


def ensure_dataset(
    layout: str, root: Path, size: str = "demo", seed: int = 0, articulation: str = "jaw"
) -> Path:
    """`root` if it already holds this dataset (nothing is touched), otherwise generate it first.

    Safe when several processes (e.g. one per GPU) call it at once: each builds privately, the first
    rename wins and the others keep its result.
    """
    root = Path(root).expanduser().absolute()
    if is_generated(root, layout, size, seed, articulation=articulation):
        return root
    try:
        return generate_dataset(layout, root, size, seed, articulation=articulation)
    except OSError:
        if is_generated(
            root, layout, size, seed, articulation=articulation
        ):  # another process finished first
            return root
        raise
