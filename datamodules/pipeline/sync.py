"""Exact audio ↔ video-frame arithmetic.

Video frame k is on screen during [k / fps, (k + 1) / fps) seconds, so it owns audio samples
[floor(k · sr / fps), floor((k + 1) · sr / fps)). Everything is computed with `Fraction`s, so 29.97 fps
(30000/1001) never accumulates rounding drift. Every system's per-frame audio window is one of the
functions below, and `tests/datamodules/test_sync.py` checks their offsets sample by sample.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def frame_start_sample(frame: int, fps: Fraction, sample_rate: int) -> int:
    """First audio sample of video frame `frame`: floor(frame · sr / fps)."""
    return math.floor(Fraction(frame) * sample_rate / Fraction(fps))


def num_samples(num_frames: int, fps: Fraction, sample_rate: int) -> int:
    """Audio samples spanned by `num_frames` frames from frame 0."""
    return frame_start_sample(num_frames, fps, sample_rate)


def frames_span(first_frame: int, num_frames: int, fps: Fraction, sample_rate: int) -> tuple[int, int]:
    """`[start, stop)` samples of frames `first_frame … first_frame + num_frames − 1`."""
    return (
        frame_start_sample(first_frame, fps, sample_rate),
        frame_start_sample(first_frame + num_frames, fps, sample_rate),
    )


def feature_window(frame: int, fps: Fraction, width: int, feature_rate: int = 100) -> tuple[int, int]:
    """`[c − width/2, c + width/2)` feature columns around c = round(rate · (frame + 1/2) / fps).

    TCSAN's MFCC windows: 28 columns at 100 Hz; at 25 fps c = 4k + 2, so frame k reads [4k − 12, 4k + 16).
    Halves round up, so the mapping is the same on every platform.
    """
    centre = math.floor(
        Fraction(feature_rate) * (Fraction(frame) + Fraction(1, 2)) / Fraction(fps) + Fraction(1, 2)
    )
    return centre - width // 2, centre - width // 2 + width


def take(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """`array[start:stop]` along axis 0, zero-filled where the range leaves the array."""
    out = np.zeros((stop - start, *array.shape[1:]), dtype=array.dtype)
    lo, hi = max(start, 0), min(stop, len(array))
    if hi > lo:
        out[lo - start : hi - start] = array[lo:hi]
    return out


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad `(N,)` to exactly `length` samples."""
    return take(wave, 0, length)
