"""Known answer: our FVD equals StyleGAN-V's own computation, and FVD's weights are checked and explained.

The I3D file cannot be downloaded here, so both implementations run the same tiny TorchScript stand-in with
I3D's call signature (`TinyI3D`: it scales, resizes and embeds as its keywords say). The expected value was
computed once by StyleGAN-V's code (universome/stylegan-v at 3fecd69c602e1cda204357201461c0fb0a634909:
`src.metrics.frechet_video_distance.compute_fvd` with `generator_as_dataset`, its data loader, `FeatureStats`
and `scipy.linalg.sqrtm`), fed this file's stand-in through its detector cache and this file's windows as two
datasets of 16-frame clips.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_modules.common.errors import WeightsError
from lightning_modules.common.metrics.metric_suite import GeneratedSample, MetricSettings, MetricSuite
from lightning_modules.common.metrics.video_distance import (
    CLIP_FRAMES,
    FrechetVideoDistance,
    clip_windows,
)
from lightning_modules.common.pretrained.i3d import load_i3d

# StyleGAN-V 3fecd69c, run once on `clips()` with `TinyI3D` (see the module docstring).
STYLEGAN_V_FVD = 2.3698454980682997
CLIPS, FRAMES, SIDE = 9, 40, 24  # two 16-frame windows per clip (8-frame tails left out): 18 per side


class TinyI3D(torch.nn.Module):
    """I3D's call signature on a small fixed network: `(N, 3, T, H, W)` → `(N, 8)` features."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, kernel_size=(3, 4, 4), stride=(2, 4, 4))
        self.head = torch.nn.Linear(8, 8)
        with torch.no_grad():  # weights from a formula: the same on every machine and torch version
            for index, parameter in enumerate(self.parameters()):
                wave = torch.sin(torch.arange(parameter.numel(), dtype=torch.float32) * (0.7 + index))
                parameter.copy_(0.5 * wave.reshape(parameter.shape))

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        x = x.float()
        if rescale:
            x = x / 127.5 - 1
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 32, 32), mode="trilinear", align_corners=False)
        features = 30 * self.head(torch.relu(self.conv(x)).mean((2, 3, 4)))
        return features if return_features else features.softmax(1)


def save_tiny_i3d(path) -> str:
    torch.jit.script(TinyI3D()).save(str(path))
    return str(path)


def clips() -> tuple[np.ndarray, np.ndarray]:
    """(generated, real), each `(CLIPS, FRAMES, SIDE, SIDE, 3)` uint8: moving colour blocks; the generated
    ones brighter, noisier and half as fast."""
    rng = np.random.default_rng(0)
    blocks = np.kron(rng.uniform(40, 200, size=(CLIPS, 1, 6, 12, 3)), np.ones((1, 1, 4, 4, 1)))
    shifts = np.arange(FRAMES)
    real = np.stack([np.roll(blocks[:, 0], s, axis=2)[:, :, :SIDE] for s in shifts], axis=1)
    slow = np.stack([np.roll(blocks[:, 0], s // 2, axis=2)[:, :, :SIDE] for s in shifts], axis=1)
    generated = slow + 20 + rng.normal(0, 12, size=slow.shape)
    return tuple(np.clip(v, 0, 255).astype(np.uint8) for v in (generated, real))


def test_fvd_agrees_with_stylegan_v(tmp_path):
    fvd = FrechetVideoDistance(load_i3d(save_tiny_i3d(tmp_path / "i3d_torchscript.pt")))
    for generated, real in zip(*clips(), strict=True):
        fvd.update(generated, real)
    values, missing = fvd.compute()
    assert not missing and values["fvd_clips"] == CLIPS * (FRAMES // CLIP_FRAMES)
    assert values["fvd"] == pytest.approx(STYLEGAN_V_FVD, rel=1e-6)

    # The scaling is part of the answer: the same windows handed over as [0, 1] floats give another number.
    unscaled = FrechetVideoDistance(lambda x, **keywords: fvd.detector(x.float() / 255, **keywords))
    for generated, real in zip(*clips(), strict=True):
        unscaled.update(generated, real)
    assert abs(unscaled.compute()[0]["fvd"] - STYLEGAN_V_FVD) > 1e-2 * STYLEGAN_V_FVD


def test_windows_are_consecutive_16_frame_clips_from_the_first_frame():
    frames = np.arange(40)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    windows = clip_windows(frames)
    assert (
        windows.shape == (2, 16, 2, 2, 3) and windows[1, 0, 0, 0, 0] == 16 and windows[1, -1, 0, 0, 0] == 31
    )


def test_the_suite_reports_fvd_with_weights_and_says_why_not_without(tmp_path):
    generated, real = clips()
    weights = save_tiny_i3d(tmp_path / "i3d_torchscript.pt")
    with_weights = MetricSuite(MetricSettings(landmarks=False, frames_per_clip=1, i3d_weights=weights))
    without = MetricSuite(MetricSettings(landmarks=False, frames_per_clip=1))
    for suite in (with_weights, without):
        for index in range(3):
            suite.update(GeneratedSample(generated[index], real[index], "a"))
    values, missing = with_weights.compute()
    assert "fvd" not in missing and math.isfinite(values["fvd"]) and values["fvd_clips"] == 6
    values, missing = without.compute()
    assert "fvd" not in values and "i3d_weights" in missing["fvd"] and "i3d_torchscript.pt" in missing["fvd"]

    short = MetricSuite(MetricSettings(landmarks=False, frames_per_clip=1, i3d_weights=weights))
    short.update(GeneratedSample(generated[0, :15], real[0, :15], "a"))
    assert "16 frames" in short.compute()[1]["fvd"] and "longest 15" in short.compute()[1]["fvd"]
    faces = MetricSuite(MetricSettings(landmarks=False, frames_per_clip=1, i3d_weights=weights))
    faces.update(GeneratedSample(generated[0, :1], real[0, :2], "a", paired=False))
    assert "video" in faces.compute()[1]["fvd"]


def test_a_damaged_or_wrong_i3d_file_is_named_with_the_fix(tmp_path):
    damaged = tmp_path / "i3d_torchscript.pt"
    damaged.write_bytes(b"half a download")
    with pytest.raises(WeightsError, match=r"i3d_torchscript\.pt: not a readable TorchScript") as error:
        load_i3d(damaged)
    assert "\n" not in str(error.value) and "i3d_weights=PATH" in str(error.value)
    other = tmp_path / "other.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(other))
    with pytest.raises(WeightsError, match="not StyleGAN-V's I3D"):
        load_i3d(other)
    with pytest.raises(WeightsError, match="not found"):
        load_i3d(tmp_path / "absent.pt")
    suite = MetricSuite(MetricSettings(landmarks=False, i3d_weights=str(damaged)))
    assert str(damaged) in suite.compute()[1]["fvd"]
