"""TCSANModule: the three optimiser groups, frozen VGG and AU-classifier statistics, loss terms by config,
checkpoints without VGG, and a short overfit."""

import pytest
import torch

from lightning_modules.common.contracts import whole_video
from lightning_modules.tcsan.evaluation import PAPER_PER_AU_GRID, PAPER_RESULTS, paper_row
from lightning_modules.tcsan.module import TCSANModule


def batch(batch_size=2, frames=4, size=112, seed=0):
    generator = torch.Generator().manual_seed(seed)
    video = torch.rand(batch_size, frames, 3, size, size, generator=generator) * 2 - 1
    return {
        "video": video,
        "identity": video[:, 0],
        "mfcc": torch.randn(batch_size, frames, 12, 28, generator=generator),
        "frame_mask": torch.ones(batch_size, frames, dtype=torch.bool),
        "au": (torch.rand(batch_size, frames, 5, generator=generator) > 0.5).float(),
        "au_mask": torch.ones(batch_size, frames, dtype=torch.bool),
    }


def small(**kwargs):
    return TCSANModule(width=0.125, allow_random_vgg=True, **kwargs)


def test_one_adam_with_three_groups_and_the_paper_rates():
    module = small()
    generator_optimizer, discriminator_optimizer = module.configure_optimizers()
    assert [g["lr"] for g in generator_optimizer.param_groups] == [2e-4, 1e-6, 1e-7]
    assert all(g["betas"] == (0.5, 0.999) for g in generator_optimizer.param_groups)
    grouped = [{id(p) for p in g["params"]} for g in generator_optimizer.param_groups]
    assert grouped[1] == {id(p) for p in module.generator.audio2au.parameters()}
    assert grouped[2] == {id(p) for p in module.au_classifier.parameters()}
    assert not any(p.requires_grad for p in module.perceptual.parameters())
    assert discriminator_optimizer.param_groups[0]["lr"] == 1e-3


def test_a_step_leaves_vgg_and_the_classifier_statistics_untouched():
    module = small().train()
    assert not module.au_classifier.training  # BN statistics frozen during full training
    vgg = {k: v.clone() for k, v in module.perceptual.state_dict().items()}
    statistics = {k: v.clone() for k, v in module.au_classifier.state_dict().items() if "running" in k}
    classifier_weight = module.au_classifier.head[-1].weight.detach().clone()
    optimizer = module.configure_optimizers()[0]
    loss = module.generator_loss(batch(), module.generate(batch()))
    assert set(loss.terms) == {"rec", "id", "per", "au"}
    loss.total.backward()
    optimizer.step()
    assert all(torch.equal(v, module.perceptual.state_dict()[k]) for k, v in vgg.items())
    assert all(torch.equal(v, module.au_classifier.state_dict()[k]) for k, v in statistics.items())
    assert not torch.equal(classifier_weight, module.au_classifier.head[-1].weight)  # fine-tuned by L_au


def test_au_loss_sends_no_gradient_to_the_upper_half():
    module = small(rec_weight=0.0, id_weight=0.0, per_weight=0.0)
    video = batch()["video"].requires_grad_(True)
    module.generator_loss(batch(), {"video": video}).total.backward()
    assert (video.grad[..., :56, :] == 0).all() and (video.grad[..., 56:, :] != 0).any()


def test_ablation_configs_drop_their_terms():
    baseline = small(fusion="gru", use_audio2au=False, per_weight=0.0, id_weight=0.0, au_weight=0.0)
    assert (
        baseline.au_classifier is None and baseline.perceptual is None and baseline.generator.audio2au is None
    )
    assert set(baseline.generator_loss(batch(), baseline.generate(batch())).terms) == {"rec"}
    assert len(baseline.configure_optimizers()[0].param_groups) == 1


def test_checkpoints_leave_out_the_frozen_vgg_and_load_back(tmp_path):
    module = small()
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert not any(k.startswith("perceptual.") for k in checkpoint["state_dict"])
    other = small()
    other.load_state_dict(checkpoint["state_dict"])
    assert torch.equal(other.generator.decoder.out.weight, module.generator.decoder.out.weight)


def test_without_vgg_weights_the_perceptual_loss_is_off_and_says_so():
    with pytest.warns(UserWarning, match="L_per is OFF"):
        module = TCSANModule(width=0.125)
    assert module.perceptual is None and not module.perceptual_active


