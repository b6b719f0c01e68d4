"""W+ codes and their residuals (the paper's Eq. 2–3): Δw_i = w_i − w_0, of which only rows 5–7 are learned.

`rows` are 0-based W+ rows (our default reading of the paper's "[5,6,7]"; the 1-based reading is (4, 5, 6)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

DEFAULT_ROWS = (5, 6, 7)


def residual_slice(rows_of_frames: torch.Tensor, w0: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
    """Flattened Δw of the selected rows: `(..., len(rows), 512)` rows of each frame's code and the first
    frame's full code `(..., 16, 512)` (broadcastable) → `(..., len(rows)·512)`."""
    return (rows_of_frames - w0[..., list(rows), :]).flatten(-2)


def compose(w0: torch.Tensor, residual: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
    """Per-frame codes: w0 `(B, 16, 512)` plus residual `(B, N, len(rows)·512)` on `rows` only →
    `(B, N, 16, 512)`; every other row is w0 bit for bit."""
    batch, frames = residual.shape[:2]
    codes = w0[:, None].expand(batch, frames, *w0.shape[1:]).clone()
    codes[:, :, list(rows)] += residual.reshape(batch, frames, len(rows), w0.shape[-1])
    return codes
