"""How Embed2Lat trains and is evaluated: its zero-initialised head, several random windows per clip and
epoch, the train-mean baseline logged beside its validation and test MSE, and evaluation videos at the
size of the crops."""

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from datamodules.base import stack_items
from datamodules.errors import DatasetError
from datamodules.resumable import ResumableLoader
from lightning_modules.a2v.data import A2VDataModule, LatentClip, LatentWindows
from lightning_modules.a2v.embed2lat import Embed2Lat
from lightning_modules.a2v.speech_encoder import TINY

ROWS = (5, 6, 7)
FEATURE_DIM = TINY["encoder_embed_dim"]


def fake_clip(index: int, frames: int, seed: int = 0) -> LatentClip:
    """A clip of `frames` frames whose codes, features and audio are seeded noise; its w0 is filled with
    `index`, so batches say which clip each window came from."""
    rng = np.random.default_rng(seed * 1000 + index)
    latents = {
        "rows": rng.normal(0, 0.1, (frames, len(ROWS), 512)).astype(np.float32),
        "w0": np.full((1, 16, 512), float(index), dtype=np.float32),
    }
    features = rng.normal(0, 1, (2 * frames, FEATURE_DIM)).astype(np.float16)
    audio = rng.normal(0, 0.1, 640 * frames).astype(np.float32)
    return LatentClip({"key": f"clip{index}", "fps": "25"}, latents, features, audio, ROWS)


# ---------------------------------------------------------------- zero-initialised head


def test_embed2lat_starts_from_the_zero_prediction_and_its_head_still_learns():
    torch.manual_seed(0)
    model = Embed2Lat(TINY)
    features = torch.randn(3, 40, FEATURE_DIM) * 5 + 2
    prediction = model(features, 20)
    assert prediction.shape == (3, 20, 96) and torch.equal(prediction, torch.zeros_like(prediction))
    assert torch.equal(model.head.weight, torch.zeros_like(model.head.weight))
    assert torch.equal(model.head.bias, torch.zeros_like(model.head.bias))

    target = torch.randn(3, 20, 96) * 0.2
    (prediction - target).square().mean().backward()
    assert model.head.weight.grad.abs().sum() > 0 and model.head.bias.grad.abs().sum() > 0
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    optimiser.step()
    assert model(features, 20).abs().sum() > 0  # one step later the prediction depends on the input again


# ---------------------------------------------------------------- windows per clip


def test_training_draws_several_independent_random_windows_of_every_clip_reproducibly():
    clips = [fake_clip(i, 120) for i in range(3)]
    dataset = LatentWindows(clips, 10, random_start=True, sample_rate=16000, windows_per_clip=4)
    assert len(dataset) == 12

    def epoch(seed: int) -> list[tuple[int, int]]:
        loader = ResumableLoader(dataset, 4, stack_items, seed=seed)
        return [
            (int(w0[0, 0]), int(first))
            for batch in loader
            for w0, first in zip(batch["w0"], batch["first_frame"])
        ]

    drawn = epoch(seed=7)
    assert sorted(clip for clip, _ in drawn) == [0] * 4 + [1] * 4 + [2] * 4  # every clip 4 times per epoch
    for clip in range(3):
        starts = [first for c, first in drawn if c == clip]
        assert len(set(starts)) > 1 and all(0 <= s <= 110 for s in starts)  # independent random crops
    assert epoch(seed=7) == drawn  # the seeded loader replays the same windows
    assert epoch(seed=8) != drawn

    item = dataset[5]  # clip 5 mod 3 = 2
    first = int(item["first_frame"])
    assert torch.equal(item["residual"], clips[2].residual(slice(first, first + 10)))
    assert item["features"].shape == (20, FEATURE_DIM) and item["audio"].shape == (6400,)
    with pytest.raises(IndexError):
        dataset[12]


