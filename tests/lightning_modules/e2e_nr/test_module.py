"""The E2E-NR LightningModule: its losses per stage, the curriculum's weight hand-over, and inference."""

from unittest import mock

import pytest
import torch

from lightning_modules.common.contracts import whole_video
from lightning_modules.common.errors import CheckpointError
from lightning_modules.e2e_nr.module import E2ENRModule

WIDTH = 0.0625
FRAMES = 4


def _batch(noisy_equals_clean: bool = False) -> dict:
    torch.manual_seed(0)
    audio = torch.randn(2, 320 * FRAMES)
    return {
        "video": torch.rand(2, FRAMES, 3, 128, 128) * 2 - 1,
        "audio": audio,
        "noisy_audio": audio.clone() if noisy_equals_clean else audio + 0.5 * torch.randn_like(audio),
        "audio_length": torch.tensor([320 * FRAMES, 320 * FRAMES]),
        "frame_mask": torch.ones(2, FRAMES, dtype=torch.bool),
        "mouth_centre": torch.full((2, FRAMES, 2), 64.0),
    }


def test_noise_resilience_loss_is_zero_when_the_noisy_speech_is_the_clean_speech():
    module = E2ENRModule(width=WIDTH)
    same = _batch(noisy_equals_clean=True)
    terms = module.generator_loss(same, module.generate(same)).terms
    assert terms["noise_resilience"].item() == 0.0
    assert torch.isclose(terms["masked_l1"], terms["masked_l1_noisy"])
    different = _batch()
    assert module.generator_loss(different, module.generate(different)).terms["noise_resilience"].item() > 0


def test_reconstruction_stage_never_runs_the_critics():
    module = E2ENRModule(width=WIDTH, stage="recon")
    calls = []
    for critic in (module.frame_discriminator, module.pair_discriminator):
        critic.register_forward_hook(lambda *args: calls.append(1))
    batch = _batch()
    loss = module.generator_loss(batch, module.generate(batch))
    assert not module.trains_discriminator() and not calls
    assert set(loss.terms) == {
        "masked_l1",
        "masked_l1_noisy",
        "noise_resilience",
        "noise_resilience_weight",
        "speech_feature_time_std",
    }


def test_the_speech_features_variation_over_time_is_logged():
    """The noise-resilience loss can flatten the speech features over time (the mouth then has nothing to
    follow); the training log shows it as `train/g_speech_feature_time_std`."""
    from lightning_modules.e2e_nr.losses import feature_time_std

    module, batch = E2ENRModule(width=WIDTH), _batch()
    output = module.generate(batch)
    logged = module.generator_loss(batch, output).terms["speech_feature_time_std"]
    assert logged > 0 and torch.isclose(logged, output["clean_features"].std(dim=2).mean())
    assert feature_time_std(torch.ones(2, 16, 20), time_axis=2) == 0  # a collapsed stream


def test_noise_resilience_weight_ramps_in_over_its_steps():
    """γ stays 0 until the ramp starts (L_NR cannot flatten the speech features before the mouth follows the
    speech), then grows linearly to nr_weight; without a ramp it is nr_weight from the first step."""
    assert E2ENRModule(width=WIDTH, nr_weight=1e-3).noise_resilience_weight() == 1e-3
    module = E2ENRModule(width=WIDTH, nr_weight=1e-3, nr_ramp_steps=(100, 140))
    weights = []
    for step in (0, 100, 120, 140, 500):
        with mock.patch.object(E2ENRModule, "global_step", new_callable=mock.PropertyMock, return_value=step):
            weights.append(module.noise_resilience_weight())
    assert weights == pytest.approx([0.0, 0.0, 5e-4, 1e-3, 1e-3])
    batch = _batch()
    terms = module.generator_loss(batch, module.generate(batch))
    assert terms.terms["noise_resilience_weight"] == 0 and terms.terms["noise_resilience"] > 0
    assert torch.isclose(terms.total, terms.terms["masked_l1"] + terms.terms["masked_l1_noisy"])


def test_adversarial_stage_losses_and_gradients_stay_with_their_player():
    module = E2ENRModule(width=WIDTH, stage="adv")
    batch = _batch()
    output = module.generate(batch)
    generator_loss = module.generator_loss(batch, output)
    assert {"frame_adversarial", "pair_adversarial"} <= set(generator_loss.terms)
    detached = {k: v.detach() for k, v in output.items()}
    discriminator_loss = module.discriminator_loss(batch, detached)
    assert torch.isfinite(discriminator_loss.total)
    discriminator_loss.total.backward()
    assert all(p.grad is None for p in module.generator.parameters())  # D's step cannot move G
    assert any(p.grad is not None for p in module.frame_discriminator.parameters())
    assert any(p.grad is not None for p in module.pair_discriminator.parameters())


def test_base_model_ignores_noisy_audio():
    module = E2ENRModule(width=WIDTH, noise_resilient=False)
    batch = _batch()
    assert set(module.generator_loss(batch, module.generate(batch)).terms) == {
        "masked_l1",
        "speech_feature_time_std",
    }


def test_adversarial_stage_starts_from_the_reconstruction_generator(tmp_path):
    recon = E2ENRModule(width=WIDTH)
    path = tmp_path / "recon.ckpt"
    torch.save({"state_dict": recon.state_dict()}, path)
    adv = E2ENRModule(width=WIDTH, stage="adv", init_from=str(path))
    for name, value in recon.generator.state_dict().items():
        assert torch.equal(value, adv.generator.state_dict()[name])
    with pytest.raises(CheckpointError, match="width"):
        E2ENRModule(width=2 * WIDTH, stage="adv", init_from=str(path))


def test_rejects_other_image_sizes_and_unknown_choices():
    with pytest.raises(ValueError, match="128"):
        E2ENRModule(width=WIDTH, image_size=64)
    with pytest.raises(ValueError, match="stage"):
        E2ENRModule(width=WIDTH, stage="both")


def test_synthesise_makes_one_frame_per_40_ms_of_any_length():
    module = E2ENRModule(width=WIDTH).eval()
    face = (torch.rand(128, 128, 3) * 255).byte().numpy()
    frames = whole_video(module.synthesise_chunks(torch.randn(5000).numpy(), face, chunk_frames=6))
    assert frames.shape == (16, 128, 128, 3) and frames.dtype.name == "uint8"  # ceil(5000 / 320)
