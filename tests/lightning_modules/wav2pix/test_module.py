"""Wav2PixModule: loss definitions on hand-made scores, gradient routing, MC dropout, a short fit."""

import lightning as L
import pytest
import torch
from torch import nn

from lightning_modules.common.training.gan import detach_all
from lightning_modules.wav2pix.module import Wav2PixModule

B, SIZE = 4, 64


def make_batch(num_identities=3):
    torch.manual_seed(0)
    return {
        "audio": torch.randn(B, 16000) * 0.1,
        "face": torch.rand(B, 3, SIZE, SIZE) * 2 - 1,
        "wrong_face": torch.rand(B, 3, SIZE, SIZE) * 2 - 1,
        "identity": torch.arange(B) % num_identities,
    }


class ScriptedCritic(nn.Module):
    """Returns a fixed score per kind of input image (real, wrong, anything else = generated)."""

    def __init__(self, batch, real, wrong, fake):
        super().__init__()
        self.batch, self.scores = batch, {"real": real, "wrong": wrong, "fake": fake}

    def forward(self, image, embedding):
        kind = (
            "real"
            if image is self.batch["face"]
            else "wrong"
            if image is self.batch["wrong_face"]
            else "fake"
        )
        return torch.full((len(image),), self.scores[kind]) + 0 * embedding.sum(), torch.zeros(
            len(image), 2, 4, 4
        )


def test_perfect_discriminator_has_zero_loss_and_paper_only_halves_it():
    module = Wav2PixModule(image_size=SIZE, num_identities=3)
    batch = make_batch()
    output = detach_all(module.generate(batch))
    module.discriminator = ScriptedCritic(batch, real=0.9, wrong=0.0, fake=0.0)
    assert module.discriminator_loss(batch, output).total == pytest.approx(0.0)
    module.discriminator = ScriptedCritic(batch, real=0.0, wrong=1.0, fake=1.0)
    assert module.discriminator_loss(batch, output).total == pytest.approx(0.81 + 1 + 1)
    paper = Wav2PixModule(
        image_size=SIZE, num_identities=3, real_label=1.0, wrong_weight=0.0, adversarial_scale=0.5
    )
    paper.discriminator = ScriptedCritic(batch, real=0.0, wrong=1.0, fake=1.0)
    # eq. 1, no wrong term
    assert paper.discriminator_loss(batch, output).total == pytest.approx(0.5 * (1 + 1))


def test_generator_terms_follow_the_paper():
    module = Wav2PixModule(image_size=SIZE, num_identities=3)
    batch = make_batch()
    output = module.generate(batch)
    module.discriminator = ScriptedCritic(batch, real=0.9, wrong=0.0, fake=1.0)
    loss = module.generator_loss(batch, output)
    terms = {name: value.item() for name, value in loss.terms.items()}
    assert terms["adversarial"] == 0 and terms["feature_matching"] == 0  # D(x̂) = 1, equal features
    assert terms["l1"] == pytest.approx((output["fake"] - batch["face"]).abs().mean().item(), rel=1e-5)
    assert loss.total.item() == pytest.approx(50 * terms["l1"] + 20 * terms["identity"], rel=1e-5)


def test_discriminator_loss_sends_no_gradient_to_the_generator_side():
    module = Wav2PixModule(image_size=SIZE, num_identities=3)
    batch = make_batch()
    module.discriminator_loss(batch, detach_all(module.generate(batch))).total.backward()
    generator_side = [
        p
        for m in (module.speech_encoder, module.generator, module.identity_classifier)
        for p in m.parameters()
    ]
    assert all(p.grad is None for p in generator_side)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.discriminator.parameters())


@pytest.mark.parametrize("mc_dropout", [True, False])
def test_inference_samples_with_dropout_only_when_asked(mc_dropout):
    module = Wav2PixModule(image_size=SIZE, num_identities=3, mc_dropout=mc_dropout).eval()
    audio = make_batch()["audio"]
    with torch.no_grad():
        first, second = module(audio), module(audio)
    assert first.shape == (B, 3, SIZE, SIZE) and first.abs().max() <= 1
    assert torch.equal(first, second) != mc_dropout