def windows_datamodule(clips: int, batch_size: int, **kwargs) -> A2VDataModule:
    """An A2V datamodule whose training split is `clips` fake clips (no caches read)."""
    datamodule = A2VDataModule(
        demo_size="tiny", sample="windows", window_frames=10, batch_size=batch_size, num_workers=0, **kwargs
    )
    datamodule.latent_clips = {"train": [fake_clip(i, 30) for i in range(clips)], "val": [], "test": []}
    return datamodule


def test_a_training_split_smaller_than_one_batch_of_windows_is_refused():
    loader = windows_datamodule(clips=3, batch_size=8).train_dataloader()  # one window per clip: 3 < 8
    with pytest.raises(DatasetError, match="3 item\\(s\\), fewer than one batch of 8"):
        len(loader)  # rather than an epoch of no batches, which Lightning would skip silently


def test_windows_per_clip_fill_the_batches_that_one_window_per_clip_cannot():
    with pytest.raises(DatasetError, match="fewer than one batch"):
        len(windows_datamodule(clips=3, batch_size=8, windows_per_clip=1).train_dataloader())
    datamodule = windows_datamodule(clips=3, batch_size=8, windows_per_clip=6)
    assert datamodule.hparams.windows_per_clip == 6
    loader = datamodule.train_dataloader()
    assert len(loader) == 2  # 18 windows: two full batches of 8
    assert [len(batch["residual"]) for batch in loader] == [8, 8]
    assert len(datamodule.dataset("val")) == 0  # evaluation stays one whole clip per item
    with pytest.raises(ValueError, match="windows_per_clip"):
        A2VDataModule(demo_size="tiny", sample="windows", windows_per_clip=0)


# ---------------------------------------------------------------- train-mean baseline


class FakeA2VData(L.LightningDataModule):
    """Fake clips in the A2V datamodule's shape: `latent_clips` and whole-clip evaluation loaders."""

    def __init__(self):
        super().__init__()
        self.latent_clips = {
            "train": [fake_clip(i, 12 + 3 * i, seed=1) for i in range(4)],
            "val": [fake_clip(i, 10 + i, seed=2) for i in range(2)],
            "test": [fake_clip(i, 9 + 2 * i, seed=3) for i in range(3)],
        }

    def _loader(self, split: str) -> DataLoader:
        dataset = LatentWindows(self.latent_clips[split], None, random_start=False, sample_rate=16000)
        return DataLoader(dataset, batch_size=1, collate_fn=stack_items)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


def test_validation_and_test_log_the_mse_of_predicting_the_train_mean_code(tmp_path):
    from lightning_modules.a2v.module import Embed2LatModule

    torch.manual_seed(0)
    module = Embed2LatModule(
        speech_encoder=dict(allow_random=True),
        generator=dict(allow_random=True, tiny_resolution=32, tiny_channels=8),
    )
    data = FakeA2VData()
    with torch.no_grad():
        train_mean = torch.cat(
            [module.targets(c.residual(slice(None))[None])[0] for c in data.latent_clips["train"]]
        ).mean(0)

    def expected(split: str) -> dict[str, float]:  # the epoch mean of per-clip means (one clip per batch)
        with torch.no_grad():
            targets = [module.targets(c.residual(slice(None))[None])[0] for c in data.latent_clips[split]]
        return {
            "mse_mean_baseline": float(
                torch.stack([(t - train_mean).square().mean() for t in targets]).mean()
            ),
            "mse_zero_baseline": float(torch.stack([t.square().mean() for t in targets]).mean()),
        }

    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    for split, run in (("val", trainer.validate), ("test", trainer.test)):
        (metrics,) = run(module, datamodule=data, verbose=False)
        for name, value in expected(split).items():
            assert metrics[f"{split}/{name}"] == pytest.approx(value, rel=1e-4)
        # the zero head
        assert metrics[f"{split}/mse"] == pytest.approx(metrics[f"{split}/mse_zero_baseline"])
    assert torch.allclose(module.train_mean_code(), train_mean, atol=1e-6)  # once, from the training clips


