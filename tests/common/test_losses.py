"""Shared adversarial and feature-matching losses on hand-made inputs."""

import math

import pytest
import torch

from lightning_modules.common.training.losses import (
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)


def test_lsgan_values():
    real, fake = torch.full((4, 1), 1.0), torch.zeros(4, 1)
    assert discriminator_adversarial_loss(real, fake, "lsgan") == 0
    assert discriminator_adversarial_loss(real, fake, "lsgan", real_label=0.9) == pytest.approx(0.01)
    assert generator_adversarial_loss(fake, "lsgan") == 1


def test_bce_values():
    zeros = torch.zeros(2, 1, 6, 6)
    assert discriminator_adversarial_loss(zeros, zeros, "bce") == pytest.approx(2 * math.log(2))
    assert generator_adversarial_loss(torch.full((3,), 50.0), "bce") == pytest.approx(0, abs=1e-6)


def test_hinge_values():
    assert discriminator_adversarial_loss(torch.tensor([2.0]), torch.tensor([-2.0]), "hinge") == 0
    assert generator_adversarial_loss(torch.tensor([3.0]), "hinge") == -3


def test_unknown_loss_type_is_named():
    with pytest.raises(ValueError, match="wgan"):
        generator_adversarial_loss(torch.zeros(1), "wgan")


def test_feature_matching_only_moves_the_fake_side():
    real = [torch.ones(2, 3, requires_grad=True)]
    fake = [torch.zeros(2, 3, requires_grad=True)]
    loss = feature_matching_loss(real, fake)
    loss.backward()
    assert loss == 1 and real[0].grad is None and fake[0].grad.abs().sum() > 0


def test_lsgan_targets_and_mean_feature_matching():
    from lightning_modules.common.training.losses import lsgan_loss, mean_feature_matching_loss

    assert lsgan_loss(torch.full((3,), 0.9), 0.9) == 0 and lsgan_loss(torch.zeros(3), 1.0) == 1
    real = torch.randn(4, 8, 4, 4)
    shuffled = real[torch.tensor([2, 0, 3, 1])]
    assert mean_feature_matching_loss(real, shuffled) == pytest.approx(0, abs=1e-7)  # batch statistics only
    assert mean_feature_matching_loss(real, real + 1) == pytest.approx(1.0)
