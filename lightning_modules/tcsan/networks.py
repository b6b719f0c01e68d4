"""TCSAN + Audio2AU networks (docs/tcsan.md): identity image + MFCC windows → a 112-px talking head.

Shapes for one frame at the paper's size (S = 112, `width` = 1); B clips of T frames:

- `AudioEncoder`: `(N, 1, 12, 28)` MFCC window → `(N, 512)` (5 conv + BN + ReLU, 2 FC).
- `IdentityEncoder`: `(B, 3, S, S)` → `(B, 512)` and four U-Net skips at S/2 … S/16.
- `Audio2AUNet`: `(B, T, 1, 12, 28)` → `(B, T, 64)` AU feature (and, with its head, `(B, T, 1)` P(AU)).
- `ImageDecoder`: `(N, 1024)` + skips → `(N, 3, S, S)` in [-1, 1] (FC + 6 transposed convs).
- `AUClassifier`: the lower half of a frame `(N, 3, S, S)` → `(N, 5)` probabilities (AU10, 14, 20, 25, 26).
- `PatchDiscriminator`: `(N, 3, S, S)` → `(N, 1, S/16, S/16)` logits (optional GAN, off in the paper).
- `Generator`: everything but the classifier and discriminator.

`width` scales every hidden width (not the 64-d AU features or the 64-d attention tokens) for CPU runs;
512·width must be a multiple of 64. Parameter counts at width 1 are tested (docs/tcsan.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from .fusion import build_fusion, fuse_in_chunks

MFCC_COEFFICIENTS = 12
MFCC_STEPS = 28
AU_FEATURE = 64
NUM_AUS = 5
IMAGE_SIZE = 112


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _conv_bn_relu(in_channels: int, out_channels: int, kernel, stride=1, padding=1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


def init_weights(module: nn.Module) -> None:
    """CRAN's initialisation: convs N(0, 0.02); BN γ ~ N(1, 0.02), β = 0; linear Xavier, bias
    0.01."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.constant_(layer.bias, 0.01)


