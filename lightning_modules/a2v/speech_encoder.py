"""The frozen Wav2Vec2 whose last transformer layer gives A2V's audio embedding e `(B, L_a, 768)`, and the
architecture Embed2Lat copies.

The network is torchaudio's `Wav2Vec2Model` (7 conv layers, hop 320 samples = 20 ms at 16 kHz, 12 post-LN
transformer layers for "base"). Weights come from a path the user gives:

- a Hugging Face snapshot folder (`config.json` + `pytorch_model.bin` or `model.safetensors`), e.g.
  facebook/wav2vec2-base-960h (our default; the paper names no checkpoint) or facebook/wav2vec2-base;
  its names are mapped onto torchaudio's, CTC and pretraining heads dropped;
- a torchaudio state-dict file (`.pth`) for the `wav2vec2_base` architecture.

Without weights, and only when `allow_random` is set (demo, tests), a seeded 2-layer, 32-wide stand-in with
the real conv front end (so L_a = ⌊(n − 400) / 320⌋ + 1 still holds) is used, and the logs say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn
from torchaudio.models import Wav2Vec2Model, wav2vec2_model

from ..common.errors import WeightsError
from ..common.pretrained.weights import check_state_dict, load_tensor_file, read_state_dict

SAMPLE_RATE = 16000
FEATURES_PER_FRAME = 2  # 50 Hz features for 25 fps video
HOW_TO = (
    "download facebook/wav2vec2-base-960h (config.json + pytorch_model.bin or model.safetensors) and set "
    "speech_encoder.weights to that folder"
)

BASE = dict(
    extractor_mode="group_norm",
    extractor_conv_layer_config=[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2,
    extractor_conv_bias=False,
    encoder_embed_dim=768,
    encoder_projection_dropout=0.1,
    encoder_pos_conv_kernel=128,
    encoder_pos_conv_groups=16,
    encoder_num_layers=12,
    encoder_num_heads=12,
    encoder_attention_dropout=0.1,
    encoder_ff_interm_features=3072,
    encoder_ff_interm_dropout=0.1,
    encoder_dropout=0.1,
    encoder_layer_norm_first=False,
    encoder_layer_drop=0.0,
)
TINY = {
    **BASE,
    "extractor_conv_layer_config": [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2,
    "encoder_embed_dim": 32,
    "encoder_pos_conv_kernel": 16,
    "encoder_pos_conv_groups": 4,
    "encoder_num_layers": 2,
    "encoder_num_heads": 2,
    "encoder_ff_interm_features": 64,
}
HEADS = ("lm_head.", "quantizer.", "project_q.", "project_hid.", "masked_spec_embed", "dropout_features")


@dataclass(frozen=True)
class SpeechEncoderConfig:
    """Args:
    weights: a Hugging Face Wav2Vec2 snapshot folder or a torchaudio `wav2vec2_base` state-dict file.
    allow_random: without weights, use the seeded tiny stand-in (demo and tests only).
    seed: the stand-in's weights are drawn from this seed, so every stage builds the same network.
    """

    weights: str | None = None
    allow_random: bool = False
    seed: int = 0

    def identity(self) -> str:
        """What cached features depend on."""
        return f"weights:{Path(self.weights).expanduser().resolve()}" if self.weights else f"tiny:{self.seed}"


def architecture(config: SpeechEncoderConfig) -> dict:
    """`wav2vec2_model` arguments: the snapshot's config.json, base for a state-dict file, else the
    stand-in."""
    if config.weights is None:
        if not config.allow_random:
            raise WeightsError(
                f"A2V needs Wav2Vec2 weights: {HOW_TO} (or allow_random: true for a random "
                "stand-in, demo only)."
            )
        return dict(TINY)
    path = Path(config.weights).expanduser()
    if path.is_dir():
        return _huggingface_architecture(path / "config.json")
    return dict(BASE)


def _huggingface_architecture(path: Path) -> dict:
    try:
        hf = json.loads(path.read_text())
        return dict(
            extractor_mode=f"{hf['feat_extract_norm']}_norm",
            extractor_conv_layer_config=list(zip(hf["conv_dim"], hf["conv_kernel"], hf["conv_stride"])),
            extractor_conv_bias=hf["conv_bias"],
            encoder_embed_dim=hf["hidden_size"],
            encoder_projection_dropout=hf["feat_proj_dropout"],
            encoder_pos_conv_kernel=hf["num_conv_pos_embeddings"],
            encoder_pos_conv_groups=hf["num_conv_pos_embedding_groups"],
            encoder_num_layers=hf["num_hidden_layers"],
            encoder_num_heads=hf["num_attention_heads"],
            encoder_attention_dropout=hf["attention_dropout"],
            encoder_ff_interm_features=hf["intermediate_size"],
            encoder_ff_interm_dropout=hf["activation_dropout"],
            encoder_dropout=hf["hidden_dropout"],
            encoder_layer_norm_first=hf["do_stable_layer_norm"],
            encoder_layer_drop=hf["layerdrop"],
        )
    except FileNotFoundError:
        raise WeightsError(
            f"{path}: missing; a Wav2Vec2 snapshot folder holds config.json; {HOW_TO}."
        ) from None
    except (KeyError, json.JSONDecodeError) as error:
        raise WeightsError(
            f"{path}: not a Wav2Vec2 config ({type(error).__name__}: {error}); {HOW_TO}."
        ) from None


def build_speech_encoder(config: SpeechEncoderConfig) -> Wav2Vec2Model:
    """The frozen Wav2Vec2 in eval mode (no CTC head): the user's weights, else the seeded stand-in."""
    arguments = architecture(config)
    if config.weights is None:
        rank_zero_warn(
            "A2V: no Wav2Vec2 weights (speech_encoder.weights): audio features come from a small RANDOM "
            "stand-in. Shapes and timing are the real ones; the features carry no learned speech content."
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = wav2vec2_model(**arguments, aux_num_out=None)
    else:
        model = wav2vec2_model(**arguments, aux_num_out=None)
        path = Path(config.weights).expanduser()
        state = (
            _huggingface_state(path, model)
            if path.is_dir()
            else read_state_dict(
                path,
                model,
                "Wav2Vec2 (torchaudio wav2vec2_base)",
                HOW_TO,
                keep=lambda key: not key.startswith("aux."),
            )
        )
        model.load_state_dict(state)
    return model.eval().requires_grad_(False)


def _huggingface_state(folder: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """The snapshot's weights renamed to torchaudio's modules, checked key by key against `model`."""
    binary, safetensors = folder / "pytorch_model.bin", folder / "model.safetensors"
    if safetensors.is_file():
        raw = read_safetensors(safetensors)
    elif binary.is_file():
        raw = load_tensor_file(binary, HOW_TO)
    else:
        raise WeightsError(f"{folder}: holds neither model.safetensors nor pytorch_model.bin; {HOW_TO}.")
    state = {
        torchaudio_name(key): value
        for key, value in raw.items()
        if not any(key.removeprefix("wav2vec2.").startswith(h) for h in HEADS)
    }
    return check_state_dict(state, model, str(folder), "the Wav2Vec2 of its config.json", HOW_TO)


def torchaudio_name(key: str) -> str:
    """A Hugging Face Wav2Vec2 parameter name → torchaudio's (`encoder.` → `encoder.transformer.`, the
    feature projection under `encoder.`, weight-norm halves as parametrizations)."""
    key = key.removeprefix("wav2vec2.")
    if key.startswith("feature_projection."):
        key = "encoder." + key
    elif key.startswith("encoder."):
        key = "encoder.transformer." + key.removeprefix("encoder.")
    return key.replace("conv.weight_g", "conv.parametrizations.weight.original0").replace(
        "conv.weight_v", "conv.parametrizations.weight.original1"
    )


SAFETENSORS_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
}


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors` file (an 8-byte header length, a JSON header, raw little-endian data)."""
    data = path.read_bytes()
    try:
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + length])
        body = memoryview(data)[8 + length :]
        state = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, stop = info["data_offsets"]
            tensor = torch.frombuffer(bytearray(body[start:stop]), dtype=SAFETENSORS_DTYPES[info["dtype"]])
            state[name] = tensor.reshape(info["shape"]).float()
        return state
    except (ValueError, KeyError, TypeError) as error:
        raise WeightsError(
            f"{path}: not a readable safetensors file ({type(error).__name__}: {error}); {HOW_TO}."
        ) from None


def speech_features(encoder: Wav2Vec2Model, wave: torch.Tensor) -> torch.Tensor:
    """`(B, n)` 16 kHz speech → `(B, L_a, D)` last-layer features; each utterance is first normalised to
    zero mean and unit variance (as Wav2Vec2's feature extractor does)."""
    wave = (wave - wave.mean(-1, keepdim=True)) / (wave.std(-1, keepdim=True) + 1e-7)
    features, _ = encoder(wave)
    return features


def features_for_frames(features: torch.Tensor, frames: int) -> torch.Tensor:
    """`(L_a, D)` → `(2·frames, D)`: the last vector repeated (or extras cut) so that video frame j owns
    exactly features 2j and 2j + 1 (L_a = 50T − 1 falls one short of 2N)."""
    wanted = FEATURES_PER_FRAME * frames
    if len(features) >= wanted:
        return features[:wanted]
    return torch.cat([features, features[-1:].expand(wanted - len(features), -1)])
