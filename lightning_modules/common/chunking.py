"""Long inputs made a chunk at a time, each chunk computed from a window widened by the context its outputs
need (E2E-NR's speech encoder, TCSAN's temporal convolutions, A2V's Wav2Vec2 and Embed2Lat)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple


class Chunk(NamedTuple):
    """Frames [start, stop) computed from the window [first, last); keep [start - first, stop - first)."""

    start: int
    stop: int
    first: int
    last: int


def widened_chunks(total: int, chunk_frames: int, margin: int) -> Iterator[Chunk]:
    """Consecutive chunks of `chunk_frames` over `total` frames, each window widened by `margin` frames on
    either side and clipped to [0, total)."""
    for start in range(0, total, chunk_frames):
        stop = min(start + chunk_frames, total)
        yield Chunk(start, stop, max(0, start - margin), min(total, stop + margin))
