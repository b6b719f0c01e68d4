"""Noisy speech in talking-face batches: training mixtures on the fly, a fixed noisy validation set, and
the evaluation sweep's held-out noise at a requested SNR (E2E-NR)."""

import numpy as np
import pytest
import torch

from datamodules.lrw import LRWDataModule
from datamodules.noisy_speech import NoiseMixing
from datamodules.talking_face_windows import clip_collate


@pytest.fixture(scope="module")
def noisy_lrw(isolated_data_and_runs):
    datamodule = LRWDataModule(
        demo_size="tiny",
        image_size=64,
        sample_rate=8000,
        noise=NoiseMixing(seed=3),
        batch_size=2,
        eval_batch_size=2,
        num_workers=0,
        prepare_workers=0,
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def _snr_db(mixture: np.ndarray, clean: np.ndarray) -> float:
    """SNR of a peak-normalised mixture: the clean part is its projection on the clean speech."""
    gain = mixture @ clean / (clean @ clean)
    noise = mixture - gain * clean
    return 10 * np.log10(np.sum((gain * clean) ** 2) / np.sum(noise**2))


def test_training_items_carry_a_fresh_noisy_copy(noisy_lrw):
    train = noisy_lrw.datasets["train"]
    torch.manual_seed(0)
    first = train[0]
    assert first["noisy_audio"].shape == first["audio"].shape and first["noisy_audio"].dtype == torch.float32
    assert not torch.equal(first["noisy_audio"], first["audio"])
    assert first["noisy_audio"].abs().max().item() == pytest.approx(1.0)  # peak-normalised mixture
    again = train[0]
    # redrawn every time the clip is loaded
    assert not torch.equal(first["noisy_audio"], again["noisy_audio"])
    batch = clip_collate([train[0], train[1]])
    assert batch["noisy_audio"].shape == batch["audio"].shape
    assert batch["mouth_centre"].shape == (*batch["frame_mask"].shape, 2)


def test_validation_noise_is_fixed_per_clip(noisy_lrw):
    val = noisy_lrw.datasets["val"]
    assert torch.equal(val[0]["noisy_audio"], val[0]["noisy_audio"])
    assert "noisy_audio" not in noisy_lrw.datasets["test"][0]  # the test split stays clean


def test_sweep_mixes_held_out_noise_at_the_requested_snr(noisy_lrw):
    bank = noisy_lrw.evaluation_noise_bank()
    assert set(bank.types) == {"babble", "cafeteria", "motorcycle", "speech_shaped", "factory"}
    assert not set(bank.types) & set(noisy_lrw._noise_banks["train"].types)
    for snr in (-5.0, 10.0):
        item = noisy_lrw.noisy_test_set("factory", snr)[0]
        clean = noisy_lrw.datasets["test"][0]["audio"]
        assert torch.equal(item["clean_audio"], clean)
        assert _snr_db(
            item["audio"].numpy().astype(np.float64), clean.numpy().astype(np.float64)
        ) == pytest.approx(snr, abs=0.5)
    # The same noise segment at every SNR: the residuals of two levels are proportional.
    low, high = (noisy_lrw.noisy_test_set("babble", s)[1] for s in (0.0, 20.0))
    clean = low["clean_audio"].numpy().astype(np.float64)
    residual = [
        x["audio"].numpy() - (x["audio"].numpy() @ clean / (clean @ clean)) * clean for x in (low, high)
    ]
    assert abs(np.corrcoef(residual[0], residual[1])[0, 1]) > 0.95
