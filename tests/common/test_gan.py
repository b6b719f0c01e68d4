"""The shared manual-optimisation GAN step, on a toy 1-D GAN."""

import warnings

import lightning as L
import pytest
import torch
from torch import nn

from lightning_modules.common.training.gan import AdversarialModule, LossTerms, NonFiniteLossError
from lightning_modules.common.training.losses import (
    discriminator_adversarial_loss,
    generator_adversarial_loss,
)
from lightning_modules.common.training.split_evaluation import SplitEvaluationModule


class ToyGAN(AdversarialModule):
    def __init__(self, poison_step: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.critic = nn.Linear(2, 2), nn.Linear(2, 1)
        self.poison_step = poison_step

    def generate(self, batch):
        return self.generator(batch["noise"])

    def generator_loss(self, batch, fake):
        loss = generator_adversarial_loss(self.critic(fake))
        if self.poison_step is not None and self.global_step >= self.poison_step:
            loss = loss * float("nan")
        return LossTerms(loss, {"adv": loss})

    def discriminator_loss(self, batch, fake):
        assert not fake.requires_grad  # the shared step hands D a detached fake
        loss = discriminator_adversarial_loss(self.critic(batch["real"]), self.critic(fake))
        return LossTerms(loss, {"adv": loss})

    def configure_optimizers(self):
        return [
            torch.optim.SGD(self.generator.parameters(), 0.1),
            torch.optim.SGD(self.critic.parameters(), 0.1),
        ]


def loader(n: int = 8):
    data = [{"noise": torch.randn(2), "real": torch.randn(2) + 3} for _ in range(n)]
    return torch.utils.data.DataLoader(data, batch_size=4)


def fit(model, steps: int = 4):
    trainer = L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(model, loader())
    return trainer


@pytest.mark.parametrize("discriminator_first", [False, True])
def test_both_players_update(discriminator_first):
    torch.manual_seed(0)
    model = ToyGAN(discriminator_first=discriminator_first)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = fit(model)
    assert all(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert trainer.global_step == 4  # manual optimisation counts each player's step
    assert {"train/g_loss", "train/d_loss", "train/g_adv"} <= set(trainer.callback_metrics)


def test_nonfinite_loss_stops_with_the_batch_named():
    with pytest.raises(NonFiniteLossError, match="batch 1"):
        fit(ToyGAN(poison_step=2))


def test_nonfinite_loss_can_be_skipped():
    torch.manual_seed(0)
    model = ToyGAN(poison_step=0, nonfinite="skip")
    generator_before = model.generator.weight.clone()
    with pytest.warns(UserWarning, match="update skipped"):
        fit(model)
    assert torch.equal(model.generator.weight, generator_before)


class GeneratorOnlyToyGAN(ToyGAN):
    def trains_discriminator(self):
        return False

    def discriminator_loss(self, batch, fake):
        raise AssertionError("a generator-only phase must not compute D's loss")


def test_generator_only_phase_leaves_the_discriminator_alone():
    torch.manual_seed(0)
    model = GeneratorOnlyToyGAN()
    critic_before = model.critic.weight.clone()
    generator_before = model.generator.weight.clone()
    trainer = fit(model)
    assert torch.equal(model.critic.weight, critic_before)
    assert not torch.equal(model.generator.weight, generator_before)
    assert trainer.global_step == 4 and "train/d_loss" not in trainer.callback_metrics  # one step per batch


class CountingToyGAN(ToyGAN):
    """Records every generator forward, and the output each player's loss receives."""

    def __init__(self, fresh: bool, **kwargs):
        super().__init__(**kwargs)
        self.fresh_generator_forward = fresh
        self.generated, self.seen = [], {"g": [], "d": []}

    def generate(self, batch):
        self.generated.append(super().generate(batch))
        return self.generated[-1]

    def generator_loss(self, batch, fake):
        self.seen["g"].append(fake)
        return super().generator_loss(batch, fake)

    def discriminator_loss(self, batch, fake):
        self.seen["d"].append(fake)
        return super().discriminator_loss(batch, fake)


@pytest.mark.parametrize("discriminator_first", [False, True])
@pytest.mark.parametrize("fresh", [False, True])
def test_generator_forwards_per_batch_are_one_shared_or_one_per_player(fresh, discriminator_first):
    model = CountingToyGAN(fresh, discriminator_first=discriminator_first)
    fit(model, steps=2)  # one batch
    assert len(model.generated) == (2 if fresh else 1)
    g_fake, d_fake = model.seen["g"][0], model.seen["d"][0]
    assert g_fake is model.generated[-1 if discriminator_first else 0]  # the forward G back-propagates
    assert torch.equal(d_fake, model.generated[0 if discriminator_first else -1].detach())


class WinningCritic(ToyGAN):
    """D's loss is ~0 from the start: the divergence the shared step must warn about."""

    def discriminator_loss(self, batch, fake):
        loss = self.critic(batch["real"]).sum() * 0 + 1e-6
        return LossTerms(loss, {"adv": loss})


def test_a_discriminator_that_has_won_is_reported(monkeypatch):
    from lightning_modules.common.training import gan

    monkeypatch.setattr(gan, "COLLAPSE_PATIENCE", 3)
    with pytest.warns(
        UserWarning, match="GAN divergence: the discriminator's loss has been below 0.001 for 3 batches"
    ):
        fit(WinningCritic(), steps=8)
    with warnings.catch_warnings(record=True) as caught:  # a healthy toy GAN never triggers it
        warnings.simplefilter("always")
        torch.manual_seed(0)
        fit(ToyGAN(), steps=8)
    assert not [w for w in caught if "GAN divergence" in str(w.message)]


class Regressor(SplitEvaluationModule):
    """Automatic optimisation, a loss that turns NaN on the third batch."""

    def __init__(self, width: int = 2):
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(2, width)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch["noise"]).square().mean()
        return loss * float("nan") if batch_idx == 2 else loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), 0.1)


def test_a_nan_loss_under_automatic_optimisation_names_its_batch():
    trainer = L.Trainer(
        max_steps=5,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    with pytest.raises(NonFiniteLossError, match="batch 2, global step 2"):
        trainer.fit(Regressor(), loader(16))


def test_a_checkpoint_of_another_configuration_is_refused_with_the_differences(tmp_path):
    from lightning_modules.common.errors import CheckpointError

    path = tmp_path / "narrow.ckpt"
    torch.save({"state_dict": Regressor(width=2).state_dict(), "hyper_parameters": {"width": 2}}, path)
    with pytest.raises(
        CheckpointError, match=r"layer.weight: \(2, 2\) vs \(3, 2\).*width: 2 in the checkpoint, 3 now"
    ):
        Regressor(width=3).on_load_checkpoint(torch.load(path, weights_only=True))
    Regressor(width=2).on_load_checkpoint(torch.load(path, weights_only=True))  # its own configuration loads


def test_ctrl_c_is_taken_at_the_next_batch_end_and_twice_at_once():
    from lightning_modules.common.training.callbacks import GracefulInterrupt

    interrupt = GracefulInterrupt()
    # inside whatever the main thread runs (maybe a finaliser): no exception there
    interrupt._handler(2, None)
    assert interrupt.requested
    with pytest.raises(KeyboardInterrupt):
        interrupt.on_train_batch_end(None, None, None, None, 0)
    with pytest.raises(KeyboardInterrupt):
        interrupt._handler(2, None)
