"""Video metrics on inputs with known answers (E2E-NR's evaluation and its invariants)."""

import numpy as np
import pytest
from PIL import Image

from datamodules.pipeline.face_tracks import TEMPLATE_ANCHORS_128, TEMPLATE_MOUTH_128
from datamodules.pipeline.faces import LEFT_EYE, MOUTH, NOSE, RIGHT_EYE
from datamodules.pipeline.template import E2E_TEMPLATE_68
from lightning_modules.common.metrics.video_metrics import (
    FrameLandmarks,
    VideoMetricAccumulator,
    landmark_distance,
    procrustes_align,
    psnr,
    similarity_fit,
    ssim,
)


def random_similarity(rng: np.random.Generator, points: np.ndarray) -> np.ndarray:
    angle, scale, shift = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 3.0), rng.uniform(-200, 200, 2)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return scale * points @ rotation.T + shift


@pytest.fixture(scope="module")
def astronaut_face() -> np.ndarray:
    """The face of skimage's astronaut, cropped with a margin and resized to 128 px (about the size of an
    aligned face in the template)."""
    from skimage.data import astronaut

    face = Image.fromarray(astronaut()[40:200, 140:300]).resize((128, 128), Image.BILINEAR)
    return np.clip(np.asarray(face), 2, 253)  # room for ± 2 grey levels without wrapping


def test_template_matches_its_anchor_points():
    assert E2E_TEMPLATE_68.shape == (68, 2)
    assert E2E_TEMPLATE_68.min() == 25.6 and E2E_TEMPLATE_68.max() == 102.4
    # the eye, nose and mouth centres of the 68 points; the anchors were taken before the points were
    # rounded to 0.1 px
    anchors = np.stack([E2E_TEMPLATE_68[part].mean(axis=0) for part in (RIGHT_EYE, LEFT_EYE, NOSE, MOUTH)])
    assert np.abs(anchors[:3] - TEMPLATE_ANCHORS_128).max() < 0.02
    assert np.abs(anchors[3] - TEMPLATE_MOUTH_128).max() < 0.03


def test_psnr_skips_identical_frames_and_gives_48_13_db_for_one_grey_level():
    frames = np.random.default_rng(0).integers(1, 255, (3, 24, 24, 3), dtype=np.uint8)
    assert np.isnan(psnr(frames, frames)).all()
    assert np.isnan(psnr(frames[0], frames[0]))  # one (H, W, 3) frame → a float
    assert psnr(frames, frames + 1) == pytest.approx([48.1308] * 3, abs=1e-4)  # 10·log10(255²)
    assert psnr(frames[0], frames[0] - 1) == pytest.approx(48.1308, abs=1e-4)
    with pytest.raises(ValueError, match="uint8"):
        psnr(frames.astype(np.float32), frames.astype(np.float32))


def test_ssim_is_one_for_identical_frames_and_low_for_unrelated_noise():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert ssim(frames, frames) == pytest.approx([1.0, 1.0])
    assert (ssim(frames, rng.integers(0, 256, frames.shape, dtype=np.uint8)) < 0.1).all()


def test_procrustes_recovers_a_similarity_and_never_reflects():
    rng = np.random.default_rng(2)
    moved = random_similarity(rng, E2E_TEMPLATE_68)
    assert np.abs(procrustes_align(moved, E2E_TEMPLATE_68) - E2E_TEMPLATE_68).max() < 1e-9
    mirrored = E2E_TEMPLATE_68 * [-1, 1]
    _, rotation, _ = similarity_fit(mirrored, E2E_TEMPLATE_68)
    assert np.linalg.det(rotation) == pytest.approx(1.0)  # a rotation, though a reflection would fit exactly


def test_nlmd_is_zero_for_equal_sets_and_invariant_to_similarity_transforms():
    rng = np.random.default_rng(3)
    real = E2E_TEMPLATE_68 + rng.normal(0, 1.5, E2E_TEMPLATE_68.shape)  # a face that is not the template
    generated = real.copy()
    generated[MOUTH] += rng.normal(0, 2.0, (20, 2))
    assert landmark_distance(real, real) == pytest.approx((0.0, 0.0), abs=1e-9)
    before = landmark_distance(generated, real)
    for _ in range(3):
        assert landmark_distance(random_similarity(rng, generated), real) == pytest.approx(before, abs=1e-6)
        assert landmark_distance(generated, random_similarity(rng, real)) == pytest.approx(before, abs=1e-6)


