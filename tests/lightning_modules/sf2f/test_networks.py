"""SF2F networks against docs/sf2f.md: shapes, invariants, parameter counts."""

import math

import pytest
import torch

from lightning_modules.sf2f.networks import (
    InceptionBlock1d,
    sf2f_attention_fuser,
    sf2f_face_decoder,
    sf2f_identity_discriminator,
    sf2f_patch_discriminator,
    sf2f_voice_encoder,
    voice2face_decoder,
    voice2face_encoder,
)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda: sf2f_voice_encoder("official"), 4_848_192),
        (lambda: sf2f_voice_encoder("paper"), 5_401_664),
        (lambda: sf2f_attention_fuser("official"), 786_432),
        (lambda: sf2f_attention_fuser("paper"), 786_944),
        (lambda: sf2f_face_decoder("official", 64), 11_566_083),
        (lambda: sf2f_face_decoder("official", 128, multires=True), 11_577_734),
        (lambda: sf2f_face_decoder("paper", 64), 11_010_051),
        (lambda: sf2f_face_decoder("paper", 128), 11_014_659),
        (lambda: sf2f_patch_discriminator("official", 64), 659_521),
        (lambda: sf2f_identity_discriminator(2890, "official", 64), 3_885_707),
        (lambda: sf2f_identity_discriminator(2890, "paper", 64), 3_885_194),
        # The paper's 2-way softmax head has 924,994; one logit with BCE has 1,025 fewer parameters.
        (lambda: sf2f_patch_discriminator("paper", 64), 924_994 - 1_025),
    ],
)
def test_parameter_counts_match_the_layer_tables(build, expected):
    assert count(build()) == expected


@pytest.mark.parametrize("length", [7, 8, 125, 126])
def test_inception_block_halves_time(length):
    out = InceptionBlock1d(40, 256)(torch.randn(2, 40, length))
    assert out.shape == (2, 256, math.ceil(length / 2))


@pytest.mark.parametrize("preset", ["official", "paper"])
@pytest.mark.parametrize("frames", [50, 100, 101, 125, 150, 500])
def test_voice_encoder_unit_embeddings_for_any_length(preset, frames):
    encoder = sf2f_voice_encoder(preset, width_scale=0.25)
    out = encoder(torch.randn(2, 40, frames))
    assert out.shape == (2, 512)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert encoder.head(encoder.blocks(torch.randn(1, 40, frames))).shape[-1] == math.ceil(frames / 32)


def test_voice_encoder_has_no_batch_coupling_in_eval():
    encoder = sf2f_voice_encoder(width_scale=0.25).eval()
    mel = torch.randn(3, 40, 125)
    together = encoder(mel)
    alone = torch.cat([encoder(mel[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("preset", ["official", "paper"])
def test_fuser_is_permutation_invariant_and_unit_norm(preset):
    fuser = sf2f_attention_fuser(preset)
    segments = torch.nn.functional.normalize(torch.randn(2, 7, 512), dim=-1)
    out = fuser(segments)
    assert out.shape == (2, 512) and torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(fuser(segments[:, torch.randperm(7)]), out, atol=1e-5)
    assert fuser(segments[:, :1]).shape == (2, 512)
    assert torch.allclose(fuser.attention(segments).sum(-1), torch.ones(2, 7), atol=1e-5)


def test_fuser_with_zero_scores_attends_uniformly():
    fuser = sf2f_attention_fuser()
    torch.nn.init.zeros_(fuser.query.weight)
    assert torch.allclose(fuser.attention(torch.randn(1, 4, 512)), torch.full((1, 4, 4), 0.25))


@pytest.mark.parametrize(
    "preset, resolution, multires, sides",
    [
        ("official", 64, False, [64]),
        ("official", 128, False, [128]),
        ("official", 128, True, [64, 128]),
        ("paper", 64, False, [64]),
        ("paper", 128, True, [64, 128]),
    ],
)
def test_decoders_return_tuples_lowest_first(preset, resolution, multires, sides):
    images = sf2f_face_decoder(preset, resolution, multires, width_scale=0.25)(torch.randn(2, 512))
    assert [tuple(i.shape) for i in images] == [(2, 3, s, s) for s in sides]


def test_baselines_build():
    assert voice2face_encoder(width_scale=0.25)(torch.randn(2, 40, 100)).shape == (2, 512)
    assert voice2face_decoder(width_scale=0.25)(torch.randn(2, 512))[0].shape == (2, 3, 64, 64)


@pytest.mark.parametrize("size", [64, 128])
def test_critic_outputs(size):
    images = torch.randn(2, 3, size, size)
    assert sf2f_patch_discriminator("official", size, 0.25)(images).shape == (2, 1, 6, 6)
    assert sf2f_patch_discriminator("paper", size, 0.25)(images).shape == (2, 1)
    identity, real = sf2f_identity_discriminator(5, "official", size, 0.25)(images)
    assert identity.shape == (2, 5) and real.shape == (2, 1)
    identity, real = sf2f_identity_discriminator(5, "paper", size, 0.25)(images)
    assert identity.shape == (2, 5) and real is None


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="'nope'"):
        sf2f_voice_encoder("nope")
    with pytest.raises(ValueError, match="96"):
        sf2f_face_decoder(resolution=96)
