"""FaceNet (facenet-pytorch InceptionResnetV1) from a user-supplied weights file, with SF2F's preprocessing.

Shared by SF2F's perceptual loss and the identity metrics. The VGGFace2 weights cannot be downloaded
here, so they always come from a path; a random network is available only when asked for explicitly.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from ..errors import WeightsError
from ..images import imagenet_to_unit
from .weights import read_state_dict

FACENET_INPUT = 140  # SF2F resizes the VGG box to 140×140 before FaceNet
VGG_BOX = (0.235, 0.195, 0.765, 0.915)  # left, top, right, bottom as fractions of the image side
HOW_TO_GET = (
    "download facenet-pytorch's VGGFace2 state dict (20180402-114759-vggface2.pt) and pass "
    "--model.init_args.facenet_weights=PATH, or set --model.init_args.perceptual_weight=0 and "
    "--model.init_args.embedder=dlib"
)


def load_facenet(weights_path: str | None, *, allow_random: bool = False) -> nn.Module:
    """InceptionResnetV1 (512-d embedding) in eval mode with frozen parameters.

    Args:
        weights_path: the VGGFace2 state dict; classifier `logits.*` entries are ignored.
        allow_random: with no path, return a randomly initialised network (tests only) instead of failing.
    Raises:
        WeightsError: the file is missing, unreadable or does not fit InceptionResnetV1.
    """
    from facenet_pytorch import InceptionResnetV1

    network = InceptionResnetV1(pretrained=None, classify=False)
    if weights_path is None:
        if not allow_random:
            raise WeightsError(f"FaceNet weights are required (facenet_weights is not set): {HOW_TO_GET}.")
        rank_zero_warn(
            "Using a randomly initialised FaceNet: perceptual loss and identity metrics are not meaningful."
        )
    else:
        network.load_state_dict(
            read_state_dict(
                Path(weights_path),
                network,
                "FaceNet",
                HOW_TO_GET,
                keep=lambda key: not key.startswith("logits."),
            )
        )
    return network.eval().requires_grad_(False)


def vgg_box(size: int) -> tuple[slice, slice]:
    """Rows and columns of the fixed face box; 47×34 at 64 px, 94×68 at 128 px (inclusive bounds)."""
    left, top, right, bottom = (int(fraction * size) for fraction in VGG_BOX)
    return slice(top, bottom + 1), slice(left, right + 1)


class FaceNetFeatures(nn.Module):
    """ImageNet-normalised `(B, 3, S, S)` → FaceNet features at four depths.

    Returns [repeat_1 `(B, 256, 15, 15)`, repeat_2 `(B, 896, 7, 7)`, repeat_3 `(B, 1792, 3, 3)`,
    embedding `(B, 512)` unit-norm], after SF2F's preprocessing: back to pixels, facenet's fixed
    standardisation ((x − 127.5) / 128), the VGG box, bilinear resize to 140×140.
    """

    def __init__(self, facenet: nn.Module):
        super().__init__()
        self.facenet = facenet

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        pixels = imagenet_to_unit(images) * 255.0
        rows, cols = vgg_box(images.shape[-1])
        standardised = (pixels[..., rows, cols] - 127.5) / 128.0
        return F.interpolate(
            standardised, size=(FACENET_INPUT, FACENET_INPUT), mode="bilinear", align_corners=False
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        net, x = self.facenet, self.preprocess(images)
        for name in (
            "conv2d_1a",
            "conv2d_2a",
            "conv2d_2b",
            "maxpool_3a",
            "conv2d_3b",
            "conv2d_4a",
            "conv2d_4b",
        ):
            x = getattr(net, name)(x)
        features = [net.repeat_1(x)]
        features.append(net.repeat_2(net.mixed_6a(features[-1])))
        features.append(net.repeat_3(net.mixed_7a(features[-1])))
        pooled = net.avgpool_1a(net.block8(features[-1])).flatten(1)
        features.append(F.normalize(net.last_bn(net.last_linear(pooled)), dim=-1))
        return features

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, 3, S, S)` → `(B, 512)` unit-norm identity embedding."""
        return self(images)[-1]
