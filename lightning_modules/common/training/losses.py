"""Losses shared by the GAN systems: adversarial terms chosen by `loss_type`, feature matching, L1.

Shapes: logits are any `(B, ...)` tensor (a patch map or one logit per image); losses are scalars.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_TYPES = ("lsgan", "bce", "hinge")


def _check(loss_type: str) -> None:
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")


def lsgan_loss(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Least-squares GAN term: mean (logits − target)² (0 = fake, 1 = real, 0.9 = smoothed real)."""
    return F.mse_loss(logits, torch.full_like(logits, target))


def discriminator_adversarial_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, loss_type: str = "lsgan", real_label: float = 1.0
) -> torch.Tensor:
    """D's loss: push real towards `real_label` (one-sided smoothing when < 1) and fake towards 0."""
    _check(loss_type)
    if loss_type == "lsgan":
        return lsgan_loss(real_logits, real_label) + lsgan_loss(fake_logits, 0.0)
    if loss_type == "bce":
        real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real + fake
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def generator_adversarial_loss(fake_logits: torch.Tensor, loss_type: str = "lsgan") -> torch.Tensor:
    """G's loss on D's verdict for generated samples (non-saturating for `bce`)."""
    _check(loss_type)
    if loss_type == "lsgan":
        return lsgan_loss(fake_logits, 1.0)
    if loss_type == "bce":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return -fake_logits.mean()


def feature_matching_loss(
    real_features: list[torch.Tensor], fake_features: list[torch.Tensor]
) -> torch.Tensor:
    """Mean L1 between D's intermediate features of real (held fixed) and generated samples."""
    if len(real_features) != len(fake_features):
        raise ValueError(f"feature lists differ in length: {len(real_features)} vs {len(fake_features)}")
    terms = [F.l1_loss(fake, real.detach()) for real, fake in zip(real_features, fake_features)]
    return torch.stack(terms).mean()


def mean_feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """MSE between the batch means of D's features (Salimans et al.'s feature matching).

    `(B, C, H, W)` each → scalar; the real statistics are held fixed. Zero when the two batches have the same
    mean feature, even if individual samples differ (unlike `feature_matching_loss`, which pairs samples).
    """
    return F.mse_loss(fake_features.mean(0), real_features.detach().mean(0))
