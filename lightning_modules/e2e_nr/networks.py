"""E2E-NR's networks (spec §2): the generator (speech, image and noise encoders, a U-Net decoder with a
ConvLSTM) and the two critics (frame and audio-visual pair). Plain `nn.Module`s, no Lightning.

Shapes use B = batch, L = samples at 8 kHz, T = ceil(L / 320) frames (one per 40 ms), S = 128 px.
`width` scales every hidden width (1.0 = the paper: G 32,715,123, D_F 68,702,593, D_P 19,978,193
parameters, spec §2.7); the CPU demo and the tests use narrow models of the same structure.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

SAMPLES_PER_FRAME = 320  # 40 ms at 8 kHz
IMAGE_SIZE = 128
CONTEXT_STEPS = 17  # ±17 conv steps of 8 ms around each kept position (±136 ms)
KEEP_EVERY = 5  # the conv stack's hop is 64 samples; every 5th position is one video frame
SLOPE = 0.2


def scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _xavier(module: nn.Module) -> None:
    """xavier_uniform_ on every conv and linear weight (spec §2.7); PyTorch's defaults elsewhere."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)


def _as_batch_of_waves(speech: torch.Tensor) -> torch.Tensor:
    if speech.dim() == 3 and speech.shape[1] == 1:
        speech = speech[:, 0]
    if speech.dim() != 2:
        raise ValueError(f"speech must be (B, L) or (B, 1, L), got {tuple(speech.shape)}")
    if speech.shape[1] < SAMPLES_PER_FRAME:
        raise ValueError(f"speech of {speech.shape[1]} samples is shorter than one 40-ms frame (320 samples at 8 kHz)")
    return speech


