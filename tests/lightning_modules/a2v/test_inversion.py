"""GAN inversion, the generator and weight loaders, and the resumable A2V caches."""

import json

import numpy as np
import pytest
import torch
import torchvision

from lightning_modules.a2v.generator import GeneratorConfig, build_generator, load_stylegan3
from lightning_modules.a2v.inversion import InversionConfig, Inverter
from lightning_modules.a2v.speech_encoder import (
    TINY,
    SpeechEncoderConfig,
    build_speech_encoder,
    speech_features,
    torchaudio_name,
)
from lightning_modules.common.errors import WeightsError
from lightning_modules.common.pretrained.lpips_distance import build_lpips


@pytest.fixture(scope="module")
def generator():
    return build_generator(GeneratorConfig(allow_random=True, tiny_resolution=32, tiny_channels=8))


class ConstantDistance(torch.nn.Module):
    def forward(self, a, b):
        return torch.full((len(a), 1, 1, 1), 0.25)


def test_first_frame_schedule_drops_the_lr_halfway():
    config = InversionConfig()
    assert [config.first_frame_lr(s) for s in (0, 499, 500, 999)] == [0.02, 0.02, 0.01, 0.01]


def test_loss_is_mse_plus_ten_lpips(generator):
    inverter = Inverter(generator, ConstantDistance(), InversionConfig())
    codes = generator.mapping(torch.randn(2, 512))
    target = torch.zeros(2, 3, 32, 32)
    mse = generator.synthesis(codes).square().flatten(1).mean(1)
    assert torch.allclose(inverter.losses(codes, target), mse + 2.5)


def test_later_frames_take_five_steps_at_lr_001_from_the_previous_code(generator):
    inverter = Inverter(generator, ConstantDistance(), InversionConfig(first_steps=4))
    calls = []
    original = inverter.optimise

    def spy(start, targets, steps, lr_at):
        calls.append((start.clone(), steps, [lr_at(s) for s in range(steps)]))
        return original(start, targets, steps, lr_at)

    inverter.optimise = spy
    frames = generator.synthesis(generator.mapping(torch.randn(3, 512))).detach()
    inverted = inverter.invert_clips([frames])[0]
    assert [c[1] for c in calls] == [4, 5, 5] and calls[1][2] == [0.01] * 5
    assert torch.equal(calls[1][0][0], inverted.codes[0]) and torch.equal(calls[2][0][0], inverted.codes[1])


def test_inversion_lowers_the_loss_on_the_stand_in(generator):
    inverter = Inverter.build(
        generator, InversionConfig(first_steps=60, lpips_net="alex", allow_random_lpips=True, device="cpu")
    )
    target = generator.synthesis(generator.mapping(torch.randn(2, 512)))
    start = inverter.initial_codes(2, torch.Generator().manual_seed(0))
    before = inverter.scores(start, target)[0]
    after = inverter.scores(inverter.first_frames(target), target)[0]
    assert (after < 0.5 * before).all(), (before, after)  # measured: about 0.1×


def test_missing_weights_name_the_file(tmp_path):
    with pytest.raises(WeightsError, match="nope.pkl: StyleGAN3 network pickle not found"):
        load_stylegan3(str(tmp_path / "nope.pkl"), str(tmp_path))
    (tmp_path / "g.pkl").write_bytes(b"x")
    with pytest.raises(WeightsError, match="not a clone of NVlabs/stylegan3"):
        load_stylegan3(str(tmp_path / "g.pkl"), str(tmp_path))
    with pytest.raises(WeightsError, match="needs a StyleGAN3 generator"):
        build_generator(GeneratorConfig())
    with pytest.raises(WeightsError, match="config.json: missing"):
        build_speech_encoder(SpeechEncoderConfig(weights=str(tmp_path)))
    with pytest.raises(WeightsError, match="LPIPS needs its vgg backbone"):
        build_lpips("vgg")


def _huggingface_names(state):
    """torchaudio → Hugging Face names (the inverse of `torchaudio_name`), as a Wav2Vec2ForCTC stores them."""
    renamed = {}
    for key, value in state.items():
        key = key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        )
        key = key.replace("encoder.transformer.", "encoder.").replace(
            "encoder.feature_projection.", "feature_projection."
        )
        renamed["wav2vec2." + key] = value
    return renamed


def _write_safetensors(path, state):
    header, blobs, offset = {}, [], 0
    for name, tensor in state.items():
        data = tensor.contiguous().numpy().tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header).encode()
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + b"".join(blobs))


