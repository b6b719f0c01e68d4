"""Atomic writers for the media files of the synthetic datasets: wav and raw bytes here; mp4 and MPEG-1
come from the shared `pipeline/video_writer.py`."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf

from ..pipeline.files import atomic_path


def write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    """`(T,)` float in [-1, 1] → 16-bit PCM mono wav."""
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(wave, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def video_frame_size(path: Path) -> tuple[int, int]:
    """(height, width) of the first video stream of `path`."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.height, stream.width
