"""FID and KID between generated and real faces, on Inception-v3 pool features from a user-given file.

torchmetrics computes both; its default feature extractor would download an Inception graph, which cannot
happen offline, so the features come from one of two Inception-v3 networks read from a path:

- **TF-Inception** (`pt_inception-2015-12-05-6726825d.pth`, the file pytorch-fid releases): the 2015
  TensorFlow graph that published FIDs use (pytorch-fid, clean-fid, SF2F's TF script). It differs from
  torchvision's network in its 1008-way classifier, in the average pools of the A, C and first E blocks,
  which divide by the number of pixels inside the image rather than by 9 (TensorFlow's padding rule), and in
  the last E block, whose pool branch takes the maximum. Pixels are scaled to [-1, 1]. With this file FID
  is computed as pytorch-fid computes it (`tests/common/test_fid_reference.py` checks the agreement).
- **torchvision's Inception-v3** (`inception_v3_google-0cc3c7bd.pth`), the fallback: ImageNet-normalised
  pixels; comparable across our runs and systems, not with published numbers. The metric notes say which.

Both resize to 299×299 (bilinear, no corner alignment) from [0, 1] floats. FID on few samples is biased
upwards (KID is not); both are reported with the sample count, and `compute` says why when there are too few.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models import inception as tv_inception

from ..images import unit_to_imagenet

FEATURES = 2048
SIDE = 299


def _tf_average_pool(features: torch.Tensor) -> torch.Tensor:
    """3×3 mean over the pixels inside the image (TensorFlow's SAME padding does not count the border)."""
    return F.avg_pool2d(features, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _tf_max_pool(features: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(features, kernel_size=3, stride=1, padding=1)


class _TFPoolBranch:
    """Mixin for torchvision's Inception blocks: the pool branch (the last one `_forward` returns) is
    recomputed from the block input with the TF graph's pooling."""

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return _tf_average_pool(features)

    def _forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        branches = super()._forward(features)
        branches[-1] = self.branch_pool(self.pool(features))
        return branches


class TFInceptionA(_TFPoolBranch, tv_inception.InceptionA):
    pass


class TFInceptionC(_TFPoolBranch, tv_inception.InceptionC):
    pass


class TFInceptionE(_TFPoolBranch, tv_inception.InceptionE):
    """Mixed_7b (1280 inputs) average-pools; Mixed_7c, the last block (2048 inputs), max-pools in the
    graph."""

    def __init__(self, in_channels: int, **kwargs):
        super().__init__(in_channels, **kwargs)
        self.last_block = in_channels == FEATURES

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return _tf_max_pool(features) if self.last_block else _tf_average_pool(features)


def tf_network() -> nn.Module:
    blocks = [
        tv_inception.BasicConv2d,
        TFInceptionA,
        tv_inception.InceptionB,
        TFInceptionC,
        tv_inception.InceptionD,
        TFInceptionE,
        tv_inception.InceptionAux,
    ]
    return tv_inception.Inception3(
        num_classes=1008, aux_logits=False, init_weights=False, inception_blocks=blocks
    )


def _torchvision_network() -> nn.Module:
    return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)


def _unit_to_symmetric(images: torch.Tensor) -> torch.Tensor:
    return images * 2 - 1


@dataclass(frozen=True)
class InceptionVariant:
    """One Inception-v3 FID/KID can use: its network, input scaling, released file and what it compares
    with."""

    setting: str  # the MetricSettings field holding its path
    released_file: str
    build: Callable[[], nn.Module]
    normalise: Callable[[torch.Tensor], torch.Tensor]
    how_to_get: str
    note: str


TF_INCEPTION = InceptionVariant(
    "fid_inception_weights",
    "pt_inception-2015-12-05-6726825d.pth",
    tf_network,
    _unit_to_symmetric,
    "download pytorch-fid's TF-Inception weights (pt_inception-2015-12-05-6726825d.pth, docs/weights.md)",
    "TF-Inception pool features (pytorch-fid's pt_inception-2015-12-05 weights): "
    "comparable with published FID",
)
TORCHVISION_INCEPTION = InceptionVariant(
    "inception_weights",
    "inception_v3_google-0cc3c7bd.pth",
    _torchvision_network,
    unit_to_imagenet,
    "use torchvision's Inception-v3 ImageNet weights (inception_v3_google-0cc3c7bd.pth)",
    "torchvision Inception-v3 pool features (fallback; not pytorch-fid's TF-Inception: not comparable with "
    "published FID)",
)


class InceptionPool(nn.Module):
    """`(B, 3, H, W)` uint8 RGB → `(B, 2048)` Inception-v3 pool features (the extractor torchmetrics
    calls)."""

    num_features = FEATURES

    def __init__(self, network: nn.Module, normalise: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        network.fc = nn.Identity()
        self.network = network.eval().requires_grad_(False)
        self.normalise = normalise

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = F.interpolate(
            images.float() / 255.0, size=(SIDE, SIDE), mode="bilinear", align_corners=False
        )
        return self.network(self.normalise(pixels))


def load_inception(
    weights: str | Path | None, variant: InceptionVariant = TF_INCEPTION, allow_random: bool = False
) -> InceptionPool:
    """`variant`'s feature extractor with the weights at `weights` (checked key by key), or seeded random
    weights when `allow_random` and no path (tests only)."""
    from ..errors import WeightsError
    from ..pretrained.weights import read_state_dict

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        network = variant.build()
    if weights is None:
        if not allow_random:
            raise WeightsError(
                f"FID/KID need Inception-v3: {variant.how_to_get} and pass its path ({variant.setting})."
            )
    else:
        network.load_state_dict(read_state_dict(Path(weights), network, "Inception-v3", variant.how_to_get))
    return InceptionPool(network, variant.normalise)


class Precomputed(nn.Module):
    """Hands features already extracted to torchmetrics' FID/KID, so each image goes through Inception
    once."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class FeatureDistance:
    """FID and KID (torchmetrics) of generated vs real images, fed batch by batch.

    Args:
        extractor: `(B, 3, H, W)` uint8 → `(B, D)` with a `num_features` attribute (e.g. `InceptionPool`).
        kid_subset_size: images per KID subset (torchmetrics' default 1000, lowered to what there is).
    """

    def __init__(self, extractor: nn.Module, kid_subset_size: int = 1000):
        self.extractor, self.kid_subset_size = extractor, kid_subset_size
        self.features: dict[bool, list[torch.Tensor]] = {True: [], False: []}

    @torch.no_grad()
    def update(self, images: torch.Tensor, real: bool) -> None:
        """`images`: `(B, 3, H, W)` uint8 RGB (any side; the extractor resizes)."""
        self.features[real].append(self.extractor(images).double().cpu())

    def compute(self) -> tuple[dict[str, float], dict[str, str]]:
        """(values, {metric: why it could not be computed})."""
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        real, fake = (
            torch.cat(self.features[side]) if self.features[side] else torch.zeros(0)
            for side in (True, False)
        )
        if min(len(real), len(fake)) < 2:
            reason = f"needs ≥ 2 real and generated images, had {len(real)} and {len(fake)}"
            return {}, {"fid": reason, "kid": reason}
        dimension = real.shape[1]
        subset = min(self.kid_subset_size, len(real), len(fake))
        fid = FrechetInceptionDistance(feature=Precomputed(dimension)).double()
        with warnings.catch_warnings():  # "KID keeps all features in memory": these are already in memory
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelInceptionDistance(feature=Precomputed(dimension), subset_size=subset)
        for metric in (fid, kid):
            metric.update(real, real=True)
            metric.update(fake, real=False)
        kid_mean, kid_std = kid.compute()
        return {
            "fid": float(fid.compute()),
            "kid": float(kid_mean),
            "kid_std": float(kid_std),
            "fid_kid_images": float(min(len(real), len(fake))),
        }, {}
