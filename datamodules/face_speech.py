"""Face ↔ speech pairs: a still face crop with the speech recorded around it (Wav2Pix's kind of data).

`pair_item` preprocesses one pair into the cache (face resized, optionally checked with dlib, speech read
and length-checked); `FaceSpeechPairs` serves windows of it with a mismatched ("wrong") face for the
GAN-CLS discriminator term.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .base import randint
from .device_transforms import emphasise as emphasise_batch
from .device_transforms import faces_to_unit_range, speech_to_float
from .errors import DatasetError
from .pipeline.audio import SILENCE_PEAK, batchable_speech, read_audio, stored_speech, to_pcm16
from .pipeline.cache import CachedItems
from .pipeline.faces import DlibDetector
from .pipeline.images import read_image
from .resumable import BatchDraws

_DETECTOR = DlibDetector(upsample=0)  # crops are tight and large: no upsampling needed
# dlib's HOG detector almost never fires on a tight crop (about 3 % of the Wav2Pix release's faces); with a
# black border it finds 99 %, so the check rejects what is not a face rather than most real faces.
FACE_CHECK_BORDER_PX = 64


class FaceSpeechBatch(TypedDict):
    """A finished batch of face–speech pairs: face, wrong_face `(B, 3, S, S)` float32 in [-1, 1]; audio
    `(B, T)` float32; identity `(B,)` int64; audio_start `(B,)` int64, the window's first sample."""

    face: torch.Tensor
    wrong_face: torch.Tensor
    audio: torch.Tensor
    identity: torch.Tensor
    audio_start: torch.Tensor


def pair_item(job: dict) -> tuple[dict, dict[str, np.ndarray]]:
    if not Path(job["audio"]).exists():
        raise DatasetError(
            f"{job['path']}: its speech {Path(job['audio']).name} is missing. Restore it or remove the face."
        )
    face = read_image(job["path"], None).transpose(1, 2, 0)  # (H, W, 3) at the stored resolution
    if job["swap_red_blue"]:
        face = face[..., ::-1]
    face = np.ascontiguousarray(face)
    if job["check_face"] and not _DETECTOR(_with_border(face, FACE_CHECK_BORDER_PX)):
        raise DatasetError(f"{job['path']}: dlib finds no face in this crop. Remove the pair.")
    size = job["image_size"]
    face = np.asarray(Image.fromarray(face).resize((size, size), Image.BILINEAR)).transpose(2, 0, 1)
    wave = read_audio(job["audio"], job["sample_rate"])
    if len(wave) < job["audio_samples"]:
        raise DatasetError(
            f"{job['audio']}: {len(wave)} samples, shorter than the {job['audio_samples']}-sample "
            "window. Remove the pair or lower audio_samples."
        )
    if np.abs(wave).max() < SILENCE_PEAK:
        raise DatasetError(f"{job['audio']}: the speech is silent. Remove the pair.")
    return {"identity": job["identity"], "split": job["split"], "path": job["path"]}, {
        "face": face[None],
        "audio": to_pcm16(wave),
    }


def _with_border(face: np.ndarray, pixels: int) -> np.ndarray:
    """`(H, W, 3)` face inside a black border of `pixels` on every side."""
    return np.pad(face, ((pixels, pixels), (pixels, pixels), (0, 0)))


def emphasise(wave: np.ndarray, coefficient: float, emphasis_first: bool) -> np.ndarray:
    """Pre-emphasis y[n] = x[n] − c·x[n−1] and peak normalisation, in the order asked."""
    peak = lambda x: x / (np.abs(x).max() + 1e-8)  # noqa: E731
    emphasis = lambda x: np.concatenate([x[:1], x[1:] - coefficient * x[:-1]])  # noqa: E731
    return peak(emphasis(wave)) if emphasis_first else emphasis(peak(wave))