def test_nlmd_sees_a_mouth_only_change_and_grows_with_it():
    mouth = [
        landmark_distance(
            E2E_TEMPLATE_68 + np.pad(np.full((20, 2), [0.0, 0.5 * k]), ((48, 0), (0, 0))), E2E_TEMPLATE_68
        )[0]
        for k in range(5)
    ]
    assert mouth[0] == 0 and all(a < b for a, b in zip(mouth, mouth[1:]))
    # The same number from an independent solver: a similarity is linear in (a, b, tx, ty) with
    # x' = a·x − b·y + tx, y' = b·x + a·y + ty, so ordinary least squares fits it.
    lowered = E2E_TEMPLATE_68.copy()
    lowered[MOUTH, 1] += 1.0
    x, y = lowered.T
    design = np.block(
        [
            [x[:, None], -y[:, None], np.ones((68, 1)), np.zeros((68, 1))],
            [y[:, None], x[:, None], np.zeros((68, 1)), np.ones((68, 1))],
        ]
    )
    a, b, tx, ty = np.linalg.lstsq(design, E2E_TEMPLATE_68.T.reshape(-1), rcond=None)[0]
    fitted = np.stack([a * x - b * y + tx, b * x + a * y + ty], axis=1)
    by_hand = np.linalg.norm(fitted - E2E_TEMPLATE_68, axis=1)[MOUTH].mean()
    assert mouth[2] == pytest.approx(by_hand, abs=1e-9)
    assert 0.5 < by_hand < 1.0  # the fit absorbs part of the 1-px drop, not all of it
    opened = E2E_TEMPLATE_68.copy()
    opened[57:60, 1] += 3.0  # lower lip drops
    nlmd_mouth, nlmd_all = landmark_distance(opened, E2E_TEMPLATE_68)
    assert nlmd_mouth > nlmd_all > 0


def test_landmarks_are_found_on_a_face_and_not_on_noise(astronaut_face):
    landmarks = FrameLandmarks()(astronaut_face)
    assert landmarks is not None and landmarks.shape == (68, 2)
    mouth_y, eyes_y = landmarks[MOUTH, 1].mean(), landmarks[36:48, 1].mean()
    assert mouth_y > eyes_y and 0 <= landmarks.min() and landmarks.max() < 128
    noise = np.random.default_rng(4).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    assert FrameLandmarks()(noise) is None


def test_accumulator_averages_frames_then_clips_and_reports_failures(astronaut_face):
    noise = np.random.default_rng(5).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    accumulator = VideoMetricAccumulator()
    # Clip 1: the face itself (PSNR skipped, NLMD 0), then one grey level off, then noise (no face).
    clip = accumulator.update(
        np.stack([astronaut_face, astronaut_face - 1, noise]), np.stack([astronaut_face] * 3)
    )
    assert clip["psnr"] == pytest.approx((48.1308 + psnr(noise, astronaut_face)) / 2, abs=1e-3)
    assert clip["nlmd_mouth"] < 0.5  # frames 0 and 1 only
    # Clip 2: ground-truth landmarks given, one frame, generated = real shifted by 2 grey levels.
    real = FrameLandmarks()(astronaut_face)
    accumulator.update((astronaut_face - 2)[None], astronaut_face[None], real_landmarks=[real])
    result = accumulator.compute()
    assert result["frames"] == 4 and result["clips"] == 2 and result["psnr_skipped_frames"] == 1
    assert result["landmark_failure_rate"] == pytest.approx(1 / 4)
    assert 0 <= result["nlmd_mouth"] < 0.5 and 0 <= result["nlmd_all"] < 0.5
    quick = VideoMetricAccumulator(landmarks=False)
    quick.update(np.stack([astronaut_face]), np.stack([astronaut_face]))
    summary = quick.compute()
    assert "nlmd_mouth" not in summary and "landmark_failure_rate" not in summary
    assert summary["ssim"] == pytest.approx(1.0) and np.isnan(summary["psnr"])  # every frame skipped
