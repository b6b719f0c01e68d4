"""E2E-NR's losses (docs/e2e_nr.md): the mouth-weighted reconstruction, the noise-resilience feature loss
and the ½-scaled LSGAN terms of Mao et al.

The mouth mask is rebuilt on the fly from the per-frame mouth centres computed in preprocessing (the
mean of the ground-truth frame's 20 mouth landmarks, `datamodules.pipeline.face_tracks.mouth_centres`):
a 128×128 float image per frame would be far larger in the cache than its two numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..common.training.losses import lsgan_loss

MASK_SIGMA_PX = 9.0  # at 128 px (from the authors' follow-up code; the paper tuned it but gives no value)
MASK_FLOOR = 0.01  # M = G + 0.01: no pixel has zero weight


def mouth_mask(
    centres: torch.Tensor, size: int, sigma: float = MASK_SIGMA_PX, floor: float = MASK_FLOOR
) -> torch.Tensor:
    """Gaussian weight around each frame's mouth centre plus a floor.

    `(B, T, 2)` centres (x, y) in crop pixels → `(B, T, 1, size, size)`, peak 1 + floor at the centre.
    `sigma` is in pixels of a 128-px crop and scales with `size`.
    """
    sigma = sigma * size / 128
    grid = torch.arange(size, device=centres.device, dtype=centres.dtype)
    dx2 = (grid.view(1, 1, 1, size) - centres[..., 0, None, None]) ** 2  # (B, T, 1, S)
    dy2 = (grid.view(1, 1, size, 1) - centres[..., 1, None, None]) ** 2  # (B, T, S, 1)
    return (torch.exp(-(dx2 + dy2) / (2 * sigma**2)) + floor).unsqueeze(2)


def masked_l1(
    generated: torch.Tensor, real: torch.Tensor, mask: torch.Tensor, frame_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """mean |M ⊙ x̂ − M ⊙ x| over every element, skipping padded frames.

    generated, real: `(B, T, 3, S, S)`; mask: `(B, T, 1, S, S)`; frame_mask: `(B, T)` bool (False = padding).
    """
    error = (mask * (generated - real)).abs()
    if frame_mask is None:
        return error.mean()
    weights = frame_mask.to(error.dtype)[..., None, None, None].expand_as(error)
    return (error * weights).sum() / weights.sum().clamp_min(1.0)


# How L_NR compares the branches. "paper": the paper's MSE, with gradients into both branches, which the
# encoder can also lower by pulling the clean features towards the noisy ones, i.e. by hearing less of the
# speech (the conv features' time-std fell 2.3e-2 → 1.0e-2 in a 120-step demo probe; 2.5e-2 without L_NR).
# "clean_target": the clean features are a fixed target (stop-gradient); only the noisy branch moves.
# "relative": the clean-target MSE over the clean features' variance over time (a feature noise-to-signal
# ratio), so γ keeps its meaning while the features grow by orders of magnitude during training.
NR_FORMS = ("paper", "clean_target", "relative")


def noise_resilience_loss(
    clean_features: torch.Tensor, noisy_features: torch.Tensor, form: str = "relative", time_axis: int = 2
) -> torch.Tensor:
    """The distance between the speech encoder's features of clean speech and of its noisy mixture
    in one of the `NR_FORMS`; `time_axis` is the features' time axis (for "relative")."""
    if form not in NR_FORMS:
        raise ValueError(f"form must be one of {NR_FORMS}, got {form!r}")
    if form == "paper":
        return F.mse_loss(noisy_features, clean_features)
    target = clean_features.detach()
    error = F.mse_loss(noisy_features, target)
    if form == "clean_target":
        return error
    return error / target.var(dim=time_axis).mean().clamp_min(1e-12)


def feature_time_std(features: torch.Tensor, time_axis: int) -> torch.Tensor:
    """How much the speech features vary over time: their standard deviation along `time_axis`, averaged
    over the other axes. A feature stream that stops varying carries no speech to the mouth (a collapse
    the noise-resilience loss can cause by pulling clean and noisy features together)."""
    return features.float().std(dim=time_axis).mean()


def half_lsgan_discriminator(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """½ E[(D(real) − 1)²] + ½ E[D(fake)²]."""
    return 0.5 * (lsgan_loss(real_scores, 1.0) + lsgan_loss(fake_scores, 0.0))


def half_lsgan_generator(fake_scores: torch.Tensor) -> torch.Tensor:
    """½ E[(D(fake) − 1)²]."""
    return 0.5 * lsgan_loss(fake_scores, 1.0)
