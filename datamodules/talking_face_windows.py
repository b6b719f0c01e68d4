"""Talking-face training items and batches, made from cached clips.

`ClipWindows` is the Dataset: windows of `window_frames` consecutive frames of a cached clip (random in
training, from frame 0 in evaluation) with exactly their audio (`pipeline/sync.py`), landmarks, MFCC windows,
noisy speech and action-unit labels as configured; `clip_collate` pads them into a `TalkingFaceBatch`.
`to_unit_range` and `mfcc_windows` are the frame and MFCC conversions the systems reuse at inference.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from .base import randint, stack_items
from .noisy_speech import FixedNoise, RandomNoise
from .pipeline.cache import CachedItems
from .pipeline.face_tracks import mouth_centres
from .pipeline.sync import feature_window, frames_span, take


class TalkingFaceBatch(TypedDict, total=False):
    """A collated batch; T is the longest window in the batch, L its longest audio.

    video: `(B, T, 3, S, S)` float32 in [-1, 1]; audio: `(B, L)` float32 at the datamodule's sample rate,
    zero-padded, with audio_length `(B,)`; frame_mask `(B, T)` bool (False = padding);
    noisy_audio: `(B, L)` the same speech mixed with training noise (when `noise` is set);
    clean_audio: `(B, L)` the clean speech when `audio` is an evaluation mixture (`noisy_test_set`);
    landmarks: `(B, T, 68, 2)` float32 crop pixels; detected: `(B, T)` bool (a face was found in that frame);
    mouth_centre: `(B, T, 2)` mean of the mouth landmarks (x, y), clip median where undetected;
    mfcc: `(B, T, 12, W)` standardised MFCC window per frame (when enabled); speaker: `(B,)` int64 index
    among the split's speakers (-1 when the dataset has no speaker labels); first_frame: `(B,)` int64;
    identity: `(B, 3, S, S)` the clip's frame 0 (also for windows that start later);
    au: `(B, T, 5)` float32 0/1 action-unit labels (AU10, 14, 20, 25, 26) and au_mask `(B, T)` bool
    (False = no valid label), when `au_labels` is set.
    """

    video: torch.Tensor
    audio: torch.Tensor
    noisy_audio: torch.Tensor
    clean_audio: torch.Tensor
    audio_length: torch.Tensor
    frame_mask: torch.Tensor
    landmarks: torch.Tensor
    detected: torch.Tensor
    mouth_centre: torch.Tensor
    mfcc: torch.Tensor
    speaker: torch.Tensor
    first_frame: torch.Tensor
    identity: torch.Tensor
    au: torch.Tensor
    au_mask: torch.Tensor


def mfcc_windows(
    features: np.ndarray, stats: tuple[np.ndarray, np.ndarray], frames: range, fps: Fraction, width: int
) -> np.ndarray:
    """`(len(frames), 12, width)` float32: per video frame the `width` standardised MFCC columns centred
    on it (`sync.feature_window`), zero (= the training mean) outside the utterance.

    `features` `(N, 12)` unstandardised at 100 Hz; `stats` the training set's (mean, std) per coefficient.
    """
    mean, std = stats
    standard = (np.asarray(features, dtype=np.float32) - mean) / std
    return np.stack([take(standard, *feature_window(k, fps, width)).T for k in frames]).astype(np.float32)


def to_unit_range(frames: np.ndarray) -> torch.Tensor:
    """`(T, S, S, 3)` uint8 → `(T, 3, S, S)` float32 in [-1, 1]."""
    return torch.from_numpy(np.asarray(frames, dtype=np.float32)).permute(0, 3, 1, 2) / 127.5 - 1.0


class ClipWindows(Dataset):
    """Windows of `window_frames` frames (whole clips when None) with their audio and annotations.

    `noise` (`noisy_speech.RandomNoise` or `FixedNoise`) adds a noisy mixture of each window's speech.
    `window(meta, arrays)` makes the item of any cached clip (streamed ones too: `items` None, no rows).
    """

    def __init__(
        self,
        items: CachedItems | None,
        rows: list[int],
        speakers: list[str],
        sample_rate: int,
        window_frames: int | None,
        random_start: bool,
        mfcc_width: int = 0,
        mfcc_stats: tuple[np.ndarray, np.ndarray] | None = None,
        noise: RandomNoise | FixedNoise | None = None,
        au_labels: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
    ):
        self.items, self.rows, self.sample_rate = items, rows, sample_rate
        self.speaker_index = {name: i for i, name in enumerate(speakers)}
        self.window_frames, self.random_start = window_frames, random_start
        self.mfcc_width, self.mfcc_stats = mfcc_width, mfcc_stats
        self.noise = noise
        self.au_labels = au_labels

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        return self.window(*self.items[row], au=None if self.au_labels is None else self.au_labels[row])

    def window(
        self, meta: dict, arrays: dict[str, np.ndarray], au: tuple[np.ndarray, np.ndarray] | None = None
    ) -> dict:
        """One clip's item; `au` its (labels, valid) per frame when AU labels are on."""
        total, fps = meta["frames"], Fraction(meta["fps"])
        count = min(self.window_frames or total, total)
        first = randint(total - count + 1) if self.random_start else 0
        start, stop = frames_span(first, count, fps, self.sample_rate)
        item = {
            "video": to_unit_range(arrays["frames"][first : first + count]),
            "identity": to_unit_range(arrays["frames"][:1])[0],
            "audio": torch.from_numpy(np.array(arrays["audio"][start:stop], dtype=np.float32)),
            "detected": torch.from_numpy(np.array(arrays["detected"][first : first + count])),
            "speaker": self.speaker_index.get(meta["speaker"], -1),
            "first_frame": first,
        }
        if "landmarks" in arrays:
            item["landmarks"] = torch.from_numpy(np.array(arrays["landmarks"][first : first + count]))
            size = item["video"].shape[-1]
            centres = mouth_centres(item["landmarks"].numpy(), item["detected"].numpy(), size)
            item["mouth_centre"] = torch.from_numpy(centres)
        if self.noise is not None:
            mixture = self.noise(item["audio"].numpy(), meta["key"])
            if self.noise.target == "audio":
                item["clean_audio"] = item["audio"]
            item[self.noise.target] = torch.from_numpy(np.asarray(mixture, dtype=np.float32))
        if self.mfcc_width and "mfcc" in arrays:
            windows = mfcc_windows(
                arrays["mfcc"], self.mfcc_stats, range(first, first + count), fps, self.mfcc_width
            )
            item["mfcc"] = torch.from_numpy(windows)
        if au is not None:
            labels, valid = au
            item["au"] = torch.from_numpy(labels[first : first + count].astype(np.float32))
            item["au_mask"] = torch.from_numpy(valid[first : first + count].copy())
        return item


def clip_collate(items: list[dict]) -> TalkingFaceBatch:
    """Pad every per-frame tensor to the longest window (with `frame_mask`) and audio to the longest."""
    lengths = [len(item["video"]) for item in items]
    longest = max(lengths)
    per_frame = ("video", "detected", "landmarks", "mouth_centre", "mfcc", "au", "au_mask")
    waves = ("audio", "noisy_audio", "clean_audio")
    batch = stack_items(items, exclude=per_frame + waves)
    for key in per_frame:
        if key in items[0]:
            batch[key] = torch.stack([_pad(item[key], longest) for item in items])
    batch["frame_mask"] = torch.arange(longest)[None] < torch.tensor(lengths)[:, None]
    batch["audio_length"] = torch.tensor([len(item["audio"]) for item in items])
    for key in waves:
        if key in items[0]:
            batch[key] = torch.stack([_pad(item[key], int(batch["audio_length"].max())) for item in items])
    return batch


def _pad(tensor: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - len(tensor)
    return tensor if missing == 0 else torch.cat([tensor, tensor.new_zeros(missing, *tensor.shape[1:])])
