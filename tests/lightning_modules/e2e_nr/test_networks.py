"""E2E-NR's networks against the spec's invariants (§2, §8): sizes, lengths, receptive field, causality."""

import pytest
import torch
import torch.nn.functional as F

from lightning_modules.e2e_nr.networks import (FrameDiscriminator, Generator, ImageEncoder, PairDiscriminator,
                                               SpeechEncoder, sample_frame_indices)

NARROW = 0.125


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_equal_the_spec():
    generator = Generator()
    parts = {name: count(getattr(generator, name)) for name in
             ("speech_encoder", "speech_lstm", "image_encoder", "noise_encoder", "decoder")}
    assert parts == {"speech_encoder": 2_291_088, "speech_lstm": 4_202_496, "image_encoder": 8_168_192,
                     "noise_encoder": 132_096, "decoder": 17_921_251}
    assert count(generator) == 32_715_123
    frame = FrameDiscriminator()
    assert count(frame) == 68_702_593 and count(frame.fc) == 67_112_961
    pair = PairDiscriminator()
    assert count(pair) == 19_978_193 and count(pair.image_encoder) == 8_232_512


@pytest.mark.parametrize("samples, frames", [(8000, 25), (9280, 29), (24000, 75), (320, 1), (8001, 26)])
def test_speech_encoder_makes_one_vector_per_40_ms(samples, frames):
    features, vectors = SpeechEncoder(NARROW)(torch.randn(1, 1, samples))
    assert vectors.shape == (1, frames, 64) and features.shape == (1, 2, 5 * frames)


def test_speech_encoder_conv_lengths():
    encoder = SpeechEncoder(NARROW)
    x, lengths = torch.randn(1, 1, 8000), []
    for layer in encoder.convs:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv1d):
            lengths.append(x.shape[-1])
    assert lengths == [2000, 500, 250, 125, 125]


def test_receptive_field_of_an_interior_frame_is_plus_minus_1435_samples():
    torch.manual_seed(0)
    encoder = SpeechEncoder(NARROW)
    wave = torch.randn(1, 320 * 30, requires_grad=True)
    t = 15
    encoder(wave)[1][0, t].abs().sum().backward()
    nonzero = wave.grad[0].nonzero()[:, 0]
    assert nonzero.min().item() == 320 * t - 1435 and nonzero.max().item() == 320 * t + 1435


def test_generator_is_causal_up_to_its_lookahead_and_uses_the_face_everywhere():
    torch.manual_seed(0)
    generator = Generator(NARROW).eval()
    face, wave = torch.rand(1, 3, 128, 128) * 2 - 1, torch.randn(1, 320 * 12)
    noise = torch.randn(1, 12, generator.noise_dim)
    base = generator(face, wave, noise=noise).video
    t = 5
    changed = wave.clone()
    changed[:, 320 * t + 1436 :] += 1.0
    after = generator(face, changed, noise=noise).video
    assert torch.equal(after[:, : t + 1], base[:, : t + 1]) and not torch.equal(after, base)
    other_face = generator(face.flip(-1), wave, noise=noise).video
    assert all(not torch.equal(other_face[:, k], base[:, k]) for k in range(12))


def test_generator_shapes_range_and_noise():
    generator = Generator(NARROW)
    face, wave = torch.rand(2, 3, 128, 128) * 2 - 1, torch.randn(2, 1, 320 * 6)
    z = torch.randn(2, 6, generator.noise_dim)
    video = generator(face, wave, noise=z).video
    assert video.shape == (2, 6, 3, 128, 128) and video.abs().max() <= 1
    assert torch.equal(video, generator(face, wave, noise=z).video)
    assert not torch.equal(video, generator(face, wave, noise=torch.randn_like(z)).video)
    with pytest.raises(ValueError, match="128"):
        generator(torch.rand(2, 3, 64, 64), wave)
    with pytest.raises(ValueError, match="shorter than one 40-ms frame"):
        generator(face, torch.randn(2, 100))


def test_chunked_generation_equals_one_pass():
    torch.manual_seed(0)
    generator = Generator(NARROW).eval()
    face, wave = torch.rand(1, 3, 128, 128) * 2 - 1, torch.randn(1, 320 * 23 - 17)
    z = torch.randn(1, 23, generator.noise_dim)
    with torch.no_grad():
        whole = generator(face, wave, noise=z).video
    assert torch.allclose(generator.stream(face, wave, chunk_frames=8, noise=z), whole, atol=1e-5)


def test_image_encoder_reinjects_the_face_and_strided_conv_equals_conv_then_nearest():
    face = torch.rand(2, 3, 128, 128)
    code, skips = ImageEncoder(3, NARROW)(face)
    assert code.shape == (2, 64)
    assert [tuple(s.shape[1:]) for s in skips] == [(11, 64, 64), (19, 32, 32), (35, 16, 16), (67, 8, 8), (67, 4, 4)]
    for level, skip in enumerate(skips, start=1):
        assert torch.equal(skip[:, -3:], F.interpolate(face, scale_factor=0.5**level, mode="nearest"))
    conv = torch.nn.Conv2d(3, 4, 3)
    padded = F.pad(face, (1, 1, 1, 1), mode="reflect")
    strided = F.conv2d(padded, conv.weight, conv.bias, stride=2)
    assert torch.allclose(strided, F.interpolate(conv(padded), scale_factor=0.5, mode="nearest"), atol=1e-6)


def test_critics_shapes_and_frame_sampler():
    face, video = torch.rand(2, 3, 128, 128), torch.rand(2, 5, 3, 128, 128)
    assert FrameDiscriminator(NARROW)(video[:, 0], face).shape == (2, 1)
    assert PairDiscriminator(NARROW)(video, face, torch.randn(2, 320 * 5)).shape == (2, 5)
    indices = sample_frame_indices(3, 5, 4)
    assert indices.shape == (3, 4) and all(len(set(row.tolist())) == 4 for row in indices)
    assert sample_frame_indices(2, 3, 8).max() < 3
