"""Video metrics on inputs with known answers (E2E-NR spec §8)."""

import numpy as np
import pytest
from PIL import Image

from lightning_modules.common.video_metrics import (TEMPLATE_68, FrameLandmarks, VideoMetricAccumulator,
                                                    landmark_distance, psnr, ssim)


def test_psnr_and_ssim_known_values():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    assert np.isnan(psnr(frames, frames)).all()  # identical frames are skipped
    assert np.allclose(psnr(frames, frames + 1), 48.13, atol=0.01)  # a constant error of one grey level
    assert np.allclose(ssim(frames, frames), 1.0)
    assert (ssim(frames, rng.integers(0, 255, frames.shape, dtype=np.uint8)) < 0.2).all()


def test_landmark_distance_is_zero_for_equal_sets_and_ignores_similarity_transforms():
    assert landmark_distance(TEMPLATE_68, TEMPLATE_68) == pytest.approx((0.0, 0.0), abs=1e-9)
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = 1.7 * TEMPLATE_68 @ rotation.T + [12.0, -5.0]
    assert landmark_distance(moved, TEMPLATE_68) == pytest.approx((0.0, 0.0), abs=1e-6)
    small, large = TEMPLATE_68.copy(), TEMPLATE_68.copy()
    small[48:68, 1] += 1.0
    large[48:68, 1] += 3.0  # an opened mouth
    assert 0 < landmark_distance(small, TEMPLATE_68)[0] < landmark_distance(large, TEMPLATE_68)[0]
    assert landmark_distance(large, TEMPLATE_68)[0] > landmark_distance(large, TEMPLATE_68)[1]  # mouth-only change


def test_accumulator_counts_frames_without_a_face_as_failures():
    from skimage.data import astronaut

    face = np.asarray(Image.fromarray(astronaut()[20:220, 150:350]).resize((128, 128), Image.BILINEAR))
    assert FrameLandmarks()(face) is not None
    noise = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    assert FrameLandmarks()(noise) is None
    accumulator = VideoMetricAccumulator()
    accumulator.update(np.stack([face, noise]), np.stack([face, face]))
    result = accumulator.compute()
    assert result["landmark_failure_rate"] == 0.5 and result["frames"] == 2 and result["clips"] == 1
    assert result["nlmd_mouth"] == pytest.approx(0.0, abs=1e-6)  # the one scored frame is identical
    quick = VideoMetricAccumulator(landmarks=False)
    quick.update(np.stack([face]), np.stack([face]))
    assert "nlmd_mouth" not in quick.compute()
