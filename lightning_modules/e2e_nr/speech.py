"""E2E-NR's speech input: raw 8 kHz waveforms scaled per utterance before the speech encoder."""

from __future__ import annotations

import torch


def normalise_speech(wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Per utterance: subtract the mean, then divide by the peak; padding stays zero.

    `(B, L)` → `(B, L)`; `lengths` `(B,)` marks each utterance's real samples (all of L when None).
    """
    if lengths is None:
        valid = torch.ones_like(wave, dtype=torch.bool)
    else:
        valid = torch.arange(wave.shape[1], device=wave.device)[None] < lengths.to(wave.device)[:, None]
    count = valid.sum(1, keepdim=True).clamp_min(1)
    centred = (wave - (wave * valid).sum(1, keepdim=True) / count) * valid
    return centred / centred.abs().amax(1, keepdim=True).clamp_min(1e-8)
