"""Test outputs written for outside scorers (`make eval … DUMP=1`): syncnet_python runs on videos with their
audio, pytorch-fid and clean-fid on two flat folders of images.

Layout under the dump folder:

    videos/<item>_<identity>_generated.mp4   generated clip with the clip's speech muxed in (video systems)
    videos/<item>_<identity>_real.mp4        the ground-truth clip with the same speech
    frames/generated/<item>_<frame>.png       every generated frame (faces: one per item)
    frames/real/<item>_<frame>.png            every real frame (faces: the speaker's real pictures)
    index.csv                                 item, identity, the files above, frame count, seconds of speech
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.pipeline.files import atomic_path, atomic_write_csv

from .metric_suite import GeneratedSample

FPS = 25  # every video system here generates 25 fps


class SampleDump:
    """Writes each sample passed through `passing`; `close()` writes the index."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.rows: list[dict] = []

    def passing(self, samples: Iterator[GeneratedSample]) -> Iterator[GeneratedSample]:
        for sample in samples:
            self.write(sample)
            yield sample

    def write(self, sample: GeneratedSample) -> None:
        item = f"{len(self.rows):05d}"
        stem = f"{item}_{safe_name(sample.identity)}"
        row = {
            "item": item,
            "identity": sample.identity,
            "generated_video": "",
            "real_video": "",
            "frames": len(sample.generated),
            "speech_seconds": "",
        }
        if sample.paired and sample.speech is not None:
            videos = self.folder / "videos"
            for side, frames in (("generated", sample.generated), ("real", sample.real)):
                path = videos / f"{stem}_{side}.mp4"
                write_speech_video(path, frames, sample.speech, sample.sample_rate)
                row[f"{side}_video"] = str(path.relative_to(self.folder))
            row["speech_seconds"] = f"{len(sample.speech) / sample.sample_rate:.2f}"
        for side, frames in (("generated", sample.generated), ("real", sample.real)):
            folder = self.folder / "frames" / side
            for index, frame in enumerate(frames):
                write_png(folder / f"{item}_{index:04d}.png", frame)
        self.rows.append(row)

    def close(self) -> Path:
        index = self.folder / "index.csv"
        columns = ["item", "identity", "generated_video", "real_video", "frames", "speech_seconds"]
        atomic_write_csv(index, columns, self.rows)
        return index


def safe_name(text: str) -> str:
    """A file-name-safe form of an identity label."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))[:60]


def write_speech_video(path: Path, frames: np.ndarray, speech: np.ndarray, sample_rate: int) -> Path:
    """`frames` `(T, H, W, 3)` uint8 as an H.264 + AAC mp4 at 25 fps with `speech` muxed in (written
    atomically). Headless Chromium plays these as they are (`tests/browser/test_compare_report.py`)."""
    from datamodules.pipeline.video_writer import write_mp4

    write_mp4(path, _even(frames), fps=FPS, audio=speech, sample_rate=sample_rate)
    return path


def write_png(path: Path, image: np.ndarray) -> Path:
    with atomic_path(path) as partial:
        Image.fromarray(image).save(partial, format="PNG")
    return path


def write_wav(path: Path, speech: np.ndarray, sample_rate: int) -> Path:
    """16-bit PCM: every browser's <audio> plays it."""
    import soundfile as sf

    with atomic_path(path) as partial:
        sf.write(
            partial, np.clip(np.asarray(speech, np.float32), -1.0, 1.0), sample_rate, "PCM_16", format="WAV"
        )
    return path


def _even(frames: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides: crop one row/column where a side is odd."""
    height, width = frames.shape[1] - frames.shape[1] % 2, frames.shape[2] - frames.shape[2] % 2
    return frames[:, :height, :width]
