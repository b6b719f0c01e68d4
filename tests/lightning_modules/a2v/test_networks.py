"""A2V's networks against their invariants (docs/a2v.md): Wav2Vec2 feature rate, Embed2Lat's
pooling and frame rate, the VAE's sizes, KL and overfit, residual composition and the gain."""

import pytest
import torch
from torch import nn

from lightning_modules.a2v.embed2lat import Embed2Lat
from lightning_modules.a2v.latents import compose, residual_slice
from lightning_modules.a2v.speech_encoder import (
    TINY,
    SpeechEncoderConfig,
    build_speech_encoder,
    features_for_frames,
    speech_features,
)
from lightning_modules.a2v.vae import NormalisedVAE, ResidualVAE, kl_divergence

ROWS = (5, 6, 7)


@pytest.fixture(scope="module")
def speech_encoder():
    return build_speech_encoder(SpeechEncoderConfig(allow_random=True))


@pytest.mark.parametrize("seconds, expected", [(1, 49), (2, 99), (3, 149)])
def test_wav2vec2_gives_50_hz_features_minus_one(speech_encoder, seconds, expected):
    features = speech_features(speech_encoder, torch.randn(1, 16000 * seconds))
    # one vector per 320 samples after a 400-sample receptive field: (samples − 400) // 320 + 1
    assert features.shape == (1, expected, 32)


def test_stand_in_is_the_same_network_in_every_process(speech_encoder):
    again = build_speech_encoder(SpeechEncoderConfig(allow_random=True))
    assert all(
        torch.equal(a, b) for a, b in zip(speech_encoder.state_dict().values(), again.state_dict().values())
    )


@pytest.mark.parametrize("samples", [16000, 24321, 40000])
def test_embed2lat_gives_one_code_per_video_frame_at_25_fps(speech_encoder, samples):
    frames = samples * 25 // 16000
    features = features_for_frames(speech_features(speech_encoder, torch.randn(1, samples))[0], frames)
    assert features.shape == (2 * frames, 32)
    model = Embed2Lat(TINY).eval()
    assert model(features[None], frames).shape == (1, frames, 96)


def test_embed2lat_clips_do_not_depend_on_each_other_in_eval_mode():
    model = Embed2Lat(TINY).eval()
    nn.init.normal_(model.head.weight)  # the head starts at zero, which would make any output trivially equal
    batch = torch.randn(3, 40, 32)
    together = model(batch, 20)
    alone = torch.cat([model(clip[None], 20) for clip in batch])
    assert torch.allclose(together, alone, atol=1e-5)


def test_pooling_assigns_features_2j_and_2j_plus_1_to_frame_j():
    model = Embed2Lat(TINY).eval()
    model.transformer = nn.Identity()
    model.head = nn.Identity()
    features = torch.arange(20.0)[None, :, None].expand(1, 20, 4)
    assert torch.equal(model(features, 10)[0, :, 0], torch.arange(10.0) * 2 + 0.5)
    odd = model(torch.arange(99.0)[None, :, None], 50)[0, :2, 0]  # L_a = 2N − 1: bins {0, 1} and {1, 2, 3}
    assert torch.allclose(odd, torch.tensor([0.5, 2.0]))
    assert torch.equal(model(torch.ones(1, 30, 4), 15), torch.ones(1, 15, 4))


def test_vae_sizes_are_the_papers():
    vae = ResidualVAE()

    def linear(seq):
        return [(m.in_features, m.out_features) for m in seq if isinstance(m, nn.Linear)]

    assert linear(vae.encoder) == [(1536, 768), (768, 384), (384, 192), (192, 192)]
    assert linear(vae.decoder) == [(96, 192), (192, 384), (384, 768), (768, 1536)]
    assert sum(p.numel() for p in vae.encoder.parameters()) == 1_586_688
    assert sum(p.numel() for p in vae.decoder.parameters()) == 1_569_600
    assert isinstance(vae.decoder[-1], nn.Linear) and all(isinstance(m, nn.GELU) for m in vae.decoder[1::2])


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    assert torch.equal(kl_divergence(torch.zeros(2, 96), torch.zeros(2, 96)), torch.zeros(2))
    assert (kl_divergence(torch.randn(50, 96), torch.randn(50, 96)) > 0).all()


def test_vae_is_deterministic_in_eval_mode_and_overfits_a_linear_manifold():
    torch.manual_seed(0)
    data = torch.randn(256, 96) @ torch.randn(96, 1536)  # 256 vectors, not 512, keep CI fast
    data = (data - data.mean()) / data.std()
    vae = ResidualVAE()
    optimiser = torch.optim.Adam(vae.parameters(), lr=1e-3)
    for _ in range(300):
        reconstruction, mu, logvar = vae(data)
        loss = (reconstruction - data).square().mean() + 1e-3 * kl_divergence(mu, logvar).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    vae.eval()
    with torch.no_grad():
        first, second = vae(data)[0], vae(data)[0]
    assert torch.equal(first, second)
    assert (first - data).square().mean() < 0.05


def test_normalisation_round_trips():
    vae = NormalisedVAE()
    vae.set_statistics(0.3, 0.07)
    x = torch.randn(10, 1536)
    assert torch.allclose(vae.denormalise(vae.normalise(x)), x, atol=1e-6)


def test_residuals_change_only_the_selected_rows():
    codes = torch.randn(1, 12, 16, 512)
    w0 = codes[:, 0]
    residual = residual_slice(codes[:, :, list(ROWS)], w0[:, None], ROWS)
    assert residual.shape == (1, 12, 1536) and torch.equal(residual[:, 0], torch.zeros(1, 1536))
    composed = compose(w0, residual, ROWS)
    others = [r for r in range(16) if r not in ROWS]
    assert torch.equal(composed[:, :, others], w0[:, None, others].expand(1, 12, -1, -1))
    assert torch.allclose(composed[:, :, list(ROWS)], codes[:, :, list(ROWS)], atol=1e-5)
