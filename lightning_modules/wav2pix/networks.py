"""Wav2Pix networks (docs/wav2pix.md): speech encoder Φ, identity classifier C, generator G, critic D.

Layer for layer these follow the authors' released code (marked [C] below), which fills in what the paper
leaves open: BatchNorm in the encoder, spectral norm everywhere in G and on every D conv but the last, no
bias in G or D, and dropout as G's only noise source. Weights are drawn from N(0, 0.02) *before* spectral
norm wraps a layer (our default: the paper does not say, and the released code's init silently missed its
SN layers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "SpeechEncoder",
    "IdentityClassifier",
    "FaceGenerator",
    "FaceDiscriminator",
    "init_weights",
    "spectral",
]

EMBED_DIM = 128  # e = Φ(s) ∈ R^128
ENCODER_CHANNELS = (16, 32, 128, 256, 512, 1024)  # c1-c6
ENCODER_KERNEL, ENCODER_STRIDE = 15, 4
ENCODER_PADDING = (ENCODER_KERNEL // 2 - 1, ENCODER_KERNEL // 2)  # (6, 7): asymmetric, as F.pad in [C]
ENCODER_HIDDEN = (256, 128)  # fc1, fc2 (ReLU); fc3 maps to EMBED_DIM with no activation
CLASSIFIER_HIDDEN = 200
# Output channels of each layer before the RGB one; the first is the 1×1 → 4×4 projection.
GENERATOR_CHANNELS = {64: (512, 256, 128, 64), 128: (1024, 512, 256, 128, 64)}
# Output channels of each stride-2 conv, down to the 4×4 map φ.
DISCRIMINATOR_CHANNELS = {64: (64, 128, 256, 512), 128: (64, 128, 256, 512, 1024)}
FEATURE_SIDE = 4  # D concatenates e once its map reaches 4×4


def _check_image_size(image_size: int) -> None:
    if image_size not in GENERATOR_CHANNELS:
        raise ValueError(f"image_size must be one of {tuple(GENERATOR_CHANNELS)}, got {image_size}")


def init_weights(module: nn.Module) -> None:
    """DCGAN-style init of one layer; use it with `network.apply(init_weights)`.

    Conv/Linear weights ~ N(0, 0.02); BatchNorm weights ~ N(1, 0.02), biases 0. Other biases keep the
    PyTorch default, as in [C]. On a spectrally normalised layer the unnormalised weight is drawn, so the
    result matches initialising before wrapping (apart from the power-iteration vectors).
    """
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        wrapped = parametrize.is_parametrized(module, "weight")
        nn.init.normal_(module.parametrizations.weight.original if wrapped else module.weight, 0.0, 0.02)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def spectral(layer: nn.Module) -> nn.Module:
    """`init_weights` on `layer`, then wrap its weight in spectral norm with one power iteration per step.

    The weight is read as a matrix with its *first* axis as rows, `weight.reshape(weight.shape[0], -1)`,
    for every layer type, as the authors' own wrapper does. For a ConvTranspose2d, whose weight is
    `(in, out, kH, kW)`, that means input channels × rest; PyTorch's default for transposed convs
    (`dim=1`, output channels × rest) divides by a different σ and leaves G with about a third of the
    authors' gain at initialisation.
    """
    init_weights(layer)
    return spectral_norm(layer, n_power_iterations=1, dim=0)


def _initialised(layer: nn.Module) -> nn.Module:
    """`layer` initialised by `init_weights`, without spectral norm."""
    init_weights(layer)
    return layer


# ----------------------------------------------------------------------------- speech encoder Φ


class SpeechEncoder(nn.Module):
    """Φ, a shortened SEGAN critic on raw audio: `(B, T)` or `(B, 1, T)` → e `(B, 128)`.

    Six blocks of pad(6, 7) → Conv1d(k15, s4) → BN → LeakyReLU(0.3) take the time axis down ~4096×
    (16000 or 16384 samples → 1024×4); the map is flattened channel-major and three FC layers
    (ReLU, ReLU, none) give e.

    Args:
        num_samples: clip length T the network is built for; it sets the flatten size
            (T=16000/16384 → 4096, 11200 → 3072, 4800 → 1024), found by a dummy forward pass.
    """

    def __init__(self, num_samples: int = 16000):
        super().__init__()
        layers: list[nn.Module] = []
        for in_channels, out_channels in zip((1,) + ENCODER_CHANNELS, ENCODER_CHANNELS):
            layers += [
                nn.ConstantPad1d(ENCODER_PADDING, 0.0),
                nn.Conv1d(in_channels, out_channels, ENCODER_KERNEL, stride=ENCODER_STRIDE),
                nn.BatchNorm1d(out_channels),
                nn.LeakyReLU(0.3),
            ]
        self.convs = nn.Sequential(*layers)
        self.num_samples = num_samples
        self.flat_size = self._flat_size(num_samples)
        widths = (self.flat_size,) + ENCODER_HIDDEN
        fcs: list[nn.Module] = []
        for in_features, out_features in zip(widths, widths[1:]):
            fcs += [nn.Linear(in_features, out_features), nn.ReLU()]
        self.fcs = nn.Sequential(*fcs, nn.Linear(widths[-1], EMBED_DIM))
        self.apply(init_weights)

    def _flat_size(self, num_samples: int) -> int:
        # Eval mode so the probe leaves the BN running statistics untouched (and works with batch 1).
        self.convs.eval()
        try:
            with torch.no_grad():
                return self.convs(torch.zeros(1, 1, num_samples)).numel()
        except RuntimeError as error:
            raise ValueError(f"num_samples={num_samples} is too short for six stride-4 convs") from error
        finally:
            self.convs.train()

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 2:
            wav = wav.unsqueeze(1)  # (B, 1, T)
        features = self.convs(wav)  # (B, 1024, L6), L6 = 4 at T=16000
        return self.fcs(features.flatten(1))  # channel-major flatten, as view(B, -1) in [C]


# ----------------------------------------------------------------------------- auxiliary classifier C


class IdentityClassifier(nn.Sequential):
    """C on the speech embedding: e `(B, 128)` → identity logits `(B, N_id)`.

    Linear → BN → LeakyReLU(0.2) → Linear → BN; the logits themselves are batch-normalised, as in [C].
    """

    def __init__(self, num_identities: int, embedding_dim: int = EMBED_DIM):
        if num_identities < 1:
            raise ValueError(f"num_identities must be positive, got {num_identities}")
        super().__init__(
            nn.Linear(embedding_dim, CLASSIFIER_HIDDEN),
            nn.BatchNorm1d(CLASSIFIER_HIDDEN),
            nn.LeakyReLU(0.2),
            nn.Linear(CLASSIFIER_HIDDEN, num_identities),
            nn.BatchNorm1d(num_identities),
        )
        self.apply(init_weights)


# ----------------------------------------------------------------------------- generator G


class SamplingDropout(nn.Module):
    """Dropout that can stay on in eval mode: G's only noise source, even at inference (pix2pix-style).

    With `always_on`, `model.eval()` still samples a fresh mask on every call (MC dropout); without it this
    is plain `nn.Dropout`.
    """

    def __init__(self, p: float, always_on: bool = True):
        super().__init__()
        self.p, self.always_on = p, always_on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=self.training or self.always_on)

    def extra_repr(self) -> str:
        return f"p={self.p}, always_on={self.always_on}"


class FaceGenerator(nn.Module):
    """G, a DCGAN decoder without BN or z: e `(B, 128)` → face `(B, 3, S, S)` in [-1, 1].

    An SN ConvT(4, 1, 0) projects the 1×1 embedding to 4×4, then SN ConvT(4, 2, 1) layers double the side
    up to S; every layer but the last is followed by Dropout then ReLU, the last by Tanh.

    Args:
        image_size: S, 64 or 128.
        dropout: drop probability after each hidden layer.
        keep_dropout_at_inference: keep sampling dropout masks in eval mode (the paper's inference);
            False makes `eval()` deterministic.
        spectral_norm: wrap every layer in spectral norm (the authors' G). SN makes G's output independent
            of its weights' scale, and a fresh G answers any embedding with a flat grey image, so its gain
            grows only as training reshapes the layers' spectra: the paper's ≈68k iterations leave time
            for that, a CPU demo of a few hundred does not. False keeps the N(0, 0.02) init alone.
    """

    def __init__(
        self,
        image_size: int = 128,
        embedding_dim: int = EMBED_DIM,
        dropout: float = 0.5,
        keep_dropout_at_inference: bool = True,
        spectral_norm: bool = True,
    ):
        super().__init__()
        _check_image_size(image_size)
        channels = GENERATOR_CHANNELS[image_size]
        wrap = spectral if spectral_norm else _initialised
        layers: list[nn.Module] = []
        for index, (in_channels, out_channels) in enumerate(zip((embedding_dim,) + channels, channels)):
            stride, padding = (1, 0) if index == 0 else (2, 1)
            layers += [
                wrap(nn.ConvTranspose2d(in_channels, out_channels, 4, stride, padding, bias=False)),
                SamplingDropout(dropout, always_on=keep_dropout_at_inference),
                nn.ReLU(),
            ]
        layers += [wrap(nn.ConvTranspose2d(channels[-1], 3, 4, 2, 1, bias=False)), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        self.image_size = image_size

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.layers(embedding[:, :, None, None])  # (B, 128, 1, 1) → (B, 3, S, S)


# ----------------------------------------------------------------------------- discriminator D


class FaceDiscriminator(nn.Module):
    """Conditional critic D: face `(B, 3, S, S)`, e `(B, 128)` → score `(B,)`, φ `(B, C, 4, 4)`.

    SN Conv(4, 2, 1) + LeakyReLU(0.2) layers take the face down to the 4×4 map φ (C = 512 at 64 px, 1024
    at 128 px), which is returned for feature matching. e is tiled to 4×4 and concatenated on channels; a
    final Conv(4, 1, 0) without spectral norm or activation gives the LSGAN score. No bias, no BN ([C]).
    """

    def __init__(self, image_size: int = 128, embedding_dim: int = EMBED_DIM):
        super().__init__()
        _check_image_size(image_size)
        channels = DISCRIMINATOR_CHANNELS[image_size]
        layers: list[nn.Module] = []
        for in_channels, out_channels in zip((3,) + channels, channels):
            layers += [spectral(nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.score = nn.Conv2d(channels[-1] + embedding_dim, 1, FEATURE_SIDE, 1, 0, bias=False)
        init_weights(self.score)
        self.image_size = image_size

    def forward(self, image: torch.Tensor, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(image)  # (B, C, 4, 4)
        tiled = embedding[:, :, None, None].expand(-1, -1, FEATURE_SIDE, FEATURE_SIDE)  # (B, 128, 4, 4)
        score = self.score(torch.cat([features, tiled], dim=1))  # (B, 1, 1, 1)
        return score.flatten(), features