class AudioEncoder(nn.Module):
    """`(N, 1, 12, 28)` → `(N, 512·width)`."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = [1] + [_scaled(n, width) for n in (16, 32, 64, 128, 256)]
        strides = (1, 2, 1, 1, 2)
        self.convs = nn.Sequential(
            *[m for i, s in enumerate(strides) for m in _conv_bn_relu(c[i], c[i + 1], 3, s)]
        )
        flat = c[-1] * 3 * 7
        self.out_features = _scaled(512, width)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, self.out_features),
            nn.BatchNorm1d(self.out_features),
            nn.ReLU(),
            nn.Linear(self.out_features, self.out_features),
        )

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(windows))


class IdentityEncoder(nn.Module):
    """`(B, 3, S, S)` → f_id `(B, 512·width)` and skips
    `[(16w, S/2), (32w, S/4), (64w, S/8), (128w, S/16)]`."""

    def __init__(self, width: float = 1.0, image_size: int = IMAGE_SIZE):
        super().__init__()
        c = [3] + [_scaled(n, width) for n in (16, 32, 64, 128)]
        self.skip_channels = c[1:]
        self.layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(c[i], c[i + 1], 5, 2, 2), nn.ReLU()) for i in range(4)]
        )
        self.out_features = _scaled(512, width)
        self.fc = nn.Linear(c[-1] * (image_size // 16) ** 2, self.out_features)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = image
        for layer in self.layers:
            x = layer(x)
            skips.append(x)
        return self.fc(x.flatten(1)), skips


def per_frame(network: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """`network` applied to each frame of `(B, T, ...)` as one batch of B·T → `(B, T, ...)`."""
    out = network(frames.flatten(0, 1))
    return out.view(*frames.shape[:2], *out.shape[1:])


def in_frame_chunks(
    encode: Callable[[torch.Tensor], torch.Tensor], frames: torch.Tensor, chunk_frames: int | None
) -> torch.Tensor:
    """`encode` of a frame-independent `(B, T, ...)` input, computed `chunk_frames` frames at a time (all at
    once when None) and joined along T: the same result, with the activations of one chunk in memory."""
    if chunk_frames is None or chunk_frames >= frames.shape[1]:
        return encode(frames)
    return torch.cat(
        [encode(frames[:, s : s + chunk_frames]) for s in range(0, frames.shape[1], chunk_frames)], 1
    )


class Audio2AUNet(nn.Module):
    """One AU's network: conv over frequency, conv over time, max-pool, 2-layer LSTM across video frames,
    3 FC. `(B, T, 1, 12, 28)` → feature `(B, T, 64)` ≥ 0, or P(AU) `(B, T, 1)` with the head."""

    def __init__(self, width: float = 1.0, with_head: bool = True):
        super().__init__()
        freq, time, hidden = _scaled(32, width), _scaled(64, width), _scaled(256, width)
        self.convs = nn.Sequential(
            *_conv_bn_relu(1, freq, (3, 1), (2, 1), (1, 0)),
            *_conv_bn_relu(freq, time, (1, 3), (1, 2), (0, 1)),
            nn.MaxPool2d(2),
        )
        self.lstm = nn.LSTM(time * 3 * 7, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Sequential(
            nn.Linear(hidden, _scaled(128, width)),
            nn.ReLU(),
            nn.Linear(_scaled(128, width), AU_FEATURE),
            nn.ReLU(),
        )
        self.head = nn.Linear(AU_FEATURE, 1) if with_head else None

    def drop_head(self) -> None:
        """After pretraining the last FC goes; the 64-d penultimate output is the AU feature."""
        self.head = None

    def features(self, windows: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """`chunk_frames` frames at a time (all at once when None), the LSTM carrying its state from chunk
        to chunk: the same features, with one chunk's activations in memory."""
        chunk = chunk_frames or windows.shape[1]
        state, outputs = None, []
        for start in range(0, windows.shape[1], chunk):
            codes = per_frame(self.convs, windows[:, start : start + chunk]).flatten(2)
            recurrent, state = self.lstm(codes, state)
            outputs.append(self.fc(recurrent))
        return torch.cat(outputs, dim=1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError(
                "this Audio2AU network has no head (dropped after pretraining); use features()"
            )
        return torch.sigmoid(self.head(self.features(windows)))


class Audio2AU(nn.Module):
    """The five AU networks (AU10, 14, 20, 25, 26). `(B, T, 1, 12, 28)` → `(B, T, 320)` features, or
    `(B, T, 5)` probabilities (with heads)."""

    def __init__(self, width: float = 1.0, with_head: bool = True):
        super().__init__()
        self.networks = nn.ModuleList([Audio2AUNet(width, with_head) for _ in range(NUM_AUS)])

    def drop_heads(self) -> None:
        for network in self.networks:
            network.drop_head()

    def features(self, windows: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        return torch.cat([network.features(windows, chunk_frames) for network in self.networks], dim=-1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return torch.cat([network(windows) for network in self.networks], dim=-1)


class ImageDecoder(nn.Module):
    """FC → (256w, S/16, S/16), then 6 transposed convs, concatenating the identity skips (U-Net):
    `(N, C)` + skips `(N, ·, ·, ·)` → `(N, 3, S, S)` in [-1, 1]."""

    def __init__(
        self, in_features: int, skip_channels: Sequence[int], width: float = 1.0, image_size: int = IMAGE_SIZE
    ):
        super().__init__()
        self.start, self.base = image_size // 16, _scaled(256, width)
        self.fc = nn.Linear(in_features, self.base * self.start**2)
        e1, e2, e3, e4 = skip_channels
        outs = [_scaled(n, width) for n in (196, 128, 80, 48, 16)]
        ins = [self.base + e4, outs[0] + e3, outs[1] + e2, outs[2] + e1]
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(i, o, 5, 2, 2, output_padding=1) for i, o in zip(ins, outs)]
        )
        self.refine = nn.ConvTranspose2d(outs[3], outs[4], 5, 1, 2)
        self.out = nn.ConvTranspose2d(outs[4], 3, 5, 1, 2)

    def forward(self, features: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        x = torch.relu(self.fc(features).view(len(features), self.base, self.start, self.start))
        for layer, skip in zip(self.up, reversed(skips)):
            x = torch.relu(layer(torch.cat([x, skip], dim=1)))
        return torch.tanh(self.out(torch.relu(self.refine(x))))


class AUClassifier(nn.Module):
    """Pretrained AU supervisor on the lower half of a frame: `(N, 3, S, S)` → `(N, 5)` in (0, 1).

    Only rows S/2 … S−1 are read (the mouth region), so nothing above them can change the output.
    """

    def __init__(self, width: float = 1.0, image_size: int = IMAGE_SIZE):
        super().__init__()
        c1, c2 = _scaled(32, width), _scaled(64, width)
        self.features = nn.Sequential(
            *_conv_bn_relu(3, c1, 3),
            *_conv_bn_relu(c1, c1, 3),
            nn.MaxPool2d(2),
            *_conv_bn_relu(c1, c2, 3),
            *_conv_bn_relu(c2, c2, 3),
            nn.MaxPool2d(2),
        )
        flat = c2 * (image_size // 8) * (image_size // 4)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, _scaled(256, width)),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(_scaled(256, width), _scaled(64, width)),
            nn.ReLU(),
            nn.Linear(_scaled(64, width), NUM_AUS),
        )

    @staticmethod
    def lower_half(frames: torch.Tensor) -> torch.Tensor:
        return frames[..., frames.shape[-2] // 2 :, :]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.features(self.lower_half(frames))))


class PatchDiscriminator(nn.Module):
    """CRAN's frame critic (optional; the paper's final model has none): 4 × (conv k3 s2 + InstanceNorm +
    LeakyReLU 0.2), then a 1×1 conv. `(N, 3, S, S)` → `(N, 1, S/16, S/16)` logits."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = [3] + [_scaled(n, width) for n in (16, 32, 64, 128)]
        layers = [
            m
            for i in range(4)
            for m in (nn.Conv2d(c[i], c[i + 1], 3, 2, 1), nn.InstanceNorm2d(c[i + 1]), nn.LeakyReLU(0.2))
        ]
        self.layers = nn.Sequential(*layers, nn.Conv2d(c[-1], 1, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.layers(frames)


class Generator(nn.Module):
    """Identity frame `(B, 3, S, S)` + MFCC windows `(B, T, 12, 28)` → video `(B, T, 3, S, S)` in [-1, 1].

    Args:
        fusion: "tcsan", "tcn", "mhatt_tcn", "coatt_tcn" or "gru" (`fusion.py`).
        use_audio2au: add the five Audio2AU networks' 320-d AU features to every frame's input.
        width: hidden-width multiplier (1 = the paper's 45.8M parameters with Audio2AU and TCSAN).
        dropout: inside the temporal blocks.
    """

    def __init__(
        self,
        fusion: str = "tcsan",
        use_audio2au: bool = True,
        width: float = 1.0,
        image_size: int = IMAGE_SIZE,
        dropout: float = 0.1,
    ):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16 (four stride-2 layers), got {image_size}")
        if (512 * width) % 64:
            raise ValueError(f"512·width must be a multiple of 64 (attention tokens), got width {width}")
        self.audio_encoder = AudioEncoder(width)
        self.identity_encoder = IdentityEncoder(width, image_size)
        self.audio2au: Audio2AU | None = Audio2AU(width, with_head=False) if use_audio2au else None
        modalities = [self.identity_encoder.out_features, self.audio_encoder.out_features]
        modalities += [NUM_AUS * AU_FEATURE] if use_audio2au else []
        hidden = _scaled(1024, width)
        self.fusion = build_fusion(fusion, modalities, hidden, dropout)
        self.decoder = ImageDecoder(hidden, self.identity_encoder.skip_channels, width, image_size)
        for part in (self.audio_encoder, self.identity_encoder, self.decoder):
            init_weights(part)

    def encode(
        self, identity: torch.Tensor, mfcc: torch.Tensor, chunk_frames: int | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Identity `(B, 3, S, S)` + MFCC `(B, T, 12, 28)` → fused per-frame features `(B, T, H)` and the
        identity skips (one per clip)."""
        inputs, skips = self.frame_inputs(identity, mfcc, chunk_frames)
        return self.fusion(inputs), skips

    def frame_inputs(
        self, identity: torch.Tensor, mfcc: torch.Tensor, chunk_frames: int | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The fusion's input f_id ⊕ f_a ⊕ f_au `(B, T, C_in)` and the identity skips; the per-frame
        encoders run `chunk_frames` frames at a time (all at once when None)."""
        batch, frames = mfcc.shape[:2]
        windows = mfcc.reshape(batch, frames, 1, MFCC_COEFFICIENTS, -1)
        identity_features, skips = self.identity_encoder(identity)
        parts = [
            identity_features[:, None].expand(-1, frames, -1),
            in_frame_chunks(lambda part: per_frame(self.audio_encoder, part), windows, chunk_frames),
        ]
        if self.audio2au is not None:
            parts.append(self.audio2au.features(windows, chunk_frames))
        return torch.cat(parts, dim=-1), skips

    def stream(self, identity: torch.Tensor, mfcc: torch.Tensor, chunk_frames: int) -> Iterator[torch.Tensor]:
        """`forward`'s frames, made `chunk_frames` at a time: chunks `(B, t, 3, S, S)`. Only the fusion's
        small per-frame inputs are held for the whole clip (C_in floats a frame); each chunk is fused from
        them with the fusion's context and decoded, so the chunks together equal one pass."""
        inputs, skips = self.frame_inputs(identity, mfcc, chunk_frames)
        for fused in fuse_in_chunks(self.fusion, inputs, chunk_frames):
            yield self.decode(fused, skips)

    def decode(self, fused: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fused features `(B, T, H)` + per-clip skips → frames `(B, T, 3, S, S)`; frames are independent
        here, so any run of them can be decoded apart (bounded memory for long audio)."""
        batch, frames = fused.shape[:2]
        repeated = [skip.repeat_interleave(frames, dim=0) for skip in skips]
        decoded = self.decoder(fused.flatten(0, 1), repeated)
        return decoded.view(batch, frames, *decoded.shape[1:])

    def forward(self, identity: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        return self.decode(*self.encode(identity, mfcc))