def test_pretrained_parts_of_another_width_are_refused(tmp_path):
    from lightning_modules.common.errors import CheckpointError
    from lightning_modules.tcsan.pretraining import AUClassifierModule

    path = tmp_path / "classifier.ckpt"
    torch.save({"state_dict": AUClassifierModule(width=0.25).state_dict()}, path)
    with pytest.raises(CheckpointError, match="width must match"):
        small(au_classifier_from=str(path))
    torch.save({"state_dict": AUClassifierModule(width=0.125).state_dict()}, path)
    loaded = small(au_classifier_from=str(path))
    source = AUClassifierModule(width=0.125)
    source.load_state_dict(torch.load(path)["state_dict"])
    assert torch.equal(loaded.au_classifier.head[1].weight, source.classifier.head[1].weight)


def test_short_overfit_halves_the_reconstruction_loss():
    torch.manual_seed(0)
    data = batch(frames=6, size=32)
    # A learnable clip: a smooth face-like image whose lower half brightens with the first MFCC.
    rows = torch.linspace(-1, 1, 32)
    identity = (0.6 * torch.outer(rows, rows.flip(0)))[None, None].expand(2, 3, -1, -1).clone()
    loudness = torch.tanh(data["mfcc"][..., 0, 14])[..., None, None, None]  # (B, T, 1, 1, 1)
    lower = (torch.arange(32) >= 16).float()[:, None]
    data.update(identity=identity, video=(identity[:, None] + 0.3 * loudness * lower).clamp(-1, 1))
    module = TCSANModule(
        width=0.125, image_size=32, per_weight=0.0, au_weight=0.0, use_audio2au=False, lr=1e-3
    ).train()
    optimizer = module.configure_optimizers()[0]
    losses = []
    for _ in range(200):
        loss = module.generator_loss(data, module.generate(data))
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
        losses.append(float(loss.terms["rec"].detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0]


def test_each_configuration_names_its_paper_row_and_the_tables_average_as_printed():
    base = dict(fusion="tcsan", use_audio2au=True, per_weight=0.07, id_weight=1.5, au_weight=0.02)
    assert paper_row(base) == "TCSAN+Audio2AU"
    assert paper_row({**base, "fusion": "gru"}) == "Audio2AU (GRU)"
    assert paper_row({**base, "use_audio2au": False, "au_weight": 0.0}) == "TCSAN"
    assert paper_row({**base, "use_audio2au": False}) == "TCSAN + L_au"
    no_au = {**base, "use_audio2au": False, "au_weight": 0.0}
    assert paper_row({**no_au, "fusion": "gru", "per_weight": 0.0, "id_weight": 0.0}) == "Baseline (L_rec)"
    assert paper_row({**no_au, "fusion": "gru", "id_weight": 0.0}) == "L_rec,per"
    assert paper_row({**no_au, "fusion": "coatt_tcn"}) == "Co-att+TCN"
    assert paper_row({**base, "fusion": "tcn"}) is None
    for row, per_au in PAPER_PER_AU_GRID.items():  # Avg F1 / Avg Acc are the means of the per-AU columns
        f1, accuracy = (sum(column) / 5 for column in zip(*per_au))
        assert abs(f1 - PAPER_RESULTS[row]["grid"][2]) < 0.0015, row
        assert abs(accuracy - PAPER_RESULTS[row]["grid"][3]) < 0.015, row


def test_synthesis_gives_one_frame_per_40_ms_and_chunks_decode_identically():
    import numpy as np

    module = TCSANModule(width=0.125, per_weight=0.0, au_weight=0.0).eval()
    speech = np.random.default_rng(0).normal(0, 0.1, 16000 + 700).astype(np.float32)  # 1.04375 s
    face = np.random.default_rng(1).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    whole = whole_video(module.synthesise_chunks(speech, face, chunk_frames=1000))
    assert whole.shape == (27, 112, 112, 3) and whole.dtype == np.uint8  # ceil(1.04375 × 25)
    chunks = list(module.synthesise_chunks(speech, face, chunk_frames=4))
    assert [len(chunk) for chunk in chunks] == [4] * 6 + [3]
    assert np.array_equal(np.concatenate(chunks), whole)