# ---------------------------------------------------------------- shared-metric videos


def test_evaluation_videos_take_the_size_of_the_crops_they_are_compared_with():
    from lightning_modules.a2v.module import Embed2LatModule

    module = Embed2LatModule(
        speech_encoder=dict(allow_random=True),
        generator=dict(allow_random=True, tiny_resolution=32, tiny_channels=8),
    ).eval()
    data, speech = FakeA2VData(), np.zeros(16000, dtype=np.float32)  # 1 s: 25 frames
    for side in (64, 32):  # the demo's 64-px crops against the 32-px stand-in, and equal sizes
        frames = module.evaluation_video(data, "test", 0, speech, np.zeros((side, side, 3), dtype=np.uint8))
        assert frames.shape == (25, side, side, 3) and frames.dtype == np.uint8


def test_evaluation_videos_scale_the_prediction_by_the_evaluation_gain_else_by_mu_gain(monkeypatch):
    from lightning_modules.a2v.module import Embed2LatModule

    module = Embed2LatModule(
        speech_encoder=dict(allow_random=True),
        generator=dict(allow_random=True, tiny_resolution=32, tiny_channels=8),
        mu_gain=500.0,
    ).eval()
    gains, render = [], module.render_chunks

    def spied(speech, w0, *args, gain=None, **kwargs):
        gains.append(gain)
        return render(speech, w0, *args, gain=gain, **kwargs)

    monkeypatch.setattr(module, "render_chunks", spied)
    data, speech, face = FakeA2VData(), np.zeros(16000, dtype=np.float32), np.zeros((32, 32, 3), np.uint8)
    module.evaluation_video(data, "test", 0, speech, face)
    monkeypatch.setattr(Embed2LatModule, "evaluation_gain", 1.0)
    module.evaluation_video(data, "test", 0, speech, face)
    assert gains == [None, 1.0]  # None: render_chunks' default, mu_gain


def test_long_speech_is_predicted_in_windows_and_rendered_in_chunks(monkeypatch):
    """Wav2Vec2 and Embed2Lat attend over their whole input (memory ∝ length²): long speech is predicted
    in runs of PREDICTION_FRAMES with CONTEXT_FRAMES of speech on either side, and rendered in chunks.
    Speech no longer than one run is the whole-utterance pass; a longer one keeps every frame once."""
    import torch

    import lightning_modules.a2v.module as a2v

    module = a2v.Embed2LatModule(
        speech_encoder=dict(allow_random=True),
        generator=dict(allow_random=True, tiny_resolution=32, tiny_channels=8),
    ).eval()
    speech = np.random.default_rng(0).normal(0, 0.1, 16000 * 2 + 300).astype(np.float32)  # 50 frames
    with torch.no_grad():
        features = a2v.speech_features(module.frozen("speech_encoder"), torch.from_numpy(speech)[None])[0]
        whole = module(a2v.features_for_frames(features, 50)[None], 50)
        assert torch.equal(torch.cat(list(module.predicted_windows(speech, 50)), dim=1), whole)
        monkeypatch.setattr(a2v, "PREDICTION_FRAMES", 12)
        monkeypatch.setattr(a2v, "CONTEXT_FRAMES", 5)
        runs = list(module.predicted_windows(speech, 50))
    assert [run.shape[1] for run in runs] == [12, 12, 12, 12, 2]
    assert torch.cat(runs, dim=1).shape == whole.shape == (1, 50, module.hparams.latent_dim)
    w0 = torch.zeros(1, 16, 512)
    chunks = list(module.render_chunks(speech, w0, chunk_frames=5))
    assert [len(chunk) for chunk in chunks] == [5, 5, 2] * 4 + [2]
    assert np.concatenate(chunks).shape == (50, 32, 32, 3)
