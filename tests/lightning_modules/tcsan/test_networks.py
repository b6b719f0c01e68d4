"""TCSAN + Audio2AU networks: shapes, parameter counts, receptive field and non-causality."""

import pytest
import torch

from lightning_modules.tcsan.fusion import IntraFrameAttention, TemporalConvNet, build_fusion
from lightning_modules.tcsan.networks import (
    AUClassifier,
    Audio2AU,
    Audio2AUNet,
    AudioEncoder,
    Generator,
    IdentityEncoder,
    ImageDecoder,
    PatchDiscriminator,
)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_layer_tables():
    assert count(AudioEncoder()) == 3_410_016
    assert count(IdentityEncoder()) == 3_482_016
    assert count(Audio2AUNet()) == 2_214_529
    assert count(Audio2AUNet(with_head=False)) == 2_214_464
    assert count(build_fusion("tcsan", [512, 512, 320], 1024)) == 11_853_568
    assert count(build_fusion("tcsan", [512, 512], 1024)) == 9_493_248
    assert count(build_fusion("gru", [512, 512, 320], 1024)) == 7_280_640
    generator = Generator()
    assert count(generator.decoder) == 16_027_271
    assert count(generator) == 45_845_191
    assert count(AUClassifier()) == 6_505_509


def test_encoder_decoder_shapes():
    audio = AudioEncoder().eval()
    assert audio.convs(torch.randn(3, 1, 12, 28)).shape == (3, 256, 3, 7)
    assert audio(torch.randn(3, 1, 12, 28)).shape == (3, 512)
    features, skips = IdentityEncoder()(torch.randn(2, 3, 112, 112))
    assert features.shape == (2, 512)
    assert [tuple(s.shape[1:]) for s in skips] == [(16, 56, 56), (32, 28, 28), (64, 14, 14), (128, 7, 7)]
    frames = ImageDecoder(1024, [16, 32, 64, 128])(torch.randn(2, 1024), skips)
    assert frames.shape == (2, 3, 112, 112) and frames.abs().max() <= 1
    assert PatchDiscriminator()(torch.randn(2, 3, 112, 112)).shape == (2, 1, 7, 7)


@pytest.mark.parametrize("frames", [1, 7, 75])
def test_generator_makes_one_frame_per_window_for_any_length(frames):
    generator = Generator(width=0.125).eval()
    video = generator(torch.rand(2, 3, 112, 112) * 2 - 1, torch.randn(2, frames, 12, 28))
    assert video.shape == (2, frames, 3, 112, 112)
    assert video.abs().max() <= 1


def test_audio2au_features_probabilities_and_dropped_heads():
    networks = Audio2AU(width=0.25).eval()
    windows = torch.randn(2, 6, 1, 12, 28)
    assert networks(windows).shape == (2, 6, 5)
    assert ((networks(windows) > 0) & (networks(windows) < 1)).all()
    features = networks.features(windows)
    assert features.shape == (2, 6, 320) and (features >= 0).all()
    networks.drop_heads()
    assert not any("head" in name for name, _ in networks.named_parameters())
    with pytest.raises(RuntimeError, match="no head"):
        networks(windows)


def test_au_classifier_reads_only_the_lower_half():
    classifier = AUClassifier(width=0.25).eval()
    frames = torch.rand(3, 3, 112, 112) * 2 - 1
    changed = frames.clone()
    changed[..., :56, :] = torch.rand(3, 3, 56, 112)
    probabilities = classifier(frames)
    assert probabilities.shape == (3, 5) and ((probabilities > 0) & (probabilities < 1)).all()
    assert torch.equal(classifier(changed), probabilities)
    lower = changed.clone()
    lower[..., 56:, :] = 0
    assert not torch.equal(classifier(lower), probabilities)


def _input_gradient(fusion: torch.nn.Module, frames: int, t: int, channels: int) -> torch.Tensor:
    x = torch.randn(1, frames, channels, requires_grad=True)
    fusion(x)[0, t].sum().backward()
    return x.grad[0].abs().sum(-1)  # (T,)


