"""E2E-NR's mouth mask and losses against known invariants."""

import math

import numpy as np
import pytest
import torch

from datamodules.pipeline.face_tracks import TEMPLATE_MOUTH_128, mouth_centres
from lightning_modules.e2e_nr.losses import (
    half_lsgan_discriminator,
    half_lsgan_generator,
    masked_l1,
    mouth_mask,
    noise_resilience_loss,
)
from lightning_modules.e2e_nr.speech import normalise_speech


def test_mask_peaks_on_the_mouth_with_the_floor_everywhere():
    mask = mouth_mask(torch.tensor([[[40.0, 70.0]]]), 128)
    assert mask.shape == (1, 1, 1, 128, 128)
    image = mask[0, 0, 0]
    assert image.max() == image[70, 40] == torch.tensor(1.01)  # row y, column x; float32 1.01
    assert image.min() >= torch.tensor(0.01)
    # M − 0.01 is the Gaussian exp(−d²/2σ²), symmetric about the centre
    assert math.isclose(image[70, 40 + 14].item() - 0.01, math.exp(-(14**2) / (2 * 81)), rel_tol=1e-6)
    assert image[70 - 9, 40].item() == image[70 + 9, 40].item() == image[70, 40 - 9].item()


def test_mask_mean_and_template_mouth():
    centred = mouth_mask(torch.tensor([[[64.0, 64.0]]]), 128)
    assert abs(centred.mean().item() - (2 * math.pi * 81 / 128**2 + 0.01)) < 2e-4  # ≈ 0.0411
    template = mouth_mask(torch.tensor([TEMPLATE_MOUTH_128], dtype=torch.float32)[None], 128)[0, 0, 0]
    row, column = divmod(int(template.argmax()), 128)
    assert abs(column - 64) <= 1 and abs(row - 78) <= 1


def test_mouth_centres_fall_back_to_the_median_then_the_template():
    landmarks = np.zeros((3, 68, 2), np.float32)
    landmarks[:, 48:68] = [10, 20]
    landmarks[1, 48:68] = [30, 40]
    centres = mouth_centres(landmarks, np.array([True, True, False]), 128)
    assert np.allclose(centres[0], [10, 20]) and np.allclose(centres[1], [30, 40])
    assert np.allclose(centres[2], [20, 30])  # median of the detected frames
    none = mouth_centres(landmarks, np.zeros(3, bool), 128)
    assert np.allclose(none, TEMPLATE_MOUTH_128)


def test_masked_l1_properties():
    torch.manual_seed(0)
    real, fake = torch.rand(2, 3, 3, 16, 16), torch.rand(2, 3, 3, 16, 16)
    mask = mouth_mask(torch.full((2, 3, 2), 8.0), 16)
    assert masked_l1(real, real, mask).item() == 0
    assert masked_l1(fake, real, mask).item() <= 1.01 * (fake - real).abs().mean().item()
    assert torch.isclose(masked_l1(fake, real, torch.ones_like(mask)), (fake - real).abs().mean())
    fake.requires_grad_(True)
    masked_l1(fake, real, mask).backward()
    assert (fake.grad != 0).all()  # the 0.01 floor keeps every pixel in the loss
    padded = torch.tensor([[True, True, False], [True, True, False]])
    assert torch.isclose(
        masked_l1(fake, real, mask, padded), masked_l1(fake[:, :2], real[:, :2], mask[:, :2])
    )


def test_noise_resilience_loss_and_lsgan_terms():
    clean = torch.randn(2, 16, 40)
    assert noise_resilience_loss(clean, clean).item() == 0
    assert noise_resilience_loss(clean, clean + 0.1).item() > 0
    ones, zeros = torch.ones(5, 1), torch.zeros(5, 1)
    assert half_lsgan_discriminator(ones, zeros).item() == 0
    assert half_lsgan_discriminator(zeros, ones).item() == 1.0  # ½·1 + ½·1
    assert half_lsgan_generator(ones).item() == 0 and half_lsgan_generator(zeros).item() == 0.5


def test_noise_resilience_loss_leaves_the_clean_features_to_the_reconstruction_by_default():
    """The paper's form also pulls the clean features towards the noisy ones, so the encoder can lower L_NR by
    hearing less of the speech (on the demo the features' time-std halved); by default the clean features
    are a fixed target, only the noisy branch moves, and the error is relative to the clean features'
    variation over time, so scaling both streams leaves it unchanged."""
    clean = torch.randn(2, 16, 40, requires_grad=True)
    noisy = (clean.detach() + 0.1 * torch.randn(2, 16, 40)).requires_grad_(True)
    noise_resilience_loss(clean, noisy).backward()
    assert clean.grad is None and noisy.grad.abs().sum() > 0
    noisy.grad = None
    noise_resilience_loss(clean, noisy, form="paper").backward()
    assert torch.allclose(clean.grad, -noisy.grad)  # the paper's form: both sides, equal and opposite
    relative = noise_resilience_loss(clean, noisy)
    assert torch.isclose(noise_resilience_loss(100 * clean, 100 * noisy), relative)
    assert torch.isclose(
        relative, noise_resilience_loss(clean, noisy, form="clean_target") / clean.var(2).mean()
    )
    with pytest.raises(ValueError, match="form must be one of"):
        noise_resilience_loss(clean, noisy, form="cosine")


def test_speech_normalisation_ignores_padding():
    wave = torch.tensor([[1.0, 3.0, 0.0, 0.0], [2.0, -2.0, 4.0, 0.0]])
    out = normalise_speech(wave, torch.tensor([2, 3]))
    assert torch.allclose(out[0], torch.tensor([-1.0, 1.0, 0.0, 0.0]))
    assert out[1].abs().max().item() == 1.0 and out[1, 3].item() == 0.0
    assert abs(out[1, :3].mean().item()) < 1e-6
