"""E2E-NR networks (docs/e2e_nr.md): the generator G and the critics D_F and D_P, as plain `nn.Module`s.

G turns one face and raw 8 kHz speech (plus per-frame noise z) into a 128-px video at 25 fps. Per frame,
speech vectors (`SpeechEncoder` → 2 × LSTM: z_s), the face's identity code (`ImageEncoder`: z_i, once per
clip) and encoded noise (`NoiseEncoder`: z_n) are concatenated, and a U-Net decoder with a ConvLSTM
(`FrameDecoder`) turns them, with the face encoder's skips, into an RGB frame.

T = ceil(L / 320): one frame per 40 ms. Every temporal module of G is causal (unidirectional recurrences), and
frame t hears samples [320t − 1435, 320t + 1435] only, so G can stream long audio chunk by chunk
(`Generator.stream`) with the same result as one pass.

`width` scales every hidden width (conv channels, the 16-channel speech features, the 512-d codes, LSTM and
FC sizes) but never the 3-channel image or the 1-d scores; width 1.0 is the paper's size (G 32,715,123,
D_F 68,702,593, D_P 19,978,193 parameters; tested), narrower widths give CPU-sized models of the same
structure.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..common.chunking import widened_chunks

__all__ = [
    "SpeechEncoder",
    "SpeechEncoding",
    "ImageEncoder",
    "NoiseEncoder",
    "ConvLSTM",
    "SkipConvUp",
    "FrameDecoder",
    "Generator",
    "GeneratorOutput",
    "FrameDiscriminator",
    "PairDiscriminator",
    "sample_frame_indices",
    "init_weights",
    "num_frames",
    "scaled",
]

SAMPLE_RATE = 8000
SAMPLES_PER_FRAME = 320  # 40 ms at 8 kHz, i.e. 25 fps
IMAGE_SIZE = 128  # the image encoder's five halvings plus a 4×4 valid conv need exactly 128 px
SLOPE = 0.2  # LeakyReLU slope everywhere (the authors' follow-up code; the paper names none)

# Speech encoder: (out channels, kernel, stride) of the five convs; total stride 64 (8 ms per step).
SPEECH_CONVS = ((64, 63, 4), (128, 31, 4), (256, 17, 2), (512, 9, 2), (16, 1, 1))
SPEECH_DIM = 512
CONTEXT = 17  # ±17 conv steps (±136 ms) are stacked around each kept step
KEEP_EVERY = SAMPLES_PER_FRAME // 64  # 5 conv steps per video frame
# Samples either side of sample 320t that frame t depends on: the conv stack's ±347 plus 17 steps × 64.
RECEPTIVE_HALF_WIDTH = 1435
# Frames of audio context a chunk needs on each side in `Generator.stream`: ceil(1435 / 320).
STREAM_MARGIN_FRAMES = math.ceil(RECEPTIVE_HALF_WIDTH / SAMPLES_PER_FRAME)

IMAGE_CHANNELS = (64, 128, 256, 512, 512)  # e1-e5, each followed by the re-injected image
IMAGE_DIM = 512  # e6 → z_i
NOISE_DIM = 128
DECODER_CHANNELS = (512, 256, 128, 64, 32)  # fc reshape and d1-d5; d4 is the ConvLSTM
# D_F's f1-f5: (channels, stride) of 3×3 convs with zero padding 1.
FRAME_D_LAYERS = ((64, 1), (64, 2), (128, 2), (256, 2), (512, 2))
FRAME_D_HIDDEN = 2048
PAIR_D_HALF = 256  # each direction of D_P's speech and image BLSTMs
PAIR_D_FUSION = 512  # each direction of the fusion BLSTM


def scaled(channels: int, width: float) -> int:
    """A hidden width times `width`, at least 1."""
    return max(1, round(channels * width))


def num_frames(num_samples: int) -> int:
    """Video frames for `num_samples` of 8 kHz speech: ceil(L / 320), the same as ceil-dividing L by 4, 4, 2,
    2 and 5 in turn (the conv strides, then every 5th step)."""
    return -(-num_samples // SAMPLES_PER_FRAME)


def init_weights(module: nn.Module) -> None:
    """xavier_uniform_ on every Conv1d, Conv2d and Linear weight below `module`; biases and LSTMs keep
    PyTorch's defaults."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)