def test_tcsan_sees_exactly_seven_frames_either_side():
    torch.manual_seed(0)
    tcsan = build_fusion("tcsan", [128, 128, 320], 256).eval()
    assert tcsan.receptive_field == 15
    assert [b.conv.dilation[0] for b in tcsan.blocks] == [1, 2, 4]
    assert [b.conv.padding[0] for b in tcsan.blocks] == [1, 2, 4]
    reach = _input_gradient(tcsan, 40, 20, 576)
    # t−7 … t+7, future included
    assert torch.equal(reach > 0, (torch.arange(40) >= 13) & (torch.arange(40) <= 27))
    x = torch.randn(1, 40, 576)
    moved = x.clone()
    moved[0, 28] += 1.0  # frame t + 8
    assert torch.equal(tcsan(x)[0, 20], tcsan(moved)[0, 20])
    for length in (1, 2, 9):
        assert tcsan(torch.randn(2, length, 576)).shape == (2, length, 256)


def test_dilated_conv_is_equation_one_with_flipped_taps():
    tcn = TemporalConvNet(4, 4, attention=False, dilations=(2,))
    conv = tcn.blocks[0].conv
    x = torch.randn(1, 4, 12)
    weight = conv.weight.detach()  # (out, in, 3), taps at s − d, s, s + d
    padded = torch.nn.functional.pad(x, (2, 2))
    by_hand = (
        sum(
            torch.einsum(
                "oi,bit->bot", weight[:, :, 2 - i], padded[:, :, 2 + 2 * (1 - i) : 2 + 2 * (1 - i) + 12]
            )
            for i in range(3)
        )
        + conv.bias[None, :, None]
    )
    assert torch.allclose(conv(x), by_hand, atol=1e-6)


def test_intra_frame_attention_does_not_mix_time():
    attention = IntraFrameAttention().eval()
    x = torch.randn(2, 128, 6, requires_grad=True)
    attention(x)[:, :, 3].sum().backward()
    per_frame = x.grad.abs().sum((0, 1))
    assert per_frame[3] > 0 and torch.count_nonzero(per_frame) == 1


def test_gru_fusion_is_causal_unlike_tcsan():
    gru = build_fusion("gru", [64, 64], 64).eval()
    reach = _input_gradient(gru, 12, 5, 128)
    assert (reach[:6] > 0).all() and (reach[6:] == 0).all()


@pytest.mark.parametrize("fusion", ["tcn", "mhatt_tcn", "coatt_tcn"])
def test_other_fusions_are_local_and_non_causal(fusion):
    network = build_fusion(fusion, [128, 128, 320], 128).eval()
    reach = _input_gradient(network, 30, 15, 576)
    assert reach[16] > 0 and reach[22] > 0 and (reach[23:] == 0).all() and (reach[:8] == 0).all()


@pytest.mark.parametrize("fusion", ["tcsan", "mhatt_tcn", "coatt_tcn", "gru"])
@pytest.mark.parametrize("chunk", [1, 4, 9, 40])
def test_streaming_in_chunks_equals_one_pass(fusion, chunk):
    """Long audio is made chunk by chunk (Audio2AU's LSTM and the GRU carry their state, the TCN sees
    ±7 frames around each chunk); the chunks must join into the one-pass video."""
    torch.manual_seed(0)
    generator = Generator(fusion=fusion, width=0.125).eval()
    identity, mfcc = torch.randn(1, 3, 112, 112), torch.randn(1, 23, 12, 28)
    with torch.no_grad():
        whole = generator(identity, mfcc)
        chunks = list(generator.stream(identity, mfcc, chunk))
    assert [c.shape[1] for c in chunks] == [min(chunk, 23 - s) for s in range(0, 23, chunk)]
    torch.testing.assert_close(torch.cat(chunks, dim=1), whole, atol=1e-5, rtol=0)


def test_width_must_keep_whole_attention_tokens():
    with pytest.raises(ValueError, match="multiple of 64"):
        Generator(width=0.1)
    with pytest.raises(ValueError, match="multiple of 16"):
        Generator(width=0.25, image_size=100)