@pytest.mark.parametrize("file_format", ["bin", "safetensors"])
def test_huggingface_snapshot_loads_into_torchaudio_wav2vec2(tmp_path, file_format):
    reference = build_speech_encoder(SpeechEncoderConfig(allow_random=True, seed=3))
    hf_state = _huggingface_names(reference.state_dict()) | {"lm_head.weight": torch.zeros(4, 32)}
    assert all(torchaudio_name(k) in reference.state_dict() for k in hf_state if not k.startswith("lm_head"))
    if file_format == "bin":
        torch.save(hf_state, tmp_path / "pytorch_model.bin")
    else:
        _write_safetensors(tmp_path / "model.safetensors", hf_state)
    conv = TINY["extractor_conv_layer_config"]
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "feat_extract_norm": "group",
                "conv_dim": [c[0] for c in conv],
                "conv_kernel": [c[1] for c in conv],
                "conv_stride": [c[2] for c in conv],
                "conv_bias": False,
                "hidden_size": 32,
                "feat_proj_dropout": 0.1,
                "num_conv_pos_embeddings": 16,
                "num_conv_pos_embedding_groups": 4,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "attention_dropout": 0.1,
                "intermediate_size": 64,
                "activation_dropout": 0.1,
                "hidden_dropout": 0.1,
                "do_stable_layer_norm": False,
                "layerdrop": 0.0,
            }
        )
    )
    loaded = build_speech_encoder(SpeechEncoderConfig(weights=str(tmp_path)))
    wave = torch.randn(1, 8000)
    assert torch.allclose(speech_features(loaded, wave), speech_features(reference, wave), atol=1e-5)


def test_lpips_backbone_comes_from_a_torchvision_file(tmp_path):
    backbone = torchvision.models.alexnet()
    torch.save(backbone.state_dict(), tmp_path / "alexnet.pth")
    distance = build_lpips("alex", str(tmp_path / "alexnet.pth"))
    assert torch.equal(distance.net.slice1[0].weight, backbone.features[0].weight)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(WeightsError, match="wrong.pth does not fit torchvision alex"):
        build_lpips("alex", str(tmp_path / "wrong.pth"))


def test_inversion_cache_resumes_after_a_lost_shard(isolated_data_and_runs, monkeypatch):
    from lightning_modules.a2v import inversion
    from lightning_modules.a2v.data import A2VDataModule

    datamodule = A2VDataModule(
        demo_size="tiny",
        image_size=32,
        fps=25,
        prepare_workers=0,
        num_workers=0,
        batch_size=4,
        cache_dir=str(isolated_data_and_runs / "a2v_cache"),
        crop=dict(
            method="box",
            detector="mtcnn",
            box_track="interpolate",
            detect_every=10,
            box_scale=1.3,
            single_face=True,
            landmarks=False,
        ),
        generator=dict(allow_random=True, tiny_resolution=32, tiny_channels=8),
        speech_encoder=dict(allow_random=True),
        inversion=dict(
            first_steps=4, later_steps=1, lpips_net="alex", allow_random_lpips=True, batch_clips=2
        ),
    )
    datamodule.prepare_data()
    cache = datamodule.latent_cache()
    before = {m["key"]: np.array(a["rows"]) for m, a in (cache.read()[i] for i in range(len(cache.read())))}
    assert len(before) >= 4 and all(np.isfinite(r).all() for r in before.values())
    cache.shard_path(1, ".json").unlink()  # as if the run died while writing shard 1
    inverted = []
    original = inversion.Inverter.invert_clips
    monkeypatch.setattr(
        inversion.Inverter,
        "invert_clips",
        lambda self, clips, **kw: inverted.append(len(clips)) or original(self, clips, **kw),
    )
    datamodule.prepare_data()
    assert inverted == [2]  # only the lost shard's two clips
    after = {m["key"]: np.array(a["rows"]) for m, a in (cache.read()[i] for i in range(len(cache.read())))}
    # Re-inverted from the same seed; CPU kernels may sum in another order from run to run (2e-5 seen on
    # codes of size ~1 on a loaded 2-core machine), so equal to float tolerance, not bit for bit.
    assert after.keys() == before.keys() and all(np.allclose(after[k], before[k], atol=1e-4) for k in before)

    datamodule.setup("fit")
    frames = sum(len(c.rows) for c in datamodule.latent_clips["train"])
    item = datamodule.dataset("train")[0]
    assert len(datamodule.dataset("train")) == frames and item["residual"].shape == (1536,)
    mean, std = datamodule.code_stats
    train = torch.cat([c.residual(slice(None)) for c in datamodule.latent_clips["train"]]).double()
    assert mean == pytest.approx(train.mean().item()) and std == pytest.approx(
        train.std(unbiased=False).item()
    )