def _waveform(speech: torch.Tensor) -> torch.Tensor:
    """`(B, L)` or `(B, 1, L)` → `(B, L)`, at least one frame long."""
    if speech.dim() == 3 and speech.shape[1] == 1:
        speech = speech[:, 0]
    if speech.dim() != 2:
        raise ValueError(f"speech must be (B, L) or (B, 1, L), got shape {tuple(speech.shape)}")
    if speech.shape[1] < SAMPLES_PER_FRAME:
        raise ValueError(
            f"speech has {speech.shape[1]} samples, shorter than one 40-ms frame "
            f"({SAMPLES_PER_FRAME} samples at {SAMPLE_RATE} Hz)"
        )
    return speech


def _pad_to_frames(speech: torch.Tensor) -> torch.Tensor:
    """Right-pad `(B, L)` with zeros to 320·ceil(L/320) samples (our default; the paper does not say)."""
    return F.pad(speech, (0, num_frames(speech.shape[1]) * SAMPLES_PER_FRAME - speech.shape[1]))


def _check_images(images: torch.Tensor, channels: int, name: str) -> None:
    if images.dim() != 4 or tuple(images.shape[1:]) != (channels, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"{name} must be (N, {channels}, {IMAGE_SIZE}, {IMAGE_SIZE}) (E2E-NR works on "
            f"{IMAGE_SIZE}-px aligned faces), got shape {tuple(images.shape)}"
        )


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


# ----------------------------------------------------------------------------- encoders


class SpeechEncoding(NamedTuple):
    """features: f `(B, C, 5T)`, the conv stack's output (C = 16 at width 1; the NR loss compares these);
    frames: `(B, T, D)` per-frame vectors after the context FC (D = 512 at width 1)."""

    features: torch.Tensor
    frames: torch.Tensor


