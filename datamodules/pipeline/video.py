"""Video decoding with PyAV, and explicit frame-rate conversion.

Frame rates are kept as exact `Fraction`s (TCD-TIMIT's 29.97 fps is 30000/1001), so frame ↔ sample
arithmetic in `sync.py` never drifts.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import DatasetError


@dataclass
class DecodedVideo:
    """frames: `(T, H, W, 3)` uint8 RGB; fps: the stream's average frame rate."""

    frames: np.ndarray
    fps: Fraction

    @property
    def seconds(self) -> float:
        return len(self.frames) / float(self.fps)


def read_video(path: str | Path, max_frames: int | None = None) -> DecodedVideo:
    """Decode every frame of the first video stream as RGB.

    Raises:
        DatasetError: naming the file when it cannot be opened, has no video stream or no decodable frame.
    """
    path = Path(path)
    frames: list[np.ndarray] = []
    try:
        fps = _decode_into(frames, path, max_frames)
    except DatasetError:
        raise
    except Exception as error:  # noqa: BLE001 - any decoder failure is the file's fault
        where = f"after {len(frames)} frames" if frames else "before the first frame"
        raise DatasetError(
            f"{path}: the video cannot be decoded ({where}: {type(error).__name__}: {error}). The file is "
            "corrupt or truncated; re-download it or remove it."
        ) from None
    if not frames:
        raise DatasetError(f"{path}: the video stream holds no frames. Re-download the clip or remove it.")
    if fps <= 0:
        raise DatasetError(
            f"{path}: the video stream declares no frame rate. Re-mux it with an explicit rate."
        )
    return DecodedVideo(np.stack(frames), fps)


def _decode_into(frames: list[np.ndarray], path: Path, max_frames: int | None) -> Fraction:
    import av
    import av.logging

    # libav would print decoder complaints straight to stderr; the exception (and our message) carries them.
    av.logging.set_level(av.logging.PANIC)
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise DatasetError(f"{path}: no video stream. Remove the file or re-download the clip.")
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate or stream.guessed_rate or 0)
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    return fps


def parse_fps(value: float | str | Fraction) -> Fraction:
    """`25`, `"30000/1001"` or `29.97` → an exact Fraction (29.97 is read as NTSC's 30000/1001)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str) and "/" in value:
        return Fraction(value)
    rate = Fraction(value).limit_denominator(1001)
    return Fraction(30000, 1001) if abs(float(rate) - 29.97) < 1e-3 else rate


def resample_frame_indices(num_frames: int, source_fps: Fraction, target_fps: Fraction) -> np.ndarray:
    """Source frame shown at each output frame when converting `source_fps` → `target_fps`.

    Output frame k covers [k/target, (k+1)/target) seconds; it takes the source frame on screen at the
    middle of that interval, floor((k + 1/2) · source / target). Output length: floor(T · target / source).
    """
    count = int(Fraction(num_frames) * target_fps / source_fps)
    ratio = source_fps / target_fps
    indices = [int((Fraction(2 * k + 1, 2)) * ratio) for k in range(count)]
    return np.minimum(np.asarray(indices, dtype=np.int64), num_frames - 1)


def convert_fps(video: DecodedVideo, target_fps: Fraction | None) -> DecodedVideo:
    """The same video shown at `target_fps` (frames dropped or repeated); unchanged when None or equal."""
    if target_fps is None or video.fps == target_fps:
        return video
    indices = resample_frame_indices(len(video.frames), video.fps, target_fps)
    return DecodedVideo(video.frames[indices], target_fps)
