"""SF2F's own loss: the FaceNet perceptual loss L_P. Generic GAN losses live in common/training/."""

from __future__ import annotations

import torch
from torch import nn

from ..common.pretrained.facenet import FaceNetFeatures

LAYER_WEIGHTS = (1 / 16, 1 / 8, 1 / 4, 1.0)  # repeat_1, repeat_2, repeat_3, embedding (authors' code)


class FaceNetPerceptualLoss(nn.Module):
    """L_P = Σ_l w_l · mean|φ_l(fake) − φ_l(real)| over FaceNet features; the real side carries no gradient.

    Both inputs are ImageNet-normalised `(B, 3, S, S)`; the result is a scalar.
    """

    def __init__(self, features: FaceNetFeatures, layer_weights: tuple[float, ...] = LAYER_WEIGHTS):
        super().__init__()
        self.features, self.layer_weights = features, layer_weights

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = self.features(real)
        terms = [
            w * (f - t).abs().mean() for w, f, t in zip(self.layer_weights, self.features(fake), targets)
        ]
        return torch.stack(terms).sum()