def _check_face(image: torch.Tensor, channels: int) -> None:
    if image.dim() != 4 or image.shape[1:] != (channels, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected faces of shape (B, {channels}, {IMAGE_SIZE}, {IMAGE_SIZE}), got {tuple(image.shape)}")


# ----------------------------------------------------------------------------- encoders


class SpeechEncoder(nn.Module):
    """Raw 8 kHz speech → per-frame vectors (spec §2.1).

    `(B, L)` → features f `(B, 16, 5T)` (the conv stack's output, used by the noise-resilience loss) and
    frame vectors `(B, T, 512)`. L is right-padded with zeros to a multiple of 320, so T = ceil(L / 320).
    Frame t sees samples [320t − 1435, 320t + 1435]: the conv stack's 695 samples plus ±17 context steps.
    """

    # (out channels, kernel, stride) of the paper's five convolutions
    LAYERS = ((64, 63, 4), (128, 31, 4), (256, 17, 2), (512, 9, 2), (16, 1, 1))

    def __init__(self, width: float = 1.0, out_dim: int = 512):
        super().__init__()
        layers, channels = [], 1
        for out, kernel, stride in self.LAYERS:
            out = scaled(out, width)
            layers += [nn.ReflectionPad1d(kernel // 2), nn.Conv1d(channels, out, kernel, stride), nn.LeakyReLU(SLOPE)]
            channels = out
        self.convs = nn.Sequential(*layers)
        self.feature_channels = channels
        self.fc = nn.Sequential(nn.Linear((2 * CONTEXT_STEPS + 1) * channels, scaled(out_dim, width)), nn.LeakyReLU(SLOPE))
        self.out_dim = scaled(out_dim, width)

    def forward(self, speech: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        speech = _as_batch_of_waves(speech)
        frames = -(-speech.shape[1] // SAMPLES_PER_FRAME)
        padded = F.pad(speech, (0, frames * SAMPLES_PER_FRAME - speech.shape[1]))
        features = self.convs(padded[:, None])  # (B, C, 5T)
        context = F.pad(features, (CONTEXT_STEPS, CONTEXT_STEPS))  # zeros outside the signal
        windows = context.unfold(2, 2 * CONTEXT_STEPS + 1, KEEP_EVERY)  # (B, C, T, 35)
        stacked = windows.permute(0, 2, 3, 1).flatten(2)  # (B, T, 35·C), time-major
        return features, self.fc(stacked)


class ImageEncoder(nn.Module):
    """A face → identity code and U-Net skips, the input re-injected at every scale (spec §2.2).

    `(B, C, 128, 128)` → z `(B, 512)` and skips at 64, 32, 16, 8, 4 px with (64, 128, 256, 512, 512) + C
    channels, the last C being the input downsampled (nearest). A stride-2 conv equals the paper's
    stride-1 conv followed by nearest ↓2 exactly (the kept outputs are the same), at a quarter of the cost.
    """

    CHANNELS = (64, 128, 256, 512, 512)

    def __init__(self, in_channels: int = 3, width: float = 1.0, out_dim: int = 512):
        super().__init__()
        self.in_channels = in_channels
        self.downs = nn.ModuleList()
        channels = in_channels
        for out in (scaled(c, width) for c in self.CHANNELS):
            self.downs.append(nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, out, 3, stride=2),
                                            nn.LeakyReLU(SLOPE)))
            channels = out + in_channels
        self.skip_channels = [scaled(c, width) + in_channels for c in self.CHANNELS]
        self.out_dim = scaled(out_dim, width)
        self.last = nn.Sequential(nn.Conv2d(channels, self.out_dim, 4), nn.LeakyReLU(SLOPE))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        _check_face(image, self.in_channels)
        skips, h = [], image
        for level, down in enumerate(self.downs, start=1):
            small = F.interpolate(image, scale_factor=0.5**level, mode="nearest")
            h = torch.cat([down(h), small], dim=1)
            skips.append(h)
        return self.last(h).flatten(1), skips


class NoiseEncoder(nn.Module):
    """Per-frame Gaussian noise through one LSTM (spec §2.3): `(B, T, 128)` z → `(B, T, 128)`."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.dim = scaled(128, width)
        self.lstm = nn.LSTM(self.dim, self.dim, batch_first=True)

    def forward(self, z: torch.Tensor, state=None):
        return self.lstm(z, state)


# ----------------------------------------------------------------------------- decoder


class ConvLSTM(nn.Module):
    """A convolutional LSTM over time: one conv on cat(x_t, h_{t−1}) gives the gates i, f, g, o.

    `(B, T, C, H, W)` → `(B, T, hidden, H, W)` and the final (h, c), from zero or a given state.
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, state=None):
        b, t, _, height, width = x.shape
        if state is None:
            zeros = x.new_zeros(b, self.hidden, height, width)
            state = (zeros, zeros)
        h, c = state
        outputs = []
        for step in range(t):
            i, f, g, o = self.gates(torch.cat([x[:, step], h], dim=1)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)


def _conv_block(in_channels: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out, 3), nn.LeakyReLU(SLOPE))


class FrameDecoder(nn.Module):
    """Per-frame codes + the identity skips → frames (spec §2.4).

    code `(B, T, D)`, skips of `ImageEncoder` → `(B, T, 3, 128, 128)` in [-1, 1]. Conv at the current size,
    then nearest ↑2; the skip of the same size is concatenated before each of the first five layers; the
    fourth is a ConvLSTM over time.
    """

    CHANNELS = (512, 256, 128, 64, 32)

    def __init__(self, code_dim: int, skip_channels: list[int], width: float = 1.0):
        super().__init__()
        widths = [scaled(c, width) for c in self.CHANNELS]
        self.base = widths[0]
        self.fc = nn.Sequential(nn.Linear(code_dim, self.base * 16), nn.LeakyReLU(SLOPE))
        inputs = [self.base, *widths[:-1]]
        skips = skip_channels[::-1]  # 4, 8, 16, 32, 64 px
        self.d1, self.d2, self.d3 = (_conv_block(inputs[k] + skips[k], widths[k]) for k in range(3))
        self.d4 = ConvLSTM(inputs[3] + skips[3], widths[3])
        self.d5 = _conv_block(inputs[4] + skips[4], widths[4])
        self.out = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(widths[4], 3, 3), nn.Tanh())

    def forward(self, code: torch.Tensor, skips: list[torch.Tensor], state=None):
        b, t = code.shape[:2]
        per_frame = [s.repeat_interleave(t, dim=0) for s in skips]  # (B·T, C, H, W), frame-major per clip
        h = self.fc(code.flatten(0, 1)).view(b * t, self.base, 4, 4)
        for layer, skip in zip((self.d1, self.d2, self.d3), per_frame[::-1][:3]):
            h = _up(layer(torch.cat([h, skip], 1)))
        x = torch.cat([h, per_frame[1]], 1)
        h, state = self.d4(x.view(b, t, *x.shape[1:]), state)
        h = _up(h.flatten(0, 1))
        h = _up(self.d5(torch.cat([h, per_frame[0]], 1)))
        return self.out(h).view(b, t, 3, IMAGE_SIZE, IMAGE_SIZE), state


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


