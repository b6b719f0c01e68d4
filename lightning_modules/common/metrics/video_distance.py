"""FVD: the Fréchet distance between I3D features of generated and real 16-frame clips.

Computed as StyleGAN-V computes it (universome/stylegan-v, commit 3fecd69c602e1cda204357201461c0fb0a634909,
`src/metrics/frechet_video_distance.py` and `src/metrics/metric_utils.py`), the implementation most video
papers now report:

- a clip is 16 consecutive frames, handed to the detector as `(N, 3, 16, H, W)` uint8 in [0, 255];
- the detector is called with `rescale=True, resize=True, return_features=True`: the TorchScript network
  itself maps the pixels to [-1, 1] and resizes the frames to 224×224, so giving it the reference's uint8
  input gives the reference's scaling whatever the file does inside;
- its `(N, 400)` float32 features are summed in float64; the covariance divides by N, not N − 1
  (`FeatureStats.get_mean_cov`), which pytorch-fid's FID does not do;
- FVD = |μg − μr|² + tr(Σg + Σr − 2 (Σg Σr)^½), the same Fréchet distance torchmetrics computes for our FID.

Where the clips come from differs: StyleGAN-V takes one clip per video (real ones at a random offset); here
each frame-aligned clip is cut into consecutive 16-frame windows from its first frame (a tail shorter than 16
frames is left out), the same windows of the generated and of the real clip.
`tests/common/test_fvd_reference.py` checks the agreement with StyleGAN-V's own code.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.image.fid import _compute_fid

CLIP_FRAMES = 16
DETECTOR_KEYWORDS = {"rescale": True, "resize": True, "return_features": True}


def clip_windows(frames: np.ndarray, length: int = CLIP_FRAMES) -> np.ndarray:
    """`(T, H, W, 3)` → `(T // length, length, H, W, 3)`: consecutive windows from frame 0."""
    count = len(frames) // length
    return frames[: count * length].reshape(count, length, *frames.shape[1:])


def detector_input(windows: np.ndarray) -> torch.Tensor:
    """`(N, T, H, W, 3)` uint8 → `(N, 3, T, H, W)` uint8, the layout StyleGAN-V gives the detector."""
    return torch.from_numpy(np.ascontiguousarray(windows)).permute(0, 4, 1, 2, 3).contiguous()


def gaussian_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(N, D)` features → mean `(D,)` and covariance `(D, D)` over N (StyleGAN-V's), in float64."""
    wide = features.double()
    mean = wide.mean(0)
    return mean, wide.T @ wide / len(wide) - torch.outer(mean, mean)


def frechet_video_distance(generated: torch.Tensor, real: torch.Tensor) -> float:
    """FVD of `(N, D)` generated against `(M, D)` real clip features."""
    return float(_compute_fid(*gaussian_statistics(generated), *gaussian_statistics(real)))


class FrechetVideoDistance:
    """FVD of generated vs real clips, fed clip by clip.

    Args:
        detector: StyleGAN-V's I3D (`pretrained/i3d.load_i3d`) or a network with its call signature.
        batch_size: windows per detector call (I3D on 224×224×16 clips is heavy on a CPU).
    """

    def __init__(self, detector: torch.nn.Module, batch_size: int = 4):
        self.detector, self.batch_size = detector, batch_size
        self.features: dict[bool, list[torch.Tensor]] = {True: [], False: []}
        self.clips = 0
        self.longest = 0

    @torch.no_grad()
    def update(self, generated: np.ndarray, real: np.ndarray) -> None:
        """`generated`, `real`: `(T, H, W, 3)` uint8 RGB frames of one clip and of its ground truth."""
        self.clips += 1
        self.longest = max(self.longest, min(len(generated), len(real)))
        for is_real, frames in ((False, generated), (True, real)):
            windows = clip_windows(frames)
            for start in range(0, len(windows), self.batch_size):
                batch = detector_input(windows[start : start + self.batch_size])
                self.features[is_real].append(self.detector(batch, **DETECTOR_KEYWORDS).float().cpu())

    def compute(self) -> tuple[dict[str, float], dict[str, str]]:
        """({fvd, fvd_clips} or nothing, {"fvd": why not})."""
        real, generated = (
            torch.cat(self.features[side]) if self.features[side] else torch.zeros(0, 0)
            for side in (True, False)
        )
        if min(len(real), len(generated)) < 2:
            return {}, {
                "fvd": f"needs ≥ 2 windows of {CLIP_FRAMES} frames on each side, had {len(generated)} "
                f"generated and {len(real)} real (from {self.clips} clips, the longest {self.longest} frames)"
            }
        return {
            "fvd": frechet_video_distance(generated, real),
            "fvd_clips": float(min(len(real), len(generated))),
        }, {}