class SpeechEncoder(nn.Module):
    """Raw speech → per-frame vectors: `(B, L)` or `(B, 1, L)` → `SpeechEncoding`, T = ceil(L / 320).

    Five reflection-padded convs with LeakyReLU take the waveform to one C-channel vector per 8 ms (f). Each
    kept step (every 5th, i.e. the start of each 40-ms frame) is concatenated with its ±17 neighbours
    (time-major, zeros beyond the signal) and projected by Linear(35·C → D) + LeakyReLU.

    The waveform is first right-padded with zeros to a multiple of 320, so f has exactly 5T steps; frame T−1
    starts inside the real signal, so no frame comes from padding alone. Frame t depends on samples
    [320t − 1435, 320t + 1435] only. The temporal LSTMs are not here: they belong to the generator.
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for out, kernel, stride in SPEECH_CONVS:
            out = scaled(out, width)
            # (k − 1)/2 reflection padding on each side: with odd k, a stride-s conv gives ceil(L / s) steps.
            layers += [
                nn.ReflectionPad1d(kernel // 2),
                nn.Conv1d(channels, out, kernel, stride),
                nn.LeakyReLU(SLOPE),
            ]
            channels = out
        self.convs = nn.Sequential(*layers)
        self.feature_channels = channels
        self.out_dim = scaled(SPEECH_DIM, width)
        self.fc = nn.Sequential(nn.Linear((2 * CONTEXT + 1) * channels, self.out_dim), nn.LeakyReLU(SLOPE))
        init_weights(self)

    def conv_features(self, speech: torch.Tensor) -> torch.Tensor:
        """`(B, L)` or `(B, 1, L)` → f `(B, C, 5T)`."""
        return self.convs(_pad_to_frames(_waveform(speech))[:, None])

    def frame_vectors(self, features: torch.Tensor) -> torch.Tensor:
        """f `(B, C, 5T)` → `(B, T, D)`: a 35-step window around every 5th step, then the FC."""
        padded = F.pad(features, (CONTEXT, CONTEXT))  # zeros (the follow-up code: tiny noise)
        windows = padded.unfold(2, 2 * CONTEXT + 1, KEEP_EVERY)  # (B, C, T, 35); window t centred on step 5t
        stacked = windows.permute(0, 2, 3, 1).flatten(2)  # (B, T, 35·C): step t−17's C values first
        return self.fc(stacked)

    def forward(self, speech: torch.Tensor) -> SpeechEncoding:
        features = self.conv_features(speech)
        return SpeechEncoding(features, self.frame_vectors(features))


class ImageEncoder(nn.Module):
    """A face (or face pair) → identity code and U-Net skips, the input re-injected at every scale.

    `(B, C_in, 128, 128)` → z `(B, 512)` and skips at 64, 32, 16, 8, 4 px with (64, 128, 256, 512, 512) + C_in
    channels; the last C_in channels of each skip are the input, nearest-downsampled to that size.

    The paper's "conv k3 s1 (reflection pad 1), then nearest ×½" keeps the conv outputs at even positions,
    which is exactly what a stride-2 conv with the same padding computes; the strided conv is used here at a
    quarter of the cost. Nearest ×½ᵏ of the input is likewise the slice `[::2ᵏ, ::2ᵏ]`.
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        self.in_channels = in_channels
        self.downs = nn.ModuleList()
        self.skip_channels: list[int] = []
        channels = in_channels
        for out in IMAGE_CHANNELS:
            out = scaled(out, width)
            self.downs.append(
                nn.Sequential(
                    nn.ReflectionPad2d(1), nn.Conv2d(channels, out, 3, stride=2), nn.LeakyReLU(SLOPE)
                )
            )
            channels = out + in_channels
            self.skip_channels.append(channels)
        self.out_dim = scaled(IMAGE_DIM, width)
        self.last = nn.Sequential(nn.Conv2d(channels, self.out_dim, 4), nn.LeakyReLU(SLOPE))  # 4×4 → 1×1
        init_weights(self)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        _check_images(image, self.in_channels, "image")
        skips, h = [], image
        for level, down in enumerate(self.downs, start=1):
            step = 2**level
            h = torch.cat([down(h), image[:, :, ::step, ::step]], dim=1)
            skips.append(h)
        return self.last(h).flatten(1), skips