# ----------------------------------------------------------------------------- generator


class GeneratorOutput(NamedTuple):
    """video `(B, T, 3, 128, 128)` in [-1, 1]; speech_features `(B, 16, 5T)` (the conv stack's output);
    frame_features `(B, T, 512)` (after the context FC)."""

    video: torch.Tensor
    speech_features: torch.Tensor
    frame_features: torch.Tensor


class Generator(nn.Module):
    """E2E-NR's generator: a face and speech (and noise z) → a talking-face video."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.speech_encoder = SpeechEncoder(width)
        self.speech_lstm = nn.LSTM(self.speech_encoder.out_dim, self.speech_encoder.out_dim, num_layers=2,
                                   batch_first=True)
        self.image_encoder = ImageEncoder(3, width)
        self.noise_encoder = NoiseEncoder(width)
        code_dim = self.speech_encoder.out_dim + self.image_encoder.out_dim + self.noise_encoder.dim
        self.decoder = FrameDecoder(code_dim, self.image_encoder.skip_channels, width)
        _xavier(self)

    @property
    def noise_dim(self) -> int:
        return self.noise_encoder.dim

    def _noise(self, shape: tuple[int, int], like: torch.Tensor, noise: Optional[torch.Tensor],
               generator: Optional[torch.Generator]) -> torch.Tensor:
        if noise is not None:
            if noise.shape[:2] != shape or noise.shape[2] != self.noise_dim:
                raise ValueError(f"noise must be (B, T, {self.noise_dim}) = {(*shape, self.noise_dim)}, got {tuple(noise.shape)}")
            return noise.to(like)
        z = torch.randn(*shape, self.noise_dim, generator=generator, device=generator.device if generator else None)
        return z.to(like)

    def forward(self, condition: torch.Tensor, speech: torch.Tensor, noise: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> GeneratorOutput:
        """condition `(B, 3, 128, 128)` in [-1, 1], speech `(B, L)` → `GeneratorOutput` with T = ceil(L/320)."""
        features, frames = self.speech_encoder(speech)
        video, _ = self._decode(condition, frames, self._noise(frames.shape[:2], frames, noise, generator), None)
        return GeneratorOutput(video, features, frames)

    def _decode(self, condition, frames, noise, state):
        speech_state, noise_state, decoder_state = state or (None, None, None)
        identity, skips = self.image_encoder(condition)
        speech_code, speech_state = self.speech_lstm(frames, speech_state)
        noise_code, noise_state = self.noise_encoder(noise, noise_state)
        code = torch.cat([speech_code, identity[:, None].expand(-1, frames.shape[1], -1), noise_code], dim=2)
        video, decoder_state = self.decoder(code, skips, decoder_state)
        return video, (speech_state, noise_state, decoder_state)

    @torch.no_grad()
    def stream(self, condition: torch.Tensor, speech: torch.Tensor, chunk_frames: int = 250,
               noise: Optional[torch.Tensor] = None, progress: bool = False) -> torch.Tensor:
        """The same video as `forward`, generated `chunk_frames` at a time with the recurrent states carried
        over, so memory stays bounded for long speech. The speech encoder runs once over the whole input
        (a few MB per minute); the decoder, which holds the 128-px activations, runs per chunk."""
        _, frames = self.speech_encoder(speech)
        noise = self._noise(frames.shape[:2], frames, noise, None)
        state, chunks = None, []
        starts = range(0, frames.shape[1], chunk_frames)
        for start in tqdm(starts, desc="generating", unit="chunk", disable=not progress):
            part = slice(start, start + chunk_frames)
            video, state = self._decode(condition, frames[:, part], noise[:, part], state)
            chunks.append(video)
        return torch.cat(chunks, dim=1)


# ----------------------------------------------------------------------------- critics


class FrameDiscriminator(nn.Module):
    """Is this frame real, given the condition face? (spec §2.5)

    frames `(N, 3, 128, 128)`, condition `(N, 3, 128, 128)` → raw LSGAN scores `(N, 1)`.
    """

    LAYERS = ((64, 1), (64, 2), (128, 2), (256, 2), (512, 2))  # (channels, stride), kernel 3, zero padding 1

    def __init__(self, width: float = 1.0):
        super().__init__()
        layers, channels = [], 6
        for out, stride in self.LAYERS:
            out = scaled(out, width)
            layers += [nn.Conv2d(channels, out, 3, stride, padding=1), nn.LeakyReLU(SLOPE)]
            channels = out
        self.convs = nn.Sequential(*layers)
        hidden = scaled(2048, width)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(channels * 8 * 8, hidden), nn.LeakyReLU(SLOPE), nn.Linear(hidden, 1))
        _xavier(self)

    def forward(self, frames: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        _check_face(frames, 3)
        return self.fc(self.convs(torch.cat([frames, condition], dim=1)))


def sample_frame_indices(batch: int, frames: int, per_video: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """`(batch, per_video)` frame indices in [0, frames) for the frame critic, distinct within a video
    when per_video ≤ frames; the real and generated videos are scored at the same indices."""
    if per_video <= frames:
        return torch.rand(batch, frames, generator=generator).argsort(dim=1)[:, :per_video]
    return torch.randint(frames, (batch, per_video), generator=generator)


class PairDiscriminator(nn.Module):
    """Do this (mouth-masked) video and this speech belong together? Per-frame scores (spec §2.6).

    video `(B, T, 3, 128, 128)` (already multiplied by the mouth mask), condition `(B, 3, 128, 128)`,
    speech `(B, L)` with ceil(L/320) ≥ T → raw LSGAN scores `(B, T)`.
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.speech_encoder = SpeechEncoder(width)
        half = scaled(256, width)
        self.speech_lstm = nn.LSTM(self.speech_encoder.out_dim, half, batch_first=True, bidirectional=True)
        self.image_encoder = ImageEncoder(6, width)
        self.image_lstm = nn.LSTM(self.image_encoder.out_dim, half, batch_first=True, bidirectional=True)
        self.fusion_lstm = nn.LSTM(4 * half, 2 * half, batch_first=True, bidirectional=True)
        self.score = nn.Linear(4 * half, 1)
        _xavier(self)

    def forward(self, video: torch.Tensor, condition: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        _, speech_frames = self.speech_encoder(speech)
        if speech_frames.shape[1] < t:
            raise ValueError(f"speech covers {speech_frames.shape[1]} frames, the video has {t}")
        speech_code, _ = self.speech_lstm(speech_frames[:, :t])
        pairs = torch.cat([video, condition[:, None].expand(-1, t, -1, -1, -1)], dim=2).flatten(0, 1)
        image_code, _ = self.image_lstm(self.image_encoder(pairs)[0].view(b, t, -1))
        fused, _ = self.fusion_lstm(torch.cat([speech_code, image_code], dim=2))
        return self.score(fused)[..., 0]
