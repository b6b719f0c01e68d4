"""The few test clips `make eval` always leaves for `make compare`'s report, in
`<eval folder>/clips/<launch>_<stage>/`.

Video systems, per clip: `generated.mp4` and `real.mp4` with the clip's speech, and `control.mp4`, the same
clip generated from the next clip's speech, with that speech (so a listener hears what drove it). Face systems
(one face per item): `generated.png`, `real.png` and `speech.wav`, the speech the face was generated from.

`index.json` lists them, with paths relative to the folder:

    {"kind": "video" | "face", "label": "<run>/<stage>",
     "clips": [{"item": 0, "identity": "...", "seconds": 1.2, "generated": "00000_generated.mp4", ...}]}

Written through the same writers as the outside scorers' dump (`sample_dump.py`), each file atomically.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from datamodules.pipeline.files import atomic_write_json

from .metric_suite import GeneratedSample
from .sample_dump import write_png, write_speech_video, write_wav

REPORT_CLIPS = 4  # enough to watch and hear, small enough to copy into every report
INDEX = "index.json"


class ReportClips:
    """Writes the first `count` samples passed through `passing`; `close()` writes the index."""

    def __init__(self, folder: Path, label: str, count: int = REPORT_CLIPS):
        self.folder, self.label, self.count = Path(folder), label, count
        self.kind: str | None = None
        self.clips: list[dict] = []

    def passing(self, samples: Iterable[GeneratedSample]) -> Iterator[GeneratedSample]:
        for sample in samples:
            if len(self.clips) < self.count:
                self.write(sample)
            yield sample

    def write(self, sample: GeneratedSample) -> None:
        speech = sample.audible_speech()
        if speech is None:  # nothing to play it with: no report clip rather than a silent one
            return
        stem = f"{len(self.clips):05d}"
        self.kind = "video" if len(sample.generated) > 1 else "face"
        files = (
            _video_files(sample, self.folder, stem)
            if self.kind == "video"
            else _face_files(sample, speech, self.folder, stem)
        )
        seconds = round(len(speech) / sample.sample_rate, 3)
        entry = {"item": len(self.clips), "identity": sample.identity, "seconds": seconds}
        self.clips.append(entry | {side: path.name for side, path in files.items()})

    def close(self) -> Path | None:
        if not self.clips:
            return None
        index = self.folder / INDEX
        atomic_write_json(index, {"kind": self.kind, "label": self.label, "clips": self.clips})
        return index


def _video_files(sample: GeneratedSample, folder: Path, stem: str) -> dict[str, Path]:
    rate = sample.sample_rate
    files = {
        "generated": write_speech_video(
            folder / f"{stem}_generated.mp4", sample.generated, sample.speech, rate
        ),
        "real": write_speech_video(folder / f"{stem}_real.mp4", sample.real, sample.speech, rate),
    }
    if sample.control is not None and sample.control_speech is not None:
        path = folder / f"{stem}_control.mp4"
        files["control"] = write_speech_video(path, sample.control, sample.control_speech, rate)
    return files


def _face_files(sample: GeneratedSample, speech: np.ndarray, folder: Path, stem: str) -> dict[str, Path]:
    return {
        "generated": write_png(folder / f"{stem}_generated.png", sample.generated[0]),
        "real": write_png(folder / f"{stem}_real.png", sample.real[0]),
        "speech": write_wav(folder / f"{stem}_speech.wav", speech, sample.sample_rate),
    }
