"""The trained stand-in generator (lightning_modules/a2v/stand_in.py): StyleGAN3's interface, GLO training
that lowers the reconstruction loss, a file that loads back to the same network, and a clear error for a
missing or damaged file."""

import pytest
import torch

from lightning_modules.a2v.generator import (
    GeneratorConfig,
    TrainedStyleGenerator,
    build_generator,
    save_trained_stand_in,
)
from lightning_modules.a2v.stand_in import StandInTrainingConfig, fit_glo, reconstruction_loss
from lightning_modules.common.errors import WeightsError


def blobs(count: int, side: int = 16) -> torch.Tensor:
    """`(count, 3, side, side)` frames in [-1, 1]: a dark disc of varying size on a light ground, a toy of
    a mouth opening and closing."""
    grid = torch.linspace(-1, 1, side)
    radius = (grid[:, None].square() + grid[None].square()).sqrt()
    sizes = torch.linspace(0.2, 0.8, count)[:, None, None, None]
    return torch.where(radius < sizes, -0.8, 0.6).expand(-1, 3, -1, -1).clone()


@pytest.fixture(scope="module")
def fitted():
    return fit_glo(blobs(6), StandInTrainingConfig(steps=40, batch_size=6, lr=5e-3, code_lr=5e-2), channels=8)


def test_the_trained_stand_in_has_stylegan3s_interface():
    generator = TrainedStyleGenerator(16, 8)
    sizes = (generator.z_dim, generator.w_dim, generator.num_ws, generator.img_resolution)
    assert sizes == (512, 512, 16, 16)
    ws = generator.mapping(torch.randn(3, 512), None, truncation_psi=0.7)
    assert ws.shape == (3, 16, 512) and generator.w_avg.shape == (512,)
    images = generator.synthesis(ws)
    assert images.shape == (3, 3, 16, 16) and images.abs().max() <= 1


def test_the_mapping_draws_codes_distributed_like_the_learned_ones():
    generator = TrainedStyleGenerator(8, 8)
    codes = torch.randn(4000, 512) * torch.linspace(0.1, 2.0, 512) + 3.0
    generator.fit_mapping(codes)
    assert torch.allclose(generator.w_avg, codes.mean(0))
    drawn = generator.mapping(torch.randn(4000, 512))[:, 0]
    assert torch.allclose(drawn.std(0), codes.std(0), rtol=0.1)
    truncated = generator.mapping(torch.randn(2, 512), truncation_psi=0)
    assert torch.equal(truncated[:, 5], generator.w_avg.expand(2, -1))


def test_glo_steps_lower_the_reconstruction_loss(fitted):
    first, last = fitted.losses[0], sum(fitted.losses[-5:]) / 5
    assert last < 0.6 * first, fitted.losses
    with torch.no_grad():
        images = fitted.generator.synthesis(fitted.codes[:, None].expand(-1, 16, -1))
    assert reconstruction_loss(images, blobs(6)) < 0.6 * first


def test_a_saved_stand_in_loads_back_drawing_the_same_frames(fitted, tmp_path):
    path = tmp_path / "stand_in.pt"
    save_trained_stand_in(fitted.generator, path, {"psnr_db": 20.0})
    loaded = build_generator(GeneratorConfig(trained_stand_in=str(path)))
    assert isinstance(loaded, TrainedStyleGenerator) and not loaded.training
    z = torch.randn(2, 512)
    with torch.no_grad():
        frames = [g.synthesis(g.mapping(z)) for g in (loaded, fitted.generator)]
    assert torch.equal(*frames)
    assert GeneratorConfig(trained_stand_in=str(path)).identity().startswith("trained:")


def test_a_missing_or_damaged_stand_in_file_is_named_with_the_fix(fitted, tmp_path):
    missing = tmp_path / "nope.pt"
    fix = "`make train EXP=a2v_face_generator` trains it"
    with pytest.raises(WeightsError, match=rf"nope.pt: trained stand-in generator not found; {fix}"):
        build_generator(GeneratorConfig(trained_stand_in=str(missing)))
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"not a checkpoint")
    unreadable = r"not a trained A2V stand-in generator \(unreadable: damaged.*\)"
    with pytest.raises(WeightsError, match=rf"damaged.pt: {unreadable}; {fix}"):
        build_generator(GeneratorConfig(trained_stand_in=str(damaged)))
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(WeightsError, match=r"foreign.pt: not a trained A2V stand-in generator \(KeyError"):
        build_generator(GeneratorConfig(trained_stand_in=str(foreign)))


def test_stylegan3_and_the_trained_stand_in_are_not_given_together():
    with pytest.raises(ValueError, match="either StyleGAN3 .* or generator.trained_stand_in"):
        GeneratorConfig(stylegan3_pkl="g.pkl", trained_stand_in="s.pt")


def test_the_face_generator_stage_trains_on_the_crops_and_writes_the_stand_in(tmp_path):
    """`make train EXP=a2v_face_generator --smoke`: the stage's data job, on the tiny AVSpeech fixture."""
    from experiments.configs import stage_configs
    from experiments.train import prepare_stage

    path = tmp_path / "stand_in.pt"
    summary = prepare_stage(
        stage_configs("a2v_face_generator", demo=True, smoke=True),
        [f"--data.init_args.generator.trained_stand_in={path}"],
    )
    assert summary["training_frames"] > 0 and summary["resolution"] == 32
    assert set(summary["inversion"]) == {"train", "held_out"}
    assert all(0 <= s["faces_found"] <= 1 and s["psnr_db"] > 0 for s in summary["inversion"].values())
    assert build_generator(GeneratorConfig(trained_stand_in=str(path))).img_resolution == 32
