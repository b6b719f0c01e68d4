"""E2E-NR networks against docs/e2e_nr.md: sizes, frame counts, receptive field, causality,
skips, decoder shapes, noise, critics, streaming and init.

Full-width models are built for parameter counts and run on one tiny input only; behaviour is checked on
narrow models (width 1/8), which have the same structure.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.e2e_nr.networks import (
    ConvLSTM,
    FrameDiscriminator,
    Generator,
    ImageEncoder,
    NoiseEncoder,
    PairDiscriminator,
    SkipConvUp,
    SpeechEncoder,
    num_frames,
    sample_frame_indices,
)

NARROW = 0.125


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def faces(n: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, 128, 128, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def waves(n: int, samples: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, samples, generator=torch.Generator().manual_seed(seed)) * 0.3


@pytest.fixture(scope="module")
def full_generator():
    torch.manual_seed(0)
    return Generator()


@pytest.fixture(scope="module")
def narrow_generator():
    torch.manual_seed(0)
    return Generator(width=NARROW).eval()


# ----------------------------------------------------------------------------- sizes


def test_generator_parameter_counts_match_the_layer_tables(full_generator):
    g, d = full_generator, full_generator.decoder
    assert count(g.speech_encoder) == 2_291_088
    assert count(g.speech_lstm) == 4_202_496
    assert count(g.image_encoder) == 8_168_192
    assert count(g.noise_encoder) == 132_096
    assert count(d) == 17_921_251
    stages = [count(getattr(d, name)) for name in ("fc", "d1", "d2", "d3", "d4", "d5", "d6")]
    assert stages == [9_445_376, 4_732_928, 2_366_464, 593_408, 744_448, 37_760, 867]
    assert count(g) == 32_715_123


def test_discriminator_parameter_counts_match_the_layer_tables():
    frame = FrameDiscriminator()
    assert count(frame) == 68_702_593 and count(frame.fc) == 67_112_961
    del frame
    pair = PairDiscriminator()
    parts = [
        count(m)
        for m in (
            pair.speech_encoder,
            pair.image_encoder,
            pair.speech_lstm,
            pair.image_lstm,
            pair.fusion_lstm,
            pair.score,
        )
    ]
    assert parts == [2_291_088, 8_232_512, 1_576_960, 1_576_960, 6_299_648, 1_025]
    assert count(pair) == 19_978_193


def test_every_conv_and_linear_weight_is_xavier_uniform():
    torch.manual_seed(0)
    kinds = (nn.Conv1d, nn.Conv2d, nn.Linear)
    layers = [m for m in Generator(width=NARROW).modules() if isinstance(m, kinds)]
    assert len(layers) == 19  # 5 speech convs + fc, 6 image convs, decoder fc + d1-d3 + ConvLSTM + d5 + d6
    for layer in layers:
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = layer.weight.detach()
        # PyTorch's default (kaiming_uniform_ with a = √5) has a bound far below xavier's
        assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound


# ----------------------------------------------------------------------------- speech encoder


@pytest.mark.parametrize(
    "samples, frames", [(8000, 25), (9280, 29), (24000, 75), (320, 1), (8001, 26), (8319, 26)]
)
def test_speech_encoder_makes_one_frame_per_40_ms(samples, frames):
    encoder = SpeechEncoder(NARROW)
    chain = samples
    for stride in (4, 4, 2, 2, 5):  # ceil-divide by each stride in turn
        chain = -(-chain // stride)
    assert num_frames(samples) == chain == frames
    with torch.no_grad():
        features, vectors = encoder(waves(2, samples)[:, None])  # (B, 1, L) is accepted too
    assert features.shape == (2, encoder.feature_channels, 5 * frames)
    assert vectors.shape == (2, frames, encoder.out_dim)


def test_full_width_speech_encoder_stages():
    torch.manual_seed(0)
    encoder = SpeechEncoder()
    lengths = []
    for layer in encoder.convs:
        if isinstance(layer, nn.Conv1d):
            layer.register_forward_hook(lambda module, args, out: lengths.append(tuple(out.shape[1:])))
    with torch.no_grad():
        features, vectors = encoder(waves(1, 8000))
    assert lengths == [(64, 2000), (128, 500), (256, 250), (512, 125), (16, 125)]
    assert features.shape == (1, 16, 125) and vectors.shape == (1, 25, 512)
    assert encoder.fc[0].in_features == 560


def test_frame_receptive_field_is_exactly_320t_plus_minus_1435():
    torch.manual_seed(0)
    encoder = SpeechEncoder(NARROW).double()
    wave = waves(1, 320 * 12).double().requires_grad_()
    t = 6  # interior: the window [485, 3355] touches neither end of the 3840 samples
    encoder(wave).frames[0, t].sum().backward()
    nonzero = (wave.grad[0] != 0).nonzero().flatten()
    assert nonzero.min().item() == 320 * t - 1435 and nonzero.max().item() == 320 * t + 1435
    assert len(nonzero) == 2871  # no hole inside the window


def test_context_beyond_the_signal_is_zero():
    encoder = SpeechEncoder(NARROW)
    with torch.no_grad():
        features = encoder.conv_features(waves(1, 1280))  # 20 steps: frame 0's window is 17 zeros + 18 steps
        first = encoder.frame_vectors(features)[0, 0]
        padded = torch.cat([features.new_zeros(1, features.shape[1], 17), features[:, :, :18]], dim=2)
        expected = encoder.fc(padded[0].T.flatten())  # time-major: the C values of each step together
    torch.testing.assert_close(first, expected)


def test_short_speech_and_wrong_shapes_are_rejected(narrow_generator):
    with pytest.raises(ValueError, match="shorter than one 40-ms frame"):
        SpeechEncoder(NARROW)(waves(1, 319))
    with pytest.raises(ValueError, match=r"\(B, L\) or \(B, 1, L\)"):
        SpeechEncoder(NARROW)(waves(1, 640)[:, None, None])
    with pytest.raises(ValueError, match="128"):
        narrow_generator(torch.zeros(1, 3, 64, 64), waves(1, 640))
    with pytest.raises(ValueError, match="batch"):
        narrow_generator(faces(2), waves(1, 640))
    with pytest.raises(ValueError, match="noise"):
        narrow_generator(faces(1), waves(1, 640), noise=torch.zeros(1, 3, narrow_generator.noise_dim))


# ----------------------------------------------------------------------------- image encoder


def test_image_encoder_skips_carry_the_downsampled_image():
    torch.manual_seed(0)
    encoder = ImageEncoder(3)  # full width, one image
    image = faces(1)
    with torch.no_grad():
        identity, skips = encoder(image)
    assert identity.shape == (1, 512)
    assert [tuple(s.shape[1:]) for s in skips] == [
        (67, 64, 64),
        (131, 32, 32),
        (259, 16, 16),
        (515, 8, 8),
        (515, 4, 4),
    ]
    for level, skip in enumerate(skips, start=1):
        assert torch.equal(skip[:, -3:], F.interpolate(image, scale_factor=0.5**level, mode="nearest"))


def test_pair_image_encoder_reinjects_six_channels():
    encoder = ImageEncoder(6, NARROW)
    image = faces(2, channels=6)
    with torch.no_grad():
        _, skips = encoder(image)
    assert skips[0].shape == (2, 8 + 6, 64, 64) and torch.equal(skips[-1][:, -6:], image[:, :, ::32, ::32])
    with pytest.raises(ValueError, match="6, 128, 128"):
        encoder(faces(2))


@pytest.mark.parametrize("mode", ["reflect", "zeros"])
def test_stride_one_conv_then_nearest_halving_equals_stride_two_conv(mode):
    torch.manual_seed(0)
    image = faces(2)
    conv = nn.Conv2d(3, 16, 3, padding=1, padding_mode=mode)
    strided = nn.Conv2d(3, 16, 3, stride=2, padding=1, padding_mode=mode)
    strided.load_state_dict(conv.state_dict())
    with torch.no_grad():
        halved = F.interpolate(conv(image), scale_factor=0.5, mode="nearest")
        torch.testing.assert_close(halved, strided(image), atol=1e-6, rtol=0)
        # and the encoder's own first layer (reflection pad, stride 2) is the paper's s1 conv + ↓2
        layer = ImageEncoder(3, NARROW).downs[0]
        paper = F.interpolate(
            F.leaky_relu(
                F.conv2d(F.pad(image, (1,) * 4, mode="reflect"), layer[1].weight, layer[1].bias), 0.2
            ),
            scale_factor=0.5,
            mode="nearest",
        )
        torch.testing.assert_close(layer(image), paper, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- decoder pieces


def test_conv_lstm_matches_a_plain_loop_over_the_concatenation():
    torch.manual_seed(0)
    cell = ConvLSTM(5 + 3, 4)
    x, shared = torch.randn(2, 3, 5, 6, 6), torch.randn(2, 3, 6, 6)
    h = c = torch.zeros(2, 4, 6, 6)
    expected = []
    for t in range(3):
        i, f, g, o = cell.gates(torch.cat([x[:, t], shared, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        expected.append(h)
    with torch.no_grad():
        whole, _ = cell(x, shared)
        first, state = cell(x[:, :2], shared)
        rest, _ = cell(x[:, 2:], shared, state)  # carrying the state = one pass
        torch.testing.assert_close(whole, torch.stack(expected, dim=1).detach(), atol=1e-6, rtol=0)
        torch.testing.assert_close(torch.cat([first, rest], dim=1), whole, atol=1e-6, rtol=0)


def test_skip_layer_equals_a_conv_over_each_frame_concatenated_with_its_skip():
    torch.manual_seed(0)
    layer = SkipConvUp(4, 3, 5)
    h, skip = torch.randn(2 * 3, 4, 8, 8), torch.randn(2, 3, 8, 8)
    repeated = skip.repeat_interleave(3, dim=0)  # frame-major within a clip
    with torch.no_grad():
        padded = F.pad(torch.cat([h, repeated], 1), (1,) * 4, mode="reflect")
        expected = F.interpolate(F.leaky_relu(layer.conv(padded), 0.2), scale_factor=2, mode="nearest")
        torch.testing.assert_close(layer(h, skip), expected, atol=1e-5, rtol=0)


def test_full_width_generator_stage_shapes(full_generator):
    shapes = {}
    d = full_generator.decoder
    for name in ("d1", "d2", "d3"):
        getattr(d, name).register_forward_hook(
            lambda m, a, out, name=name: shapes.__setitem__(name, out.shape[1:])
        )
    d.d5.register_forward_pre_hook(lambda m, args: shapes.__setitem__("d4", args[0].shape[1:]))
    d.d5.register_forward_hook(lambda m, a, out: shapes.__setitem__("d5", out.shape[1:]))
    with torch.no_grad():
        video = full_generator(faces(1), waves(1, 640)).video
    assert {k: tuple(v) for k, v in shapes.items()} == {
        "d1": (512, 8, 8),
        "d2": (256, 16, 16),
        "d3": (128, 32, 32),
        "d4": (64, 64, 64),
        "d5": (32, 128, 128),
    }
    assert video.shape == (1, 2, 3, 128, 128) and video.abs().max() <= 1


# ----------------------------------------------------------------------------- generator


def test_generator_output_shapes_and_range(narrow_generator):
    g = narrow_generator
    with torch.no_grad():
        out = g(faces(2), waves(2, 320 * 3)[:, None], generator=torch.Generator().manual_seed(0))
    assert out.video.shape == (2, 3, 3, 128, 128)
    assert out.video.min() >= -1 and out.video.max() <= 1
    assert out.speech_features.shape == (2, g.speech_encoder.feature_channels, 15)
    assert out.frame_features.shape == (2, 3, g.speech_encoder.out_dim)


def test_noise_fixes_the_video(narrow_generator):
    g, face, wave = narrow_generator, faces(1), waves(1, 320 * 4)
    z = torch.randn(1, 4, g.noise_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = g(face, wave, noise=z).video
        b = g(face, wave, noise=z.clone()).video
        c = g(face, wave, noise=torch.randn_like(z)).video
        d = g(face, wave, generator=torch.Generator().manual_seed(5)).video
        e = g(face, wave, generator=torch.Generator().manual_seed(5)).video
    assert torch.equal(a, b) and torch.equal(d, e)
    assert (a - c).abs().amax(dim=(2, 3, 4)).min() > 0  # every frame differs
    with pytest.raises(ValueError, match="either noise or generator"):
        g(face, wave, noise=z, generator=torch.Generator())


def test_noise_encoder_draws_from_the_given_generator():
    encoder = NoiseEncoder(NARROW)
    a = encoder.draw(2, 5, torch.Generator().manual_seed(3))
    b = encoder.draw(2, 5, torch.Generator().manual_seed(3))
    assert a.shape == (2, 5, 16) and torch.equal(a, b)
    out, (h, c) = encoder(a)
    assert out.shape == (2, 5, 16) and h.shape == (1, 2, 16)


def test_generator_is_causal_beyond_the_receptive_field(narrow_generator):
    g, t = narrow_generator, 2
    face, wave = faces(1), waves(1, 320 * 8)
    z = torch.randn(1, 8, g.noise_dim, generator=torch.Generator().manual_seed(2))
    changed = wave.clone()
    changed[:, 320 * t + 1435 + 1 :] = waves(1, 320 * 8, seed=9)[:, 320 * t + 1435 + 1 :]
    with torch.no_grad():
        before, after = g(face, wave, noise=z).video, g(face, changed, noise=z).video
    torch.testing.assert_close(after[:, : t + 1], before[:, : t + 1], atol=1e-6, rtol=0)
    # the later frames do hear the change
    assert (after[:, t + 1 :] - before[:, t + 1 :]).abs().amax(dim=(2, 3, 4)).min() > 0


def test_condition_image_changes_every_frame(narrow_generator):
    g, wave = narrow_generator, waves(1, 320 * 4)
    z = torch.randn(1, 4, g.noise_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = g(faces(1, seed=0), wave, noise=z).video, g(faces(1, seed=1), wave, noise=z).video
    assert (a - b).abs().amax(dim=(2, 3, 4)).min() > 1e-3


@pytest.mark.parametrize("chunk", [8, 5, 30])
def test_streaming_in_chunks_equals_one_pass(narrow_generator, chunk):
    g = narrow_generator
    face, wave = faces(2), waves(2, 320 * 22 + 100)  # 23 frames, the last one partial
    z = torch.randn(2, 23, g.noise_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        whole = g(face, wave, noise=z).video
        chunks = list(g.stream(face, wave, chunk_frames=chunk, noise=z))
    assert [c.shape[1] for c in chunks[:-1]] == [chunk] * (len(chunks) - 1)
    streamed = torch.cat(chunks, dim=1)
    assert streamed.shape == whole.shape == (2, 23, 3, 128, 128)
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- critics


def test_frame_discriminator_scores_each_frame():
    critic = FrameDiscriminator(NARROW)
    assert critic.fc[1].in_features == 64 * 8 * 8
    with torch.no_grad():
        scores = critic(faces(3), faces(3, seed=1))
    assert scores.shape == (3, 1)  # a raw LSGAN score
    critic.sigmoid = True  # the paper's "probability", behind a flag
    with torch.no_grad():
        torch.testing.assert_close(critic(faces(3), faces(3, seed=1)), torch.sigmoid(scores))
    with pytest.raises(ValueError, match="frames"):
        critic(torch.zeros(3, 3, 64, 64), faces(3))


def test_frame_sampler_draws_distinct_shared_indices():
    batch, frames = 4, 29
    indices = sample_frame_indices(batch, frames, generator=torch.Generator().manual_seed(0))
    assert indices.shape == (batch, batch) and indices.dtype == torch.long  # B per video, B·B frames
    assert indices.min() >= 0 and indices.max() < frames
    assert all(len(set(row.tolist())) == batch for row in indices)  # without replacement when B ≤ T
    again = sample_frame_indices(batch, frames, generator=torch.Generator().manual_seed(0))
    assert torch.equal(indices, again)
    many = sample_frame_indices(2, 3, per_video=7, generator=torch.Generator().manual_seed(0))
    assert many.shape == (2, 7) and many.max() < 3  # with replacement when more are asked than exist
    one = sample_frame_indices(3, 10, per_video=1)
    assert one.shape == (3, 1)
    # the same tensor picks the same positions from the real and the generated videos
    real = torch.arange(batch * frames).view(batch, frames)
    fake = -real
    rows = torch.arange(batch)[:, None]
    assert torch.equal(real[rows, indices], -fake[rows, indices])


def test_pair_discriminator_scores_every_frame():
    torch.manual_seed(0)
    critic = PairDiscriminator(NARROW)
    video = torch.rand(2, 3, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        scores = critic(video, faces(2), waves(2, 320 * 3))
        longer = critic(video, faces(2), waves(2, 320 * 4)[:, None])  # extra speech frames are dropped
    assert scores.shape == longer.shape == (2, 3)
    with pytest.raises(ValueError, match="covers 2 frames"):
        critic(video, faces(2), waves(2, 640))
    with pytest.raises(ValueError, match="video must be"):
        critic(video[..., :64, :64], faces(2), waves(2, 320 * 3))
