"""Lip-sync error LSE-D / LSE-C: SyncNet (Chung & Zisserman 2016) distances between mouth and speech.

The network is the released SyncNet ("syncnet_v2.model", a plain state dict) rebuilt here with the same
module names, so that file loads into it key by key (`load_syncnet`). Its two streams embed

- five consecutive face frames, 224×224, BGR channel order, raw 0–255 values → `(B, 1024)`;
- 0.2 s of speech as 13 MFCCs × 20 steps (16 kHz, 25 ms windows every 10 ms) → `(B, 1024)`.

`lip_sync_error` scores a clip as talking-face papers do (Wav2Lip's evaluation of SyncNet): every
5-frame window is compared with the speech windows shifted by −15…+15 video frames; the Euclidean
distances, averaged over the clip, give one value per shift. LSE-D is the smallest of these (lower is
better synced), LSE-C the median minus the smallest (the confidence; higher is better), and the shift at
the minimum is the estimated audio-video offset in frames.

Our frames are face crops already, so they are resized to 224×224 whole; the official pipeline crops a
slightly wider box with its own detector, which shifts values a little.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16000
FPS = 25
WINDOW_FRAMES = 5
MFCC_STEPS_PER_FRAME = 4  # 100 MFCC steps per second / 25 fps
MFCC_WINDOW = 20  # 0.2 s
MAX_SHIFT = 15
FRAME_SIDE = 224
HOW_TO_GET = (
    "use the SyncNet weights released with syncnet_python (syncnet_v2.model, 54 MB) and pass its path "
    "(syncnet_weights)"
)


def _conv_stack(
    conv: type[nn.Module], norm: type[nn.Module], pool: type[nn.Module], layers: list
) -> nn.Sequential:
    """Conv → BatchNorm → ReLU (→ MaxPool) blocks from `(in, out, kernel, stride, padding, pool or None)`;
    the flat layer order matches the released state dict's indices."""
    modules: list[nn.Module] = []
    for channels_in, channels_out, kernel, stride, padding, pooling in layers:
        modules += [
            conv(channels_in, channels_out, kernel, stride, padding),
            norm(channels_out),
            nn.ReLU(inplace=True),
        ]
        if pooling is not None:
            modules.append(pool(*pooling))
    return nn.Sequential(*modules)


def _head() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Linear(512, 1024)
    )


class SyncNet(nn.Module):
    """Two-stream SyncNet: `speech (B, 1, 13, 20)` and `mouth (B, 3, 5, 224, 224)` → `(B, 1024)` each."""

    def __init__(self):
        super().__init__()
        self.netcnnaud = _conv_stack(
            nn.Conv2d,
            nn.BatchNorm2d,
            nn.MaxPool2d,
            [
                (1, 64, 3, 1, 1, ((1, 1), (1, 1))),
                (64, 192, 3, 1, 1, ((3, 3), (1, 2))),
                (192, 384, 3, 1, 1, None),
                (384, 256, 3, 1, 1, None),
                (256, 256, 3, 1, 1, ((3, 3), (2, 2))),
                (256, 512, (5, 4), 1, 0, None),
            ],
        )
        self.netfcaud = _head()
        self.netcnnlip = _conv_stack(
            nn.Conv3d,
            nn.BatchNorm3d,
            nn.MaxPool3d,
            [
                (3, 96, (5, 7, 7), (1, 2, 2), 0, ((1, 3, 3), (1, 2, 2))),
                (96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1), ((1, 3, 3), (1, 2, 2), (0, 1, 1))),
                (256, 256, (1, 3, 3), 1, (0, 1, 1), None),
                (256, 256, (1, 3, 3), 1, (0, 1, 1), None),
                (256, 256, (1, 3, 3), 1, (0, 1, 1), ((1, 3, 3), (1, 2, 2))),
                (256, 512, (1, 6, 6), 1, 0, None),
            ],
        )
        self.netfclip = _head()

    def embed_speech(self, mfcc: torch.Tensor) -> torch.Tensor:
        """`(B, 1, 13, 20)` MFCC windows → `(B, 1024)`."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def embed_mouth(self, frames: torch.Tensor) -> torch.Tensor:
        """`(B, 3, 5, 224, 224)` BGR 0–255 → `(B, 1024)`."""
        return self.netfclip(self.netcnnlip(frames).flatten(1))


def load_syncnet(weights: str | Path | None, allow_random: bool = False) -> SyncNet:
    """SyncNet in eval mode with the released weights at `weights` (checked key by key), or randomly
    initialised (seeded) when `allow_random` and no path is given (tests only: distances then mean
    nothing)."""
    from ..errors import WeightsError
    from ..pretrained.weights import read_state_dict

    if weights is None and not allow_random:
        raise WeightsError(f"LSE-C/LSE-D need SyncNet: {HOW_TO_GET}.")
    with torch.random.fork_rng(devices=[]):  # the random stand-in is the same in every process
        torch.manual_seed(0)
        network = SyncNet()
    if weights is not None:
        network.load_state_dict(read_state_dict(Path(weights), network, "SyncNet", HOW_TO_GET))
    return network.eval().requires_grad_(False)


def speech_mfcc(speech: np.ndarray) -> np.ndarray:
    """16 kHz speech `(L,)` float → `(13, L/160)` MFCCs at 100 steps/s (python_speech_features' defaults,
    which SyncNet was trained with)."""
    from python_speech_features import mfcc

    return mfcc(np.asarray(speech, dtype=np.float64), SAMPLE_RATE).T.astype(np.float32)


def mouth_frames(frames: np.ndarray) -> torch.Tensor:
    """`(T, H, W, 3)` uint8 RGB face crops → `(3, T, 224, 224)` float BGR 0–255, SyncNet's input."""
    video = torch.from_numpy(np.ascontiguousarray(frames[..., ::-1])).permute(0, 3, 1, 2).float()
    return F.interpolate(video, size=(FRAME_SIDE, FRAME_SIDE), mode="bilinear", align_corners=False).permute(
        1, 0, 2, 3
    )


