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
from .device_transforms import frames_to_unit_range, mix_at_snr, speech_to_float
from .noisy_speech import FixedNoise, RandomNoise
from .pipeline.audio import batchable_speech, stored_speech
from .pipeline.cache import CachedItems
from .pipeline.face_tracks import mouth_centres
from .pipeline.sync import feature_window, frames_span, take
from .resumable import BatchDraws


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


def mfcc_window_batch(
    features: np.ndarray, stats: tuple[np.ndarray, np.ndarray], first: int, count: int, fps: str, width: int
) -> np.ndarray:
    """`mfcc_windows` for frames `first … first + count − 1` in one gather (no Python loop per frame).

    Frame k's window starts at its centre column c_k − width // 2 with c_k = floor(100 (k + ½) / fps + ½)
    (`sync.feature_window`), computed in integers: with fps = p/q, c_k = (100 q (2k + 1) + p) // 2p.
    """
    mean, std = stats
    standard = (np.asarray(features, dtype=np.float32) - mean) / std
    rate = Fraction(fps)
    frames = np.arange(first, first + count, dtype=np.int64)
    centres = (100 * rate.denominator * (2 * frames + 1) + rate.numerator) // (2 * rate.numerator)
    columns = (centres - width // 2)[:, None] + np.arange(width)  # (count, width)
    inside = (columns >= 0) & (columns < len(standard))
    windows = standard[np.clip(columns, 0, max(len(standard) - 1, 0))] * inside[..., None]
    return windows.transpose(0, 2, 1).astype(np.float32)


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
        self,
        meta: dict,
        arrays: dict[str, np.ndarray],
        au: tuple[np.ndarray, np.ndarray] | None = None,
        first: int | None = None,
    ) -> dict:
        """One clip's item; `au` its (labels, valid) per frame when AU labels are on; the window starts at
        `first`, or where the dataset draws it."""
        total, fps = meta["frames"], Fraction(meta["fps"])
        count = min(self.window_frames or total, total)
        if first is None:
            first = randint(total - count + 1) if self.random_start else 0
        raw = self._slices(meta, arrays, first, count)
        item = {
            "video": to_unit_range(raw["video"]),
            "identity": to_unit_range(raw["identity"][None])[0],
            "audio": torch.from_numpy(stored_speech(raw["audio"])),
            "detected": torch.from_numpy(np.array(raw["detected"])),
            "speaker": self.speaker_index.get(meta["speaker"], -1),
            "first_frame": first,
        }
        if "landmarks" in raw:
            item["landmarks"] = torch.from_numpy(np.array(raw["landmarks"]))
            item["mouth_centre"] = torch.from_numpy(self._mouth_centres(raw))
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

    def _slices(self, meta: dict, arrays: dict[str, np.ndarray], first: int, count: int) -> dict:
        """Views of the cached arrays for frames `first … first + count − 1`: video `(T, S, S, 3)` uint8,
        identity `(S, S, 3)` uint8 (frame 0), audio `(L,)`, detected `(T,)`, landmarks `(T, 68, 2)`."""
        start, stop = frames_span(first, count, Fraction(meta["fps"]), self.sample_rate)
        raw = {
            "video": arrays["frames"][first : first + count],
            "identity": arrays["frames"][0],
            "audio": arrays["audio"][start:stop],
            "detected": arrays["detected"][first : first + count],
        }
        if "landmarks" in arrays:
            raw["landmarks"] = arrays["landmarks"][first : first + count]
        return raw

    @staticmethod
    def _mouth_centres(raw: dict) -> np.ndarray:
        size = raw["video"].shape[-2]
        return mouth_centres(np.asarray(raw["landmarks"]), np.asarray(raw["detected"]), size)

    def load_batch(self, indices: list[int], draws: BatchDraws) -> TalkingFaceBatch:
        """The training batch of `indices`, made in one call: window starts from `draws`, every array
        copied from the cache into one preallocated batch array. It is compact: `video (B, T, S, S, 3)`
        and `identity (B, S, S, 3)` stay uint8, `audio` stays as stored (int16 PCM), and with noise the
        batch holds the noise segment `noise (B, L)` and its `snr_db (B,)` instead of the mixture.
        `finish_batch` completes it on the training device into exactly what `clip_collate` of the items
        would be.
        """
        clips = [self.items[self.rows[index]] for index in indices]
        au = [None if self.au_labels is None else self.au_labels[self.rows[index]] for index in indices]
        totals = np.array([meta["frames"] for meta, _ in clips])
        counts = np.minimum(self.window_frames or totals, totals)
        firsts = draws.integers(totals - counts + 1, 0) if self.random_start else np.zeros_like(totals)
        raws = [
            self._slices(meta, arrays, int(first), int(count))
            for (meta, arrays), first, count in zip(clips, firsts, counts)
        ]
        batch = {
            "video": _padded([raw["video"] for raw in raws]),
            "identity": np.stack([raw["identity"] for raw in raws]),
            "audio": _padded(batchable_speech([raw["audio"] for raw in raws])),
            "detected": _padded([raw["detected"] for raw in raws]),
            "speaker": np.array([self.speaker_index.get(meta["speaker"], -1) for meta, _ in clips]),
            "first_frame": firsts.astype(np.int64),
            "frame_mask": np.arange(counts.max())[None] < counts[:, None],
            "audio_length": np.array([len(raw["audio"]) for raw in raws]),
        }
        if "landmarks" in raws[0]:
            batch["landmarks"] = _padded([raw["landmarks"] for raw in raws], np.float32)
            batch["mouth_centre"] = _padded([self._mouth_centres(raw) for raw in raws])
        if self.noise is not None:
            picks = [self.noise.pick(len(raw["audio"]), draws.generator(i, 1)) for i, raw in enumerate(raws)]
            batch["noise"] = _padded([noise for noise, _ in picks], np.float32)
            batch["snr_db"] = np.array([snr for _, snr in picks])
        if self.mfcc_width and "mfcc" in clips[0][1]:
            batch["mfcc"] = _padded(
                [
                    mfcc_window_batch(
                        arrays["mfcc"], self.mfcc_stats, int(f), int(c), meta["fps"], self.mfcc_width
                    )
                    for (meta, arrays), f, c in zip(clips, firsts, counts)
                ]
            )
        if self.au_labels is not None:
            batch["au"] = _padded(
                [labels[f : f + c].astype(np.float32) for (labels, _), f, c in zip(au, firsts, counts)]
            )
            batch["au_mask"] = _padded([valid[f : f + c] for (_, valid), f, c in zip(au, firsts, counts)])
        return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in batch.items()}


