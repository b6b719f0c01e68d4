"""The batched half of every training pipeline: what is done to whole batches on the training device.

Training loaders only slice and copy from the memory-mapped caches (each dataset's `load_batch`): frames
and faces arrive as uint8, speech as int16 PCM, a noisy mixture as its noise segment and SNR. The
per-pixel and per-sample arithmetic happens here, once per batch, after Lightning has moved the batch to
the device (`CachedDataModule.on_after_batch_transfer`); on the CPU in tests and when a loader is
iterated by hand.
On a GPU this costs a few kernels per batch instead of per-sample Python work in the loader workers, and
uint8 and int16 cross the bus instead of float32 (4× and 2× fewer bytes).

Each function computes what the per-sample path computes (`talking_face_windows.to_unit_range`,
`noise_mixing.mix_at_snr` + `peak_normalise`, `face_speech.emphasise`, `voice_face.normalise_face`),
in the same precision, so a batch is the same whichever path made it (`tests/datamodules/
test_device_transforms.py` compares them on every system's demo batches).
"""

from __future__ import annotations

import torch

from .pipeline.audio import PCM16_SCALE
from .pipeline.images import IMAGENET_MEAN, IMAGENET_STD


def frames_to_unit_range(frames: torch.Tensor) -> torch.Tensor:
    """`(..., S, S, 3)` uint8 → `(..., 3, S, S)` float32 in [-1, 1]."""
    return frames.movedim(-1, -3).float() / 127.5 - 1.0


def faces_to_unit_range(faces: torch.Tensor) -> torch.Tensor:
    """`(B, 3, S, S)` uint8 → float32 in [-1, 1]."""
    return faces.float() / 127.5 - 1.0


def imagenet_normalised(faces: torch.Tensor) -> torch.Tensor:
    """`(B, 3, S, S)` uint8 → float32 normalised with ImageNet's channel mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, device=faces.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=faces.device).view(3, 1, 1)
    return (faces.float() / 255.0 - mean) / std


def speech_to_float(speech: torch.Tensor) -> torch.Tensor:
    """Speech as caches store it (int16 PCM; float32 in older caches) → float32 in [-1, 1]."""
    return speech.float() / PCM16_SCALE if speech.dtype == torch.int16 else speech


def mix_at_snr(speech: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """Per row `speech + k·noise` at exactly `snr_db`, then peak-normalised, as float32.

    speech, noise: `(B, L)`, zero past each row's length (zeros add nothing to the powers or the peak, so
    padded rows mix as their unpadded selves); snr_db: `(B,)`. The powers and the gain are float64, as in
    `pipeline/noise_mixing.py`; a silent speech row gets k = 0.
    """
    speech64, noise64 = speech.double(), noise.double()
    ratio = 10.0 ** (snr_db.double() / 10.0)
    gain = torch.sqrt(speech64.square().sum(1) / (noise64.square().sum(1) * ratio).clamp_min(1e-300))
    mixture = (speech64 + gain[:, None] * noise64).float()
    peak = mixture.abs().amax(1, keepdim=True).double()
    return torch.where(peak > 0, mixture.double() / peak.clamp_min(1e-300), mixture.double()).float()


def emphasise(wave: torch.Tensor, coefficient: float, emphasis_first: bool) -> torch.Tensor:
    """Per row: pre-emphasis y[n] = x[n] − c·x[n−1] and peak normalisation, in the order asked.

    wave: `(B, T)` float32 → `(B, T)` float32.
    """

    def peak(x: torch.Tensor) -> torch.Tensor:
        return x / (x.abs().amax(1, keepdim=True) + 1e-8)

    def emphasis(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :1], x[:, 1:] - coefficient * x[:, :-1]], dim=1)

    return peak(emphasis(wave)) if emphasis_first else emphasis(peak(wave))