class FaceSpeechPairs(Dataset):
    """Each pair `repeats` times, with a random `audio_samples` window (centred when not `train`) and a
    wrong face: a training face of another identity (docs/wav2pix.md).

    `identities` orders the class indices; `emphasis` is (pre-emphasis coefficient, emphasis first).
    """

    def __init__(
        self,
        items: CachedItems,
        rows: list[int],
        identities: list[str],
        train_rows: list[int],
        audio_samples: int,
        repeats: int,
        train: bool,
        emphasis: tuple[float, bool],
    ):
        self.items, self.rows = items, rows
        self.index = {name: i for i, name in enumerate(identities)}
        self.audio_samples, self.repeats, self.train, self.emphasis = audio_samples, repeats, train, emphasis
        train_identity = {row: items.metas[row]["identity"] for row in train_rows}
        # Candidate wrong faces per identity, computed once instead of per item.
        self.other_rows = {
            name: [r for r, other in train_identity.items() if other != name]
            for name in {items.metas[row]["identity"] for row in rows}
        }

    def __len__(self) -> int:
        return len(self.rows) * self.repeats

    def _face(self, row: int) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.items[row][1]["face"][0], dtype=np.float32)) / 127.5 - 1.0

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index % len(self.rows)]
        meta, arrays = self.items[row]
        spare = len(arrays["audio"]) - self.audio_samples
        start = randint(spare + 1) if self.train else spare // 2
        wave = emphasise(stored_speech(arrays["audio"][start : start + self.audio_samples]), *self.emphasis)
        others = self.other_rows[meta["identity"]]
        wrong = others[randint(len(others))] if others else row  # a single-identity set has no wrong face
        return {
            "face": self._face(row),
            "wrong_face": self._face(wrong),
            "audio": torch.from_numpy(wave.astype(np.float32)),
            "identity": self.index[meta["identity"]],
            "audio_start": start,
        }

    def speech(self, index: int, start: int) -> np.ndarray:
        """The `(audio_samples,)` float32 speech window of item `index` from `start`, before pre-emphasis:
        what a listener should hear beside the face made from it (`make compare`'s report)."""
        arrays = self.items[self.rows[index % len(self.rows)]][1]
        return stored_speech(arrays["audio"][start : start + self.audio_samples]).astype(np.float32)

    def load_batch(self, indices: list[int], draws: BatchDraws) -> dict:
        """The training batch of `indices` in one call: `face`, `wrong_face` `(B, 3, S, S)` uint8 and the
        raw speech window `speech (B, audio_samples)` as stored (int16 PCM); `finish_face_speech_batch` makes
        the faces [-1, 1] and the speech the emphasised `audio` on the training device."""
        rows = [self.rows[index % len(self.rows)] for index in indices]
        pairs = [self.items[row] for row in rows]
        spares = np.array([len(arrays["audio"]) - self.audio_samples for _, arrays in pairs])
        starts = draws.integers(spares + 1, 0) if self.train else spares // 2
        others = [self.other_rows[meta["identity"]] for meta, _ in pairs]
        picks = draws.integers(np.array([max(len(o), 1) for o in others]), 1)
        wrong = [o[k] if o else row for o, k, row in zip(others, picks, rows)]
        batch = {
            "face": np.stack([arrays["face"][0] for _, arrays in pairs]),
            "wrong_face": np.stack([self.items[row][1]["face"][0] for row in wrong]),
            "speech": np.stack(
                batchable_speech(
                    [arrays["audio"][s : s + self.audio_samples] for (_, arrays), s in zip(pairs, starts)]
                )
            ),
            "identity": np.array([self.index[meta["identity"]] for meta, _ in pairs], dtype=np.int64),
            "audio_start": starts.astype(np.int64),
        }
        return {key: torch.from_numpy(value) for key, value in batch.items()}


def finish_face_speech_batch(batch: dict, emphasis: tuple[float, bool]) -> FaceSpeechBatch:
    """Complete a `FaceSpeechPairs.load_batch` batch on its device (`device_transforms`): the faces to
    [-1, 1], the int16 `speech` to the float `audio` normalised by `emphasis` (pre-emphasis coefficient,
    emphasis before peak normalisation), as `FaceSpeechPairs.__getitem__` makes them one by one. A batch
    made item by item comes back unchanged."""
    if "speech" in batch:
        batch["audio"] = emphasise_batch(speech_to_float(batch.pop("speech")), *emphasis)
    for key in ("face", "wrong_face"):
        if batch[key].dtype == torch.uint8:
            batch[key] = faces_to_unit_range(batch[key])
    return batch
