"""Wav2Pix networks against docs/wav2pix.md: counts, shapes, spectral norm, dropout, init."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from lightning_modules.wav2pix.networks import (
    FaceDiscriminator,
    FaceGenerator,
    IdentityClassifier,
    SpeechEncoder,
    spectral,
)


def count(module: nn.Module) -> int:
    # Spectral norm's u/v vectors are buffers, so parameters() leaves them out, as docs/wav2pix.md does.
    return sum(p.numel() for p in module.parameters())


def convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def is_spectral(layer: nn.Module) -> bool:
    return parametrize.is_parametrized(layer, "weight")


def top_singular_value(matrix: torch.Tensor, iterations: int = 200) -> float:
    """σ_max by our own power iteration (LAPACK SVDs of these wide matrices take seconds on a busy CPU)."""
    vector = torch.randn(matrix.shape[1], dtype=matrix.dtype, generator=torch.Generator().manual_seed(0))
    for _ in range(iterations):
        vector = matrix.T @ (matrix @ vector)
        vector = vector / vector.norm()
    return (matrix @ vector).norm().item()


@pytest.fixture(scope="module")
def networks():
    """One full-size G and D per image size, built once: they are the slowest things here."""
    torch.manual_seed(0)
    return {size: (FaceGenerator(size), FaceDiscriminator(size)) for size in (64, 128)}


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda: SpeechEncoder(16000), 11_495_424),
        (lambda: SpeechEncoder(16384), 11_495_424),
        (lambda: SpeechEncoder(11200), 11_233_280),
        (lambda: SpeechEncoder(4800), 10_708_992),
        (lambda: IdentityClassifier(10), 28_230),
        (lambda: FaceGenerator(128), 13_241_344),
        (lambda: FaceGenerator(64), 3_804_160),
        (lambda: FaceDiscriminator(128), 11_162_624),
        (lambda: FaceDiscriminator(64), 2_765_824),
    ],
)
def test_parameter_counts_match_the_layer_tables(build, expected):
    assert count(build()) == expected


@pytest.mark.parametrize("samples, flat", [(16000, 4096), (16384, 4096), (11200, 3072), (4800, 1024)])
def test_encoder_embeds_every_clip_length(samples, flat):
    encoder = SpeechEncoder(samples)
    assert encoder.flat_size == flat
    wav = torch.randn(2, samples)
    assert encoder(wav).shape == (2, 128)
    assert encoder(wav.unsqueeze(1)).shape == (2, 128)


def test_encoder_lengths_at_one_second():
    encoder, lengths = SpeechEncoder(16000), []
    x = torch.randn(2, 1, 16000)
    for layer in encoder.convs:
        x = layer(x)
        if isinstance(layer, nn.Conv1d):
            lengths.append(x.shape[-1])
    assert lengths == [4000, 1000, 250, 63, 16, 4]
    assert x.shape == (2, 1024, 4)


def test_encoder_probe_leaves_batchnorm_statistics_alone():
    encoder = SpeechEncoder(16000)
    assert encoder.training
    for norm in (m for m in encoder.modules() if isinstance(m, nn.BatchNorm1d)):
        assert int(norm.num_batches_tracked) == 0
        assert torch.equal(norm.running_mean, torch.zeros_like(norm.running_mean))


def test_identity_classifier_gives_logits():
    assert IdentityClassifier(7)(torch.randn(4, 128)).shape == (4, 7)


@pytest.mark.parametrize("size", [64, 128])
def test_generator_faces_lie_in_tanh_range(networks, size):
    faces = networks[size][0](torch.randn(2, 128))
    assert faces.shape == (2, 3, size, size)
    assert faces.min() >= -1 and faces.max() <= 1


@pytest.mark.parametrize("size, channels", [(64, 512), (128, 1024)])
def test_discriminator_returns_score_and_features(networks, size, channels):
    score, features = networks[size][1](torch.randn(2, 3, size, size), torch.randn(2, 128))
    assert score.shape == (2,)
    assert features.shape == (2, channels, 4, 4)


@pytest.mark.parametrize("size", [64, 128])
def test_spectral_norm_placement_and_no_batchnorm(networks, size):
    generator, discriminator = networks[size]
    assert all(is_spectral(layer) for layer in convs(generator))
    assert len(convs(generator)) == {64: 5, 128: 6}[size]
    d_convs = convs(discriminator)
    assert d_convs[-1] is discriminator.score and not is_spectral(discriminator.score)
    assert all(is_spectral(layer) for layer in d_convs[:-1])
    assert len(d_convs) == {64: 5, 128: 6}[size]
    for network in (generator, discriminator):
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in network.modules())
        assert all(layer.bias is None for layer in convs(network))


def test_power_iteration_drives_sigma_to_one(networks):
    generator, discriminator = networks[64]
    for layer in convs(generator) + convs(discriminator)[:-1]:
        with torch.no_grad():
            for _ in range(10):  # each access of .weight in train mode runs one more power iteration
                weight = layer.weight
        # The authors read every weight with its first axis as rows: out × rest for a Conv2d, in × rest
        # for a ConvTranspose2d (whose weight is (in, out, kH, kW)).
        rows = weight.reshape(weight.shape[0], -1).double()
        assert top_singular_value(rows) == pytest.approx(1.0, abs=0.05)


def test_transposed_conv_is_normalised_over_input_channels():
    """PyTorch's own default for transposed convs (output channels as rows) gives a different σ: here the
    in-channel reading would be ≈ 0.45 (wide layer) or ≈ 1.5 (narrow layer) instead of 1."""
    torch.manual_seed(0)
    for in_channels, out_channels in ((64, 3), (32, 128)):
        layer = spectral(nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False))
        assert layer.parametrizations.weight[0]._u.shape == (in_channels,)  # one row per input channel
        with torch.no_grad():
            for _ in range(10):
                weight = layer.weight  # (in, out, 4, 4)
        assert top_singular_value(weight.reshape(in_channels, -1).double()) == pytest.approx(1.0, abs=0.05)


def test_embedding_is_tiled_to_four_by_four_and_conditions_the_score(networks):
    discriminator, seen = networks[64][1], []
    handle = discriminator.score.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    image, embedding = torch.randn(2, 3, 64, 64), torch.randn(2, 128)
    try:
        with torch.no_grad():
            score = discriminator.eval()(image, embedding)[0]
            other = discriminator(image, embedding + 1)[0]
    finally:
        handle.remove()
        discriminator.train()
    joined = seen[0]
    assert joined.shape == (2, 512 + 128, 4, 4)
    assert torch.equal(joined[:, 512:], embedding[:, :, None, None].expand(-1, -1, 4, 4))
    assert not torch.allclose(score, other)


def test_score_gradient_reaches_image_and_embedding(networks):
    discriminator = networks[64][1]
    image = torch.randn(2, 3, 64, 64, requires_grad=True)
    embedding = torch.randn(2, 128, requires_grad=True)
    discriminator(image, embedding)[0].sum().backward()
    discriminator.zero_grad()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert embedding.grad is not None and embedding.grad.abs().sum() > 0


def test_dropout_keeps_sampling_in_eval_mode_by_default():
    generator, embedding = FaceGenerator(64).eval(), torch.randn(2, 128)
    with torch.no_grad():
        assert not torch.allclose(generator(embedding), generator(embedding))


def test_dropout_flag_off_makes_eval_deterministic():
    generator, embedding = FaceGenerator(64, keep_dropout_at_inference=False), torch.randn(2, 128)
    with torch.no_grad():
        assert not torch.allclose(generator(embedding), generator(embedding))  # training still drops
        generator.eval()
        assert torch.equal(generator(embedding), generator(embedding))


def test_init_draws_from_the_dcgan_distributions():
    torch.manual_seed(0)
    encoder = SpeechEncoder(16000)
    for layer in encoder.modules():
        if isinstance(layer, (nn.Conv1d, nn.Linear)):
            assert layer.weight.std().item() == pytest.approx(0.02, abs=0.005)
        if isinstance(layer, nn.BatchNorm1d):
            assert layer.weight.mean().item() == pytest.approx(1.0, abs=0.01)
            assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    # Spectral-norm layers are initialised before wrapping, so their raw weights follow N(0, 0.02) too.
    for layer in convs(FaceGenerator(64)) + convs(FaceDiscriminator(64)):
        raw = layer.parametrizations.weight.original if is_spectral(layer) else layer.weight
        assert raw.std().item() == pytest.approx(0.02, abs=0.005)


def test_generator_without_spectral_norm_keeps_its_layers_and_can_scale_its_gain():
    """The demo's G (`spectral_norm=False`): the same layers and init without SN. SN divides each weight
    by its σ, so scaling the weights leaves G's output unchanged (its gain, tiny at init, grows only as
    training reshapes the spectra); without SN, doubling the weights of its 5 layers scales the output
    up to 2⁵ times, so Adam can raise G's gain within a few hundred steps."""
    torch.manual_seed(0)
    embedding = torch.randn(4, 128)
    growth = {}
    for spectral_norm in (True, False):
        generator = FaceGenerator(64, keep_dropout_at_inference=False, spectral_norm=spectral_norm).eval()
        with torch.no_grad():
            before = generator(embedding).std()
            for layer in convs(generator):
                (layer.parametrizations.weight.original if spectral_norm else layer.weight).mul_(2)
            growth[spectral_norm] = (generator(embedding).std() / before).item()
        if not spectral_norm:
            assert sum(p.numel() for p in generator.parameters()) == 3_804_160
            assert not any(is_spectral(layer) for layer in convs(generator)) and len(convs(generator)) == 5
    assert growth[True] == pytest.approx(1.0, rel=1e-3)
    assert growth[False] > 10


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="96"):
        FaceGenerator(96)
    with pytest.raises(ValueError, match="96"):
        FaceDiscriminator(96)
    with pytest.raises(ValueError, match="1000"):
        SpeechEncoder(1000)
    with pytest.raises(ValueError, match="0"):
        IdentityClassifier(0)
