"""Planted latents, the learning proof's diagnostic: residuals from the measured mouth opening instead of
GAN inversion, and the speech-energy correlation the evaluation reports for them."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lightning_modules.a2v.evaluation import planted_scores
from lightning_modules.a2v.planted import (
    PlantedMouthConfig,
    measured_opening,
    planted_direction,
    planted_rows,
    projection,
)
from lightning_modules.common.metrics.speech_dependence import DEFAULT_MOUTH_BOX

ROWS = [5, 6, 7]


def test_planted_residuals_carry_the_opening_along_one_unit_direction_on_every_row():
    config = PlantedMouthConfig(enabled=True, gain=4.0, seed=3)
    opening = np.array([-0.02, 0.0, 0.05, -0.03], dtype=np.float32)
    w0 = torch.randn(16, 512)
    residual = planted_rows(opening, w0, ROWS, config) - w0[ROWS]
    direction = planted_direction(3)
    assert direction.norm().item() == pytest.approx(1.0)
    assert torch.equal(planted_direction(3), direction) and not torch.equal(planted_direction(4), direction)
    for row in range(len(ROWS)):
        assert torch.allclose(
            residual[:, row], 4.0 * torch.from_numpy(opening)[:, None] * direction, atol=1e-6
        )
    recovered = projection(residual.flatten(1), seed=3, rows=len(ROWS))
    assert torch.allclose(recovered, 4.0 * torch.from_numpy(opening), atol=1e-6)
    assert projection(residual.flatten(1), seed=4, rows=len(ROWS)).abs().max() < recovered.abs().max() / 2


def test_measured_opening_is_the_mouth_box_darkening_centred_on_the_clip():
    frames = np.full((4, 40, 40, 3), 200, dtype=np.uint8)
    x0, y0, x1, y1 = (int(f * 40) for f in DEFAULT_MOUTH_BOX)
    frames[2, y0 + 4 : y1 - 4, x0 + 4 : x1 - 4] = 20  # an open mouth in frame 2 only
    frames[3, :5] = 0  # darkness outside the mouth box does not count
    opening = measured_opening(frames)
    assert opening.sum() == pytest.approx(0.0, abs=1e-6)
    assert opening[2] > 0 and opening[0] == pytest.approx(opening[1]) == pytest.approx(opening[3])


def test_planted_scores_follow_the_clip_own_speech_and_not_another_clips():
    rng = np.random.default_rng(0)
    seed, gain, clips = 0, 2.0, []
    for _ in range(3):
        loudness = rng.uniform(0.05, 1.0, 60)
        audio = (rng.normal(0, 1, 60 * 640) * np.repeat(loudness, 640)).astype(np.float32)
        opening = (np.log(loudness) - np.log(loudness).mean()).astype(np.float32)
        residual = (
            planted_rows(opening, torch.zeros(16, 512), ROWS, PlantedMouthConfig(True, gain, seed))
        ).flatten(1)
        clips.append({"prediction": residual, "residual": residual, "audio": audio})
    module = SimpleNamespace(hparams=SimpleNamespace(rows=ROWS), device="cpu", residuals=lambda code: code)
    scores = planted_scores(module, clips, seed, 16000)
    assert scores["generated"] > 0.9 and scores["planted"] == pytest.approx(scores["generated"])
    assert abs(scores["control"]) < 0.4


def test_planted_latents_skip_the_inversion_and_are_cached_under_their_own_key(
    isolated_data_and_runs, monkeypatch
):
    from lightning_modules.a2v import inversion
    from lightning_modules.a2v.data import A2VDataModule

    def datamodule(planted: bool) -> A2VDataModule:
        return A2VDataModule(
            demo_size="tiny",
            image_size=32,
            fps=25,
            prepare_workers=0,
            num_workers=0,
            batch_size=4,
            cache_dir=str(isolated_data_and_runs / "a2v_planted_cache"),
            crop=dict(
                method="box",
                detector="mtcnn",
                box_track="interpolate",
                detect_every=10,
                box_scale=1.3,
                single_face=True,
                landmarks=False,
            ),
            generator=dict(allow_random=True, tiny_resolution=32, tiny_channels=8),
            speech_encoder=dict(allow_random=True),
            planted_mouth=dict(enabled=planted, gain=5.0),
        )

    monkeypatch.setattr(
        inversion.Inverter, "build", lambda *a, **k: pytest.fail("planted latents were inverted")
    )
    planted = datamodule(True)
    assert planted.latent_cache().directory != datamodule(False).latent_cache().directory
    planted.prepare_data()
    planted.setup("fit")
    assert "not inverted" in planted.statistics()["latents"]
    crops = planted.cache().read()
    frames = {
        meta["key"]: np.asarray(arrays["frames"]) for meta, arrays in (crops[i] for i in range(len(crops)))
    }
    clip = planted.latent_clips["train"][0]
    along = projection(clip.residual(slice(None)), seed=0, rows=len(ROWS))
    assert torch.allclose(
        along, 5.0 * torch.from_numpy(measured_opening(frames[clip.meta["key"]])), atol=1e-4
    )
    assert along.std() > 0