def test_a_short_fit_moves_every_network_and_logs_samples(tmp_path, isolated_data_and_runs):
    from datamodules.youtubers import YoutubersDataModule

    datamodule = YoutubersDataModule(
        demo_size="tiny", image_size=SIZE, batch_size=8, eval_batch_size=8, num_workers=0, prepare_workers=0
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = Wav2PixModule(image_size=SIZE, num_identities=datamodule.num_identities)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = L.Trainer(
        max_steps=6,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        val_check_interval=3,
        default_root_dir=tmp_path,
        enable_checkpointing=False,
    )
    trainer.fit(module, datamodule)
    for key in ("train/d_loss", "train/g_loss", "train/g_l1", "train/g_identity", "val/l1"):
        assert torch.isfinite(trainer.callback_metrics[key]), key
    for prefix in ("speech_encoder.", "identity_classifier.", "generator.", "discriminator."):
        assert any(
            not torch.equal(v, before[k])
            for k, v in module.state_dict().items()
            if k.startswith(prefix) and v.is_floating_point()
        ), prefix
    assert list((tmp_path / "samples").glob("val_samples-*.png"))


def test_the_generator_step_runs_its_own_forward_with_new_dropout_masks(tmp_path):
    """As in the authors' loop: D's update uses one generator forward, G's update a second one."""
    module = Wav2PixModule(image_size=SIZE, num_identities=3)
    generated, seen = [], {}
    generate = module.generate

    def counting_generate(batch):
        generated.append(generate(batch))
        return generated[-1]

    def recording(player, loss):
        def record(batch, output):
            seen.setdefault(player, output)
            return loss(batch, output)

        return record

    module.generate = counting_generate
    module.generator_loss = recording("g", module.generator_loss)
    module.discriminator_loss = recording("d", module.discriminator_loss)
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        enable_checkpointing=False,
    )
    # One batch: D's step, then G's.
    trainer.fit(module, torch.utils.data.DataLoader([make_batch()], batch_size=None))
    assert len(generated) == 2
    d_forward, g_forward = generated  # D steps first
    assert torch.equal(seen["d"]["fake"], d_forward["fake"].detach())
    assert seen["g"]["fake"] is g_forward["fake"]  # G's loss back-propagates through the second forward
    assert not torch.equal(d_forward["fake"], g_forward["fake"])  # same audio and weights, new dropout masks


def _adversarial_losses(module, batches, train_discriminator):
    """Step one player only for len(batches) steps; return that player's adversarial loss per step."""
    generator_optimizer, discriminator_optimizer = module.configure_optimizers()
    history = []
    for batch in batches:
        output = module.generate(batch)
        if train_discriminator:
            loss = module.discriminator_loss(batch, detach_all(output))
            value, optimizer = loss.total, discriminator_optimizer
        else:
            loss = module.generator_loss(batch, output)
            value, optimizer = loss.total, generator_optimizer
            history_value = loss.terms["adversarial"]
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        history.append(float(value if train_discriminator else history_value))
    return history


def test_each_players_adversarial_loss_falls_when_only_it_learns():
    """D and G pull in opposite directions: D's steps lower D's loss, G's steps lower G's adversarial term."""
    torch.manual_seed(0)
    batches = [make_batch() for _ in range(12)]
    d_losses = _adversarial_losses(
        Wav2PixModule(image_size=SIZE, num_identities=3), batches, train_discriminator=True
    )
    assert sum(d_losses[-3:]) < sum(d_losses[:3])
    torch.manual_seed(0)
    generator_only = Wav2PixModule(
        image_size=SIZE, num_identities=3, l1_weight=0, feature_matching_weight=0, identity_weight=0
    )
    g_losses = _adversarial_losses(generator_only, batches, train_discriminator=False)
    assert sum(g_losses[-3:]) < sum(g_losses[:3])
