"""LPIPS (v0.1) with its ImageNet backbone read from a file the user gives, never downloaded.

The `lpips` wheel ships only the linear heads; the VGG-16 / AlexNet backbone is torchvision's, which it
would fetch from the internet. Here the backbone's torchvision state dict comes from `backbone_weights`
(e.g. `vgg16-397923af.pth`), and is checked key by key; a random backbone is used only when asked (tests,
demo), with a warning, since distances then mean little.
"""

from __future__ import annotations

import warnings

import torch
import torchvision
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from .weights import read_state_dict

BACKBONES = {
    "vgg": (torchvision.models.vgg16, "vgg16-397923af.pth"),
    "alex": (torchvision.models.alexnet, "alexnet-owt-7be5be79.pth"),
}


def build_lpips(
    net: str = "vgg", backbone_weights: str | None = None, allow_random: bool = False
) -> nn.Module:
    """A frozen `lpips.LPIPS` in eval mode taking `(B, 3, H, W)` images in [-1, 1] → `(B, 1, 1, 1)`."""
    import lpips

    if net not in BACKBONES:
        raise ValueError(f"LPIPS net must be one of {sorted(BACKBONES)}, got {net!r}")
    architecture, file_name = BACKBONES[net]
    if backbone_weights is None and not allow_random:
        from ..errors import WeightsError

        raise WeightsError(
            f"LPIPS needs its {net} backbone: put torchvision's {file_name} somewhere and pass its path "
            "(lpips_backbone), or allow a random backbone (tests and demo only)."
        )
    # lpips builds its backbone through torchvision's deprecated `pretrained=`; a random one is seeded so
    # that every process (an interrupted inversion and its resumption) measures the same distance.
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore", UserWarning)
        torch.manual_seed(0)
        distance = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    if backbone_weights is None:
        rank_zero_warn(f"LPIPS: RANDOM {net} backbone (no backbone weights given): distances are not LPIPS.")
    else:
        how_to = f"use torchvision's {file_name}"
        state = read_state_dict(backbone_weights, architecture(), f"torchvision {net}", how_to)
        own = distance.net.state_dict()  # slice<k>.<index in `features`>.<param>
        distance.net.load_state_dict({key: state["features." + key.split(".", 1)[1]] for key in own})
    return distance.eval().requires_grad_(False)
