"""VGG-19 perceptual loss (Johnson et al.) from user-supplied ImageNet weights.

torchvision would download the weights at run time, which is impossible here, so they come from a path
(`torchvision.models.vgg19` state dict, e.g. `vgg19-dcbb9e9d.pth`; only `features.*` is used). Without a
path, a system either turns the loss off (and says so) or, in tests, asks for a random network explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from ..errors import WeightsError
from ..images import unit_to_imagenet
from .weights import read_state_dict

RELU_X_1 = (1, 6, 11, 20, 29)  # relu1_1 … relu5_1 in torchvision's vgg19().features
HOW_TO_GET = (
    "download torchvision's ImageNet VGG-19 weights (vgg19-dcbb9e9d.pth, the state dict of "
    "torchvision.models.vgg19) and pass --model.init_args.vgg_weights=PATH"
)


class VGGPerceptual(nn.Module):
    """Mean L1 between VGG-19 activations of two image batches, averaged over `layers` with equal weights.

    Images are `(N, 3, H, W)` in [-1, 1]; they are mapped to [0, 1], ImageNet-normalised and run at their
    own size. The network is frozen (VGG-19's features have no BN or dropout, so train/eval mode is moot).

    Args:
        weights_path: torchvision `vgg19` state dict; None with `allow_random` gives a random VGG (tests).
        layers: indices into `features` whose outputs are compared (default relu1_1 … relu5_1).
    """

    def __init__(
        self, weights_path: str | None, layers: Sequence[int] = RELU_X_1, allow_random: bool = False
    ):
        super().__init__()
        from torchvision.models import vgg19

        network = vgg19(weights=None)
        if weights_path is not None:
            network.load_state_dict(read_state_dict(Path(weights_path), network, "VGG-19", HOW_TO_GET))
        elif not allow_random:
            raise WeightsError(
                f"VGG-19 weights are required for the perceptual loss: {HOW_TO_GET}, or set its weight to 0."
            )
        else:
            rank_zero_warn("Using a randomly initialised VGG-19: the perceptual loss is not meaningful.")
        self.layers = tuple(layers)
        self.features = network.features[: max(self.layers) + 1].eval().requires_grad_(False)

    def activations(self, images: torch.Tensor) -> list[torch.Tensor]:
        x, outputs = unit_to_imagenet((images + 1) / 2), []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.layers:
                outputs.append(x)
        return outputs

    def forward(self, generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        pairs = zip(self.activations(generated), self.activations(real))
        return torch.stack([(a - b.detach()).abs().mean() for a, b in pairs]).mean()
