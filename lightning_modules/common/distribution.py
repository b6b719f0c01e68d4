"""FID and KID between generated and real faces, on Inception-v3 pool features from a user-given file.

torchmetrics computes both; its default feature extractor would download the TF-ported Inception graph,
which cannot happen offline. Here the features are torchvision's `inception_v3` (the 2048-d average pool
before the classifier), with the ImageNet weights read from a path (`inception_v3_google-0cc3c7bd.pth`).
Published FIDs use the TF graph's weights, so our values are comparable across our runs and systems but
not digit for digit with other papers'. Images are resized to 299×299 and ImageNet-normalised.

FID on few samples is biased upwards (KID is not); both are reported with the sample count, and `compute`
says why when there are too few.
"""

from __future__ import annotations

import warnings
from pathlib import Path
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from .images import unit_to_imagenet

FEATURES = 2048
SIDE = 299
HOW_TO_GET = "use torchvision's Inception-v3 ImageNet weights (inception_v3_google-0cc3c7bd.pth) and pass their path"


class InceptionPool(nn.Module):
    """`(B, 3, H, W)` uint8 RGB → `(B, 2048)` Inception-v3 pool features (the extractor torchmetrics calls)."""

    num_features = FEATURES

    def __init__(self, network: nn.Module):
        super().__init__()
        network.fc = nn.Identity()
        self.network = network.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = F.interpolate(images.float() / 255.0, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
        return self.network(unit_to_imagenet(pixels))


def load_inception(weights: str | Path | None, allow_random: bool = False) -> InceptionPool:
    """The feature extractor with the weights at `weights` (checked key by key), or seeded random weights
    when `allow_random` and no path (tests only)."""
    from .errors import WeightsError
    from .weights import read_state_dict

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        network = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    if weights is None:
        if not allow_random:
            raise WeightsError(f"FID/KID need Inception-v3: {HOW_TO_GET} (inception_weights).")
    else:
        network.load_state_dict(read_state_dict(Path(weights), network, "Inception-v3", HOW_TO_GET))
    return InceptionPool(network)


class Precomputed(nn.Module):
    """Hands features already extracted to torchmetrics' FID/KID, so each image goes through Inception once."""

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

        real, fake = (torch.cat(self.features[side]) if self.features[side] else torch.zeros(0) for side in (True, False))
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
        return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std),
                "fid_kid_images": float(min(len(real), len(fake)))}, {}