def finish_batch(batch: TalkingFaceBatch) -> TalkingFaceBatch:
    """Complete a `ClipWindows.load_batch` batch on its device (`device_transforms`): speech to float,
    frames to [-1, 1] (padding frames 0, as `clip_collate` pads), the noise mixed in at its SNR. A batch
    made item by item is returned as it is."""
    if "video" not in batch:  # a batch of another kind (A2V's latent windows), made finished
        return batch
    batch["audio"] = speech_to_float(batch["audio"])
    if batch["video"].dtype == torch.uint8:
        mask = batch["frame_mask"][..., None, None, None]
        batch["video"] = frames_to_unit_range(batch["video"]) * mask
        batch["identity"] = frames_to_unit_range(batch["identity"])
    if "noise" in batch:
        batch["noisy_audio"] = mix_at_snr(batch["audio"], batch.pop("noise"), batch.pop("snr_db"))
    return batch


def _padded(arrays: list[np.ndarray], dtype=None) -> np.ndarray:
    """Stack `(T_i, …)` arrays into `(B, max T_i, …)`, zero-filled past each one's length."""
    longest = max(len(array) for array in arrays)
    out = np.zeros((len(arrays), longest, *arrays[0].shape[1:]), dtype=dtype or arrays[0].dtype)
    for row, array in enumerate(arrays):
        out[row, : len(array)] = array
    return out


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
