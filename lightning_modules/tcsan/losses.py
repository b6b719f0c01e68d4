"""TCSAN's losses (docs/tcsan.md). Frames are `(B, T, 3, H, W)` in [-1, 1]; `frame_mask` `(B, T)` bool
marks real (not padded) frames, and every mean runs over those frames only.

Total (Eq. 11): L = 1.5·L_rec + 1.5·L_id + 0.07·L_per + 0.02·L_au.
"""

from __future__ import annotations

import numpy as np
import torch

PROBABILITY_FLOOR = 1e-6


def masked_frame_l1(generated: torch.Tensor, real: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """L_rec (Eq. 9): mean |F̂ − F| over the valid frames' pixels and channels."""
    return (generated - real).abs()[frame_mask].mean()


def upper_half_l1(generated: torch.Tensor, identity: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """L_id (Eq. 10): mean |F̂ − I_id| over the upper half (rows [0, H/2)) of every valid frame.

    `generated` `(B, T, 3, H, W)`, `identity` `(B, 3, H, W)`; rows ≥ H/2 get no gradient.
    """
    rows = generated.shape[-2] // 2
    return (generated[..., :rows, :] - identity[:, None, :, :rows, :]).abs()[frame_mask].mean()


MIN_RATE = 0.05


def au_class_weights(rates) -> torch.Tensor:
    """w_i = (1/r_i)·n / Σ_j (1/r_j) from the training set's occurrence rates `(n,)`; Σ w_i = n.

    Rates below 5 % count as 5 % (a guard the paper's data never trips), so an AU that is rare or absent
    in a small training set cannot take nearly all the weight from the others.
    """
    inverse = 1.0 / torch.as_tensor(np.asarray(rates, np.float64)).clamp_min(MIN_RATE)
    return (inverse * len(inverse) / inverse.sum()).float()


def weighted_bce(probabilities: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Eq. 5: −(1/n) Σ_i w_i [y_i log ŷ_i + (1 − y_i) log(1 − ŷ_i)] per sample, averaged over samples.

    `(N, n)` probabilities and 0/1 targets, `(n,)` weights; ŷ is clamped to [1e-6, 1 − 1e-6].
    """
    p = probabilities.clamp(PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    per_label = -(targets * p.log() + (1 - targets) * (1 - p).log())
    return (per_label * weights).mean(-1).mean()


def weighted_dice(
    probabilities: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    smooth: float = 1.0,
    pooled: bool = False,
) -> torch.Tensor:
    """Eq. 6: (1/n) Σ_i w_i [1 − (2 y_i ŷ_i + ε) / (y_i² + ŷ_i² + ε)], ε = `smooth`.

    Per sample and then averaged (the paper's form), or with `pooled` summing numerator and denominator
    over the samples per label first (JAA-Net's code).
    """
    numerator, denominator = 2 * targets * probabilities, targets**2 + probabilities**2
    if pooled:
        numerator, denominator = numerator.sum(0, keepdim=True), denominator.sum(0, keepdim=True)
    per_label = 1 - (numerator + smooth) / (denominator + smooth)
    return (per_label * weights).mean(-1).mean()


def au_loss(
    probabilities: torch.Tensor,
    targets: torch.Tensor,
    valid: torch.Tensor,
    weights: torch.Tensor,
    pooled_dice: bool = False,
) -> torch.Tensor:
    """L_au = L_bce + L_dice over the valid samples: `(..., n)` probabilities and targets, `(...)` bool
    valid. Zero (with a graph) when no sample is valid."""
    p, y = probabilities[valid], targets[valid].to(probabilities.dtype)
    if len(p) == 0:
        return probabilities.sum() * 0.0
    weights = weights.to(p)
    return weighted_bce(p, y, weights) + weighted_dice(p, y, weights, pooled=pooled_dice)