@dataclass
class LipSyncScore:
    distance: float  # LSE-D: the smallest mean distance over shifts (lower is better)
    confidence: float  # LSE-C: median minus smallest mean distance (higher is better)
    offset: int  # video frames by which the speech is estimated to lead the video
    windows: int  # 5-frame windows scored


@torch.no_grad()
def lip_sync_error(
    network: SyncNet, frames: np.ndarray, speech: np.ndarray, batch_size: int = 20
) -> LipSyncScore:
    """LSE-D / LSE-C of one clip.

    Args:
        frames: `(T, H, W, 3)` uint8 RGB face crops at 25 fps; speech: `(L,)` float 16 kHz, aligned with
            frame 0.
    Raises:
        ValueError: fewer than 5 frames, or less than 0.2 s of speech, overlap (nothing to score).
    """
    cepstra = torch.from_numpy(speech_mfcc(speech))
    # As the reference evaluation: whole frames of speech (640 samples each) bound the clip; the MFCC
    # window of the last 5-frame window then still fits in the cepstra.
    windows = min(len(frames), len(speech) // (SAMPLE_RATE // FPS)) - WINDOW_FRAMES
    if windows < 1:
        raise ValueError(
            f"lip sync needs at least {WINDOW_FRAMES + 1} frames and 0.24 s of speech; got "
            f"{len(frames)} frames and {len(speech) / SAMPLE_RATE:.2f} s"
        )
    device = next(network.parameters()).device
    video = mouth_frames(frames[: windows + WINDOW_FRAMES - 1])
    mouth, voice = [], []
    for start in range(0, windows, batch_size):
        starts = range(start, min(windows, start + batch_size))
        clips = torch.stack([video[:, s : s + WINDOW_FRAMES] for s in starts]).to(device)
        steps = torch.stack(
            [
                cepstra[None, :, MFCC_STEPS_PER_FRAME * s : MFCC_STEPS_PER_FRAME * s + MFCC_WINDOW]
                for s in starts
            ]
        ).to(device)
        mouth.append(network.embed_mouth(clips).cpu())
        voice.append(network.embed_speech(steps).cpu())
    return score_shifts(torch.cat(mouth), torch.cat(voice))


def score_shifts(mouth: torch.Tensor, voice: torch.Tensor, max_shift: int = MAX_SHIFT) -> LipSyncScore:
    """Mean distance of `mouth` `(N, D)` window i to `voice` `(N, D)` window i + s, for s in ±`max_shift`
    (out-of-range voice windows are zeros, as in the reference evaluation) → the LSE scores."""
    padded = F.pad(voice, (0, 0, max_shift, max_shift))
    shifts = 2 * max_shift + 1
    # (N, shifts)
    distances = torch.stack(
        [
            F.pairwise_distance(mouth[i : i + 1].expand(shifts, -1), padded[i : i + shifts])
            for i in range(len(mouth))
        ]
    )
    mean = distances.mean(0)
    smallest, index = mean.min(0)
    return LipSyncScore(
        distance=float(smallest),
        confidence=float(mean.median() - smallest),
        offset=int(max_shift - index),
        windows=len(mouth),
    )