class NoiseEncoder(nn.Module):
    """Per-frame noise through one LSTM: z `(B, T, Z)` ~ N(0, I) → z_n `(B, T, Z)`, Z = 128 at width 1.

    `draw` samples z (optionally from a `torch.Generator`, for reproducible videos); `forward` takes an
    explicit z and an optional LSTM state, so a long video can be generated in pieces.
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.dim = scaled(NOISE_DIM, width)
        self.lstm = nn.LSTM(self.dim, self.dim, batch_first=True)

    def draw(
        self,
        batch: int,
        frames: int,
        generator: torch.Generator | None = None,
        like: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """z `(batch, frames, Z)`, drawn on the generator's device, returned on `like`'s device and dtype."""
        device = generator.device if generator is not None else (like.device if like is not None else None)
        z = torch.randn(batch, frames, self.dim, generator=generator, device=device)
        return z if like is None else z.to(like)

    def forward(self, z: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """→ (z_n `(B, T, Z)`, the LSTM's final (h, c))."""
        return self.lstm(z, state)


# ----------------------------------------------------------------------------- decoder


class ConvLSTM(nn.Module):
    """A convolutional LSTM layer, unidirectional, zero initial state (our form: the paper does not give it).

    One k×k conv (zero padding k//2, one bias) over cat(x_t, shared, h_{t−1}) gives the gates i, f, g, o;
    c_t = σ(f)·c_{t−1} + σ(i)·tanh(g), h_t = σ(o)·tanh(c_t); the output is h_t with no extra activation.

    x `(B, T, C_x, H, W)`, optional `shared` `(B, C_s, H, W)` that is the same at every step (the decoder's
    skip), optional state (h, c) → (h_1…h_T `(B, T, hidden, H, W)`, final (h, c)). The conv is linear in its
    input channels, so the x and shared parts of the gates are computed for all steps at once (the shared part
    once per clip), and only the h_{t−1} part runs step by step: the same numbers as one conv on the
    concatenation, without recomputing the constant part T times.
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.in_channels, self.hidden = in_channels, hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(
        self,
        x: torch.Tensor,
        shared: torch.Tensor | None = None,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        b, t, c_x = x.shape[:3]
        c_s = 0 if shared is None else shared.shape[1]
        if c_x + c_s != self.in_channels:
            raise ValueError(f"ConvLSTM expects {self.in_channels} input channels, got {c_x} + {c_s}")
        w_x, w_s, w_h = self.gates.weight.split([c_x, c_s, self.hidden], dim=1)
        padding = self.gates.padding
        inputs = F.conv2d(x.flatten(0, 1), w_x, self.gates.bias, padding=padding).unflatten(0, (b, t))
        if shared is not None:
            inputs = inputs + F.conv2d(shared, w_s, padding=padding)[:, None]
        if state is None:  # zero state: its conv contributes nothing, so step 0 skips it
            h = c = x.new_zeros(b, self.hidden, *x.shape[3:])
            recurrent = None
        else:
            h, c = state
            recurrent = F.conv2d(h, w_h, padding=padding)
        outputs = []
        for step in range(t):
            gates = inputs[:, step] if recurrent is None else inputs[:, step] + recurrent
            # Channel-contiguous (NCHW) before splitting: a chunk of a channels-last tensor is strided in its
            # innermost dimension, and the gate arithmetic on it runs many times slower.
            i, f, g, o = gates.contiguous().chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
            recurrent = F.conv2d(h, w_h, padding=padding) if step + 1 < t else None
        return torch.stack(outputs, dim=1), (h, c)


class SkipConvUp(nn.Module):
    """One frame-wise decoder layer: reflection pad 1, 3×3 conv over cat(h, skip), LeakyReLU, ↑2.

    h `(B·T, C_h, S, S)` (frames of a clip consecutive), skip `(B, C_s, S, S)` shared by the T frames of its
    clip → `(B·T, out, 2S, 2S)`. The skip's share of the conv is computed once per clip and broadcast over the
    frames, which equals convolving T copies of cat(h, skip) (convolution is linear in its input channels).
    """

    def __init__(self, h_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.h_channels = h_channels
        self.conv = nn.Conv2d(h_channels + skip_channels, out_channels, 3)

    def forward(self, h: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        w_h, w_s = self.conv.weight.split([self.h_channels, self.conv.in_channels - self.h_channels], dim=1)
        own = F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), w_h)
        common = F.conv2d(F.pad(skip, (1, 1, 1, 1), mode="reflect"), w_s, self.conv.bias)
        out = own.unflatten(0, (skip.shape[0], -1)) + common[:, None]
        return _up(F.leaky_relu(out.flatten(0, 1), SLOPE))


class FrameDecoder(nn.Module):
    """Per-frame codes + the face's skips → frames.

    code `(B, T, D)` = cat(z_s, z_i, z_n), skips [e1 … e5] of `ImageEncoder` (one per clip), optional
    ConvLSTM state → (video `(B, T, 3, 128, 128)` in [-1, 1], ConvLSTM state). FC → 512×4×4; d1-d3 conv + ↑2
    (→ 512×8², 256×16², 128×32²); d4 a ConvLSTM over time (64×32², then ↑2 → 64×64²); d5 conv + ↑2
    (32×128²); d6 conv k3 + tanh to RGB. Each of d1-d5 first concatenates the encoder output of its size
    (e5 … e1); d6 gets no skip.
    """

    def __init__(self, code_dim: int, skip_channels: list[int], width: float = 1.0):
        super().__init__()
        widths = [scaled(c, width) for c in DECODER_CHANNELS]
        self.base = widths[0]
        self.fc = nn.Sequential(nn.Linear(code_dim, self.base * 4 * 4), nn.LeakyReLU(SLOPE))
        skip_4, skip_8, skip_16, skip_32, skip_64 = skip_channels[::-1]
        self.d1 = SkipConvUp(widths[0], skip_4, widths[0])
        self.d2 = SkipConvUp(widths[0], skip_8, widths[1])
        self.d3 = SkipConvUp(widths[1], skip_16, widths[2])
        self.d4 = ConvLSTM(widths[2] + skip_32, widths[3])
        self.d5 = SkipConvUp(widths[3], skip_64, widths[4])
        self.d6 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(widths[4], 3, 3), nn.Tanh())
        init_weights(self)

    def forward(
        self,
        code: torch.Tensor,
        skips: list[torch.Tensor],
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        b, t = code.shape[:2]
        e1, e2, e3, e4, e5 = skips
        h = self.fc(code.flatten(0, 1)).view(b * t, self.base, 4, 4)  # every frame of every clip: (B·T, …)
        h = self.d3(self.d2(self.d1(h, e5), e4), e3)  # (B·T, 128, 32, 32)
        h, state = self.d4(h.unflatten(0, (b, t)), e2, state)  # over time: (B, T, 64, 32, 32)
        h = self.d5(_up(h.flatten(0, 1)), e1)  # (B·T, 32, 128, 128)
        return self.d6(h).view(b, t, 3, IMAGE_SIZE, IMAGE_SIZE), state


# ----------------------------------------------------------------------------- generator


class GeneratorOutput(NamedTuple):
    """video `(B, T, 3, 128, 128)` in [-1, 1]; speech_features f `(B, C, 5T)` (conv stack, the NR loss's
    default input); frame_features `(B, T, D)` (after the context FC, before the LSTMs; the "fc" option)."""

    video: torch.Tensor
    speech_features: torch.Tensor
    frame_features: torch.Tensor


class Generator(nn.Module):
    """G: condition face `(B, 3, 128, 128)` in [-1, 1] + speech `(B, L)` / `(B, 1, L)` → video.

    Submodules: `speech_encoder` (convs + context FC), `speech_lstm` (2 × LSTM 512, unidirectional),
    `image_encoder`, `noise_encoder`, `decoder`.
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.width = width
        self.speech_encoder = SpeechEncoder(width)
        speech_dim = self.speech_encoder.out_dim
        self.speech_lstm = nn.LSTM(speech_dim, speech_dim, num_layers=2, batch_first=True)
        self.image_encoder = ImageEncoder(3, width)
        self.noise_encoder = NoiseEncoder(width)
        code_dim = speech_dim + self.image_encoder.out_dim + self.noise_encoder.dim
        self.decoder = FrameDecoder(code_dim, self.image_encoder.skip_channels, width)

    @property
    def noise_dim(self) -> int:
        return self.noise_encoder.dim

    def forward(
        self,
        condition: torch.Tensor,
        speech: torch.Tensor,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> GeneratorOutput:
        """T = ceil(L / 320). `noise`: z `(B, T, Z)`; if None, z is drawn (from `generator` when given).
        The clean and noisy passes of NR training should share one z."""
        speech = self._check_inputs(condition, speech)
        encoding = self.speech_encoder(speech)
        z = self._noise(noise, generator, *encoding.frames.shape[:2], like=encoding.frames)
        identity, skips = self.image_encoder(condition)
        video, _ = self._decode(identity, skips, encoding.frames, z, None)
        return GeneratorOutput(video, encoding.features, encoding.frames)

    @torch.no_grad()
    def stream(
        self,
        condition: torch.Tensor,
        speech: torch.Tensor,
        chunk_frames: int = 250,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> Iterator[torch.Tensor]:
        """The video of `forward` (same z), made and handed over `chunk_frames` frames at a time, so that
        memory stays bounded whatever the length: chunks `(B, t, 3, 128, 128)`.

        Chunk [a, b) encodes the audio of frames [a − 5, b + 5) (clipped to the clip): frame t needs samples
        [320t − 1435, 320t + 1435] and 5 × 320 ≥ 1435, so the chunk's frames see exactly the audio, and the
        same conv-boundary handling, as in one pass. The speech LSTMs, noise LSTM and ConvLSTM carry their
        states from chunk to chunk; the face is encoded once.
        """
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be positive, got {chunk_frames}")
        speech = _pad_to_frames(self._check_inputs(condition, speech))
        total = speech.shape[1] // SAMPLES_PER_FRAME
        z = self._noise(noise, generator, speech.shape[0], total, like=speech)
        identity, skips = self.image_encoder(condition)
        state = None
        chunks = widened_chunks(total, chunk_frames, STREAM_MARGIN_FRAMES)
        bar = tqdm(
            chunks,
            total=math.ceil(total / chunk_frames),
            desc="generating",
            unit="chunk",
            disable=not progress,
        )
        for start, stop, first, last in bar:
            window = speech[:, first * SAMPLES_PER_FRAME : last * SAMPLES_PER_FRAME]
            frames = self.speech_encoder(window).frames[:, start - first : stop - first]
            video, state = self._decode(identity, skips, frames, z[:, start:stop], state)
            yield video

    def _check_inputs(self, condition: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        _check_images(condition, 3, "condition")
        speech = _waveform(speech)
        if speech.shape[0] != condition.shape[0]:
            raise ValueError(f"condition has batch {condition.shape[0]}, speech has batch {speech.shape[0]}")
        return speech

    def _noise(
        self,
        noise: torch.Tensor | None,
        generator: torch.Generator | None,
        batch: int,
        frames: int,
        like: torch.Tensor,
    ) -> torch.Tensor:
        """z `(batch, frames, Z)` on `like`'s device and dtype: the given one (checked), or a fresh draw."""
        if noise is None:
            return self.noise_encoder.draw(batch, frames, generator, like=like)
        if generator is not None:
            raise ValueError("pass either noise or generator, not both")
        expected = (batch, frames, self.noise_dim)
        if tuple(noise.shape) != expected:
            raise ValueError(f"noise must be (B, T, {self.noise_dim}) = {expected}, got {tuple(noise.shape)}")
        return noise.to(like)

    def _decode(self, identity, skips, frames, z, state):
        """Per-frame speech vectors and z of T frames → (video, the three recurrent states to carry on)."""
        speech_state, noise_state, decoder_state = state or (None, None, None)
        z_s, speech_state = self.speech_lstm(frames, speech_state)
        z_n, noise_state = self.noise_encoder(z, noise_state)
        code = torch.cat([z_s, identity[:, None].expand(-1, frames.shape[1], -1), z_n], dim=2)
        video, decoder_state = self.decoder(code, skips, decoder_state)
        return video, (speech_state, noise_state, decoder_state)


# ----------------------------------------------------------------------------- critics


class FrameDiscriminator(nn.Module):
    """D_F: is this frame real, given the condition face?

    frames `(N, 3, 128, 128)` + condition `(N, 3, 128, 128)` → scores `(N, 1)`: five zero-padded 3×3 convs
    (strides 1, 2, 2, 2, 2) to 512×8×8, then FC 32768 → 2048 → 1. The score is raw (LSGAN); `sigmoid=True`
    turns it into the paper's "probability". Frames are not mouth-masked.
    """

    def __init__(self, width: float = 1.0, sigmoid: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 6
        for out, stride in FRAME_D_LAYERS:
            out = scaled(out, width)
            layers += [nn.Conv2d(channels, out, 3, stride, padding=1), nn.LeakyReLU(SLOPE)]
            channels = out
        self.convs = nn.Sequential(*layers)
        side = IMAGE_SIZE // 16  # four stride-2 layers
        hidden = scaled(FRAME_D_HIDDEN, width)
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * side * side, hidden), nn.LeakyReLU(SLOPE), nn.Linear(hidden, 1)
        )
        self.sigmoid = sigmoid
        init_weights(self)

    def forward(self, frames: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        _check_images(frames, 3, "frames")
        _check_images(condition, 3, "condition")
        if frames.shape[0] != condition.shape[0]:
            raise ValueError(f"{frames.shape[0]} frames but {condition.shape[0]} condition images")
        score = self.fc(self.convs(torch.cat([frames, condition], dim=1)))
        return torch.sigmoid(score) if self.sigmoid else score


def sample_frame_indices(
    batch: int, frames: int, per_video: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Frame indices for D_F: `(batch, per_video)` long tensor in [0, frames).

    `per_video` defaults to the batch size (the paper: B frames per video, B·B per step). Indices are distinct
    within a video when per_video ≤ frames, drawn with replacement otherwise. Index the real and the generated
    videos with the same tensor.
    """
    per_video = batch if per_video is None else per_video
    if batch < 1 or frames < 1 or per_video < 1:
        raise ValueError(f"batch, frames and per_video must be positive, got {batch}, {frames}, {per_video}")
    if per_video <= frames:
        return torch.rand(batch, frames, generator=generator).argsort(dim=1)[:, :per_video]
    return torch.randint(frames, (batch, per_video), generator=generator)


class PairDiscriminator(nn.Module):
    """D_P: do this mouth-masked video and this speech belong together? One score per frame.

    video `(B, T, 3, 128, 128)` (already multiplied by the mouth mask M), condition `(B, 3, 128, 128)`, speech
    `(B, L)` or `(B, 1, L)` with ceil(L / 320) ≥ T (extra frames are dropped) → raw scores `(B, T)`.
    Speech: its own `SpeechEncoder` → BLSTM (256 per direction). Frames: cat(frame, condition) → an
    `ImageEncoder` with 6 input channels → BLSTM (256 per direction). Fusion: cat → BLSTM (512 per direction)
    → Linear(1024 → 1).
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        half, fusion = scaled(PAIR_D_HALF, width), scaled(PAIR_D_FUSION, width)
        self.speech_encoder = SpeechEncoder(width)
        self.speech_lstm = nn.LSTM(self.speech_encoder.out_dim, half, batch_first=True, bidirectional=True)
        self.image_encoder = ImageEncoder(6, width)
        self.image_lstm = nn.LSTM(self.image_encoder.out_dim, half, batch_first=True, bidirectional=True)
        self.fusion_lstm = nn.LSTM(4 * half, fusion, batch_first=True, bidirectional=True)
        self.score = nn.Linear(2 * fusion, 1)
        init_weights(self)

    def forward(self, video: torch.Tensor, condition: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5 or tuple(video.shape[2:]) != (3, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(
                f"video must be (B, T, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), got shape {tuple(video.shape)}"
            )
        b, t = video.shape[:2]
        _check_images(condition, 3, "condition")
        frames = self.speech_encoder(_waveform(speech)).frames
        if frames.shape[0] != b or condition.shape[0] != b:
            raise ValueError(
                f"batch sizes differ: video {b}, condition {condition.shape[0]}, speech {frames.shape[0]}"
            )
        if frames.shape[1] < t:
            raise ValueError(f"speech covers {frames.shape[1]} frames but the video has {t}")
        speech_code, _ = self.speech_lstm(frames[:, :t])
        pairs = torch.cat([video, condition[:, None].expand(-1, t, -1, -1, -1)], dim=2).flatten(0, 1)
        image_code, _ = self.image_lstm(self.image_encoder(pairs)[0].unflatten(0, (b, t)))
        fused, _ = self.fusion_lstm(torch.cat([speech_code, image_code], dim=2))
        return self.score(fused).squeeze(2)
