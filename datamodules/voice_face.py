"""Voice → face data: per identity, face crops and utterances, preprocessed once into a cache.

Used by systems that map a speaker's voice to a face of that speaker (SF2F). A dataset adapter (e.g.
`hq_voxceleb.py`) only lists each identity's files and split; everything else happens here:

- `prepare_data` decodes every face (resized to `image_size`) and every utterance (voice-activity
  detection, then log-mel) into two sharded caches, in worker processes, resumably.
- `setup` memory-maps the caches and builds per-split datasets. Training draws one random face and one
  random utterance per identity (an "epoch" is one pass over the identities, as in the authors' code);
  evaluation is deterministic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .base import SPLITS, CachedDataModule, stack_items
from .device_transforms import imagenet_normalised
from .errors import DatasetError
from .pipeline.audio import VAD_HANGOVER_MS, read_audio, voiced_audio
from .pipeline.cache import REJECTED_LIST, CachedItems, ShardedCache
from .pipeline.features import LogMelConfig, log_mel
from .pipeline.images import IMAGENET_MEAN, IMAGENET_STD, read_image
from .pipeline.prepare import prepare_cache
from .resumable import BatchDraws


@dataclass(frozen=True)
class IdentityFiles:
    """One identity as a dataset adapter found it on disk."""

    name: str
    split: str
    faces: tuple[Path, ...]
    speech: tuple[Path, ...]


class VoiceFaceBatch(TypedDict, total=False):
    """A collated batch. Images are ImageNet-normalised float32.

    face: `(B, 3, S, S)`; identity: `(B,)` int64 index among the training identities (train) or among
    the split's identities (val/test); mel: `(B, n_mels, T)`; mels: `(B, N, n_mels, W)` (fuser stage);
    faces: `(B, K, 3, S, S)` every face of the identity, padded, with face_mask `(B, K)` bool (evaluation).
    """

    face: torch.Tensor
    identity: torch.Tensor
    mel: torch.Tensor
    mels: torch.Tensor
    faces: torch.Tensor
    face_mask: torch.Tensor


# ----------------------------------------------------------------------------- preprocessing (workers)


def face_item(job: dict) -> tuple[dict, dict[str, np.ndarray]]:
    face = read_image(job["path"], job["image_size"])
    return {"identity": job["identity"], "path": job["path"]}, {"face": face[None]}


def speech_item(job: dict) -> tuple[dict, dict[str, np.ndarray]]:
    config = LogMelConfig(**job["log_mel"])
    wave = read_audio(job["path"], config.sample_rate)
    if job["vad"]:
        wave = voiced_audio(wave, config.sample_rate)
    seconds = len(wave) / config.sample_rate
    if seconds < job["min_speech_seconds"]:
        raise DatasetError(
            f"{job['path']}: only {seconds:.2f} s of "
            f"speech{' after voice-activity detection' if job['vad'] else ''} (minimum "
            f"{job['min_speech_seconds']} s): the file is silent, clipped or too short. Remove it, or lower "
            "--data.init_args.min_speech_seconds."
        )
    features = log_mel(wave, config)  # (n_mels, frames)
    return {"identity": job["identity"], "path": job["path"]}, {"mel": features.T.astype(np.float16)}


# ----------------------------------------------------------------------------- datasets


def normalise_face(face: np.ndarray) -> torch.Tensor:
    """`(3, S, S)` uint8 → `(3, S, S)` float32 in ImageNet-normalised space."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (torch.from_numpy(np.asarray(face, dtype=np.float32)) / 255.0 - mean) / std


class VoiceFaceCorpus:
    """The cached faces and utterances of one split, grouped by identity."""

    def __init__(self, faces: CachedItems, mels: CachedItems, names: list[str]):
        self.names = names
        position = {name: i for i, name in enumerate(names)}
        self.face_rows: list[list[int]] = [[] for _ in names]
        self.mel_rows: list[list[int]] = [[] for _ in names]
        for rows, items in ((self.face_rows, faces), (self.mel_rows, mels)):
            for row, meta in enumerate(items.metas):
                if meta["identity"] in position:
                    rows[position[meta["identity"]]].append(row)
        self._faces, self._mels = faces, mels
        # An identity whose files were all rejected keeps its index (class ids stay stable) but is not drawn.
        self.usable = [i for i in range(len(names)) if self.face_rows[i] and self.mel_rows[i]]

    def face(self, row: int) -> np.ndarray:
        return self._faces[row][1]["face"][0]

    def mel(self, row: int, start: int = 0, frames: int | None = None) -> np.ndarray:
        """`(n_mels, frames)` float32 from frame `start` on (the whole utterance by default), right-padded
        with the value of zero log-energy past its end. Only the crop is converted from the cached fp16."""
        stored = self._mels[row][1]["mel"]  # (T, n_mels) float16
        frames = len(stored) - start if frames is None else frames
        return _pad_to(np.asarray(stored[start : start + frames], dtype=np.float32).T, frames)

    def mel_path(self, row: int) -> str:
        """The audio file utterance `row` was read from."""
        return self._mels.metas[row]["path"]

    def mel_frames(self, row: int) -> int:
        return len(self._mels[row][1]["mel"])


class TrainPairs(Dataset):
    """One random face and one random utterance crop (or `segments` windows) per usable identity.

    Batches are made whole by `load_batch` (the training loader's fast path): faces stay uint8 and are
    normalised on the training device (`finish_batch`). Each batch crops every utterance to one length
    drawn from `clip_frames` (inclusive), at a random start in each.
    """

    def __init__(
        self, corpus: VoiceFaceCorpus, segments: int, window_frames: int, clip_frames: tuple[int, int]
    ):
        self.corpus, self.segments, self.window_frames = corpus, segments, window_frames
        self.clip_frames = clip_frames

    def __len__(self) -> int:
        return len(self.corpus.usable)

    def load_batch(self, indices: list[int], draws: BatchDraws) -> VoiceFaceBatch:
        """`face (B, 3, S, S)` uint8, `identity (B,)`, and `mel (B, n_mels, T)` float32 (T drawn per batch)
        or, with `segments`, `mels (B, N, n_mels, window_frames)`."""
        identities = [self.corpus.usable[index] for index in indices]
        face_rows = [self.corpus.face_rows[i] for i in identities]
        picks = draws.integers(np.array([len(rows) for rows in face_rows]), 0)
        batch = {
            "face": np.stack([self.corpus.face(rows[k]) for rows, k in zip(face_rows, picks)]),
            "identity": np.array(identities, dtype=np.int64),
        }
        mel_rows = [self.corpus.mel_rows[i] for i in identities]
        if self.segments:
            batch["mels"] = np.stack(
                [self._windows(rows, draws.generator(i, 1)) for i, rows in enumerate(mel_rows)]
            )
        else:
            low, high = self.clip_frames
            frames = low + draws.batch_integer(high - low + 1, 0)
            picks = draws.integers(np.array([len(rows) for rows in mel_rows]), 1)
            utterances = [rows[k] for rows, k in zip(mel_rows, picks)]
            lengths = np.array([self.corpus.mel_frames(row) for row in utterances])
            starts = draws.integers(np.maximum(lengths, frames) - frames + 1, 2)
            batch["mel"] = np.stack([self.corpus.mel(row, s, frames) for row, s in zip(utterances, starts)])
        return {key: torch.from_numpy(value) for key, value in batch.items()}

    def _windows(self, mel_rows: list[int], rng: np.random.Generator) -> np.ndarray:
        """`segments` non-overlapping windows from the identity's utterances in random order.

        Windows are taken at a random start offset in each shuffled utterance; an identity with too little
        speech for `segments` windows repeats its windows cyclically.
        """
        width, windows = self.window_frames, []
        for row in (mel_rows[i] for i in rng.permutation(len(mel_rows))):
            mel = _pad_to(self.corpus.mel(row), width)
            start = int(rng.integers(mel.shape[1] % width + 1))
            windows += [mel[:, s : s + width] for s in range(start, mel.shape[1] - width + 1, width)]
            if len(windows) >= self.segments:
                break
        repeated = [windows[i % len(windows)] for i in range(self.segments)]
        return np.stack(repeated)


def finish_batch(batch: VoiceFaceBatch) -> VoiceFaceBatch:
    """Normalise a `TrainPairs.load_batch` batch's uint8 faces on its device; a finished batch (evaluation)
    comes back unchanged."""
    if batch["face"].dtype == torch.uint8:
        batch["face"] = imagenet_normalised(batch["face"])
    return batch


class EvaluationIdentities(Dataset):
    """Deterministic evaluation items: every face of the identity and `eval_frames` of its speech, the first
    ones, or with `clip_seed` a clip at a random start in its concatenated utterances, drawn from a generator
    seeded by (clip_seed, identity): the paper's protocol draws one such clip per identity per run."""

    def __init__(self, corpus: VoiceFaceCorpus, eval_frames: int, clip_seed: int | None = None):
        self.corpus, self.eval_frames, self.clip_seed = corpus, eval_frames, clip_seed

    def __len__(self) -> int:
        return len(self.corpus.usable)

    def __getitem__(self, index: int) -> dict:
        identity = self.corpus.usable[index]
        faces = torch.stack([normalise_face(self.corpus.face(r)) for r in self.corpus.face_rows[identity]])
        speech = _pad_to(
            np.concatenate([self.corpus.mel(r) for r in self.corpus.mel_rows[identity]], axis=1),
            self.eval_frames,
        )
        start = 0
        if self.clip_seed is not None:
            draw = np.random.default_rng([self.clip_seed, identity])
            start = int(draw.integers(speech.shape[1] - self.eval_frames + 1))
        return {
            "face": faces[0],
            "faces": faces,
            "identity": identity,
            "mel": torch.from_numpy(speech[:, start : start + self.eval_frames].copy()),
        }


def _pad_to(mel: np.ndarray, frames: int, value: float = LogMelConfig().padding_value) -> np.ndarray:
    """Right-pad `(n_mels, T)` to at least `frames` with the normalised value of zero log-energy."""
    missing = frames - mel.shape[1]
    return mel if missing <= 0 else np.pad(mel, ((0, 0), (0, missing)), constant_values=value)


def evaluation_collate(items: list[dict]) -> VoiceFaceBatch:
    """Stack items, padding each identity's face set to the largest one with a `face_mask`."""
    batch = stack_items(items, exclude=("faces",))
    most = max(len(item["faces"]) for item in items)
    faces = torch.zeros(len(items), most, *items[0]["faces"].shape[1:])
    mask = torch.zeros(len(items), most, dtype=torch.bool)
    for i, item in enumerate(items):
        faces[i, : len(item["faces"])] = item["faces"]
        mask[i, : len(item["faces"])] = True
    batch["faces"], batch["face_mask"] = faces, mask
    return batch


# ----------------------------------------------------------------------------- datamodule


class VoiceFaceDataModule(CachedDataModule):
    """Base datamodule for voice → face datasets; subclasses set `layout` and implement `scan(root)`.

    Args:
        root: dataset folder in the adapter's real layout; None uses the embedded demo dataset
            (generated under `data/demo/<demo_size>/<layout>` on first use).
        cache_dir: where preprocessed shards go (default `data/cache/<layout>-<hash of root>`, or of
            prepared_dir).
        prepared_dir: a folder written by `make prepare OUT=…`, only ever read (`CachedDataModule`).
        image_size: face side in pixels after resizing (64 or 128 for SF2F).
        n_mels: log-mel bands (40 for SF2F).
        vad: keep only voiced audio (WebRTC VAD, as the SF2F authors' preparation does).
        min_speech_seconds: utterances with less (voiced) speech are rejected.
        clip_frames: training clips are cropped to T frames, T drawn per batch in this inclusive range.
        segments: 0 for single clips; N > 0 yields `mels (B, N, n_mels, window_frames)` (SF2F's fuser stage).
        eval_frames: length of the deterministic evaluation clip.
        batch_size: global batch (divided by the number of devices).
        demo_size: "demo" or "tiny" (tests) when root is None.
        demo_articulation: "jaw" (the demo data so far) or "lips" (each clip's true mouth recorded, for the
            lip-shape measure), when root is None; see `datamodules/synthetic/speech.py`.
        demo_seed: the demo data's generation seed (speakers, sentences, renders); the learning proofs
            score data of a seed no recipe was tuned on.
    """

    finish_batch = staticmethod(finish_batch)

    def __init__(
        self,
        root: str | None = None,
        cache_dir: str | None = None,
        prepared_dir: str | None = None,
        image_size: int = 64,
        n_mels: int = 40,
        vad: bool = True,
        min_speech_seconds: float = 0.5,
        clip_frames: tuple[int, int] = (100, 150),
        segments: int = 0,
        window_frames: int = 125,
        eval_frames: int = 125,
        batch_size: int = 256,
        eval_batch_size: int = 64,
        num_workers: int = 2,
        prepare_workers: int = 2,
        demo_size: str = "demo",
        demo_articulation: str = "jaw",
        demo_seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        if clip_frames[0] > clip_frames[1] or clip_frames[0] < 1:
            raise ValueError(f"clip_frames must be an increasing (min, max) pair, got {clip_frames}")
        self.log_mel_config = LogMelConfig(n_mels=n_mels)
        self.corpora: dict[str, VoiceFaceCorpus] = {}

    def scan(self, root: Path) -> list[IdentityFiles]:
        raise NotImplementedError

    # --- discovery -----------------------------------------------------------------------------------

    @cached_property
    def identities(self) -> list[IdentityFiles]:
        return self.scan(self.root)

    def names(self, split: str) -> list[str]:
        return [identity.name for identity in self.identities if identity.split == split]

    @property
    def num_identities(self) -> int:
        """Training identities: the number of classes of an identity classifier."""
        return len(self.names("train"))

    def _caches(self) -> tuple[ShardedCache, ShardedCache]:
        size, audio = self.hparams.image_size, self.log_mel_config
        faces = self.sharded_cache(f"faces-{size}px", {"root": str(self.root), "image_size": size})
        vad = "vad" if self.hparams.vad else "novad"
        # The VAD hangover is part of the key: a cache cut by the earlier VAD, which could end a stretch on
        # its first unvoiced frame, is refused (with a rebuild hint) rather than silently reused.
        mel_params = {
            **asdict(audio),
            "root": str(self.root),
            "vad": self.hparams.vad,
            "vad_hangover_ms": VAD_HANGOVER_MS,
            "min_speech_seconds": self.hparams.min_speech_seconds,
        }
        mels = self.sharded_cache(f"logmel-{audio.n_mels}-{vad}", mel_params)
        return faces, mels

    # --- Lightning hooks -----------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Decode and featurise every file once (rank 0 only); reruns skip finished shards."""
        faces, mels = self._caches()
        face_jobs = [
            {"path": str(p), "identity": i.name, "image_size": self.hparams.image_size}
            for i in self.identities
            for p in i.faces
        ]
        speech_jobs = [
            {
                "path": str(p),
                "identity": i.name,
                "log_mel": asdict(self.log_mel_config),
                "vad": self.hparams.vad,
                "min_speech_seconds": self.hparams.min_speech_seconds,
            }
            for i in self.identities
            for p in i.speech
        ]
        workers = self.hparams.prepare_workers
        for cache, jobs, process, what in (
            (faces, face_jobs, face_item, "faces"),
            (mels, speech_jobs, speech_item, "speech"),
        ):
            report = prepare_cache(
                cache, jobs, process, num_workers=workers, description=f"{self.layout} {what}"
            )
            self.report(report, cache, what)

    def setup(self, stage: str | None = None) -> None:
        caches = self._caches()
        faces, mels = (cache.read() for cache in caches)
        for split in SPLITS:
            corpus = VoiceFaceCorpus(faces, mels, self.names(split))
            if not corpus.usable and self.names(split):
                lists = " and ".join(str(cache.side_file(REJECTED_LIST)) for cache in caches)
                raise DatasetError(
                    f"{self.root}: none of the {len(self.names(split))} {split} identities has a usable face "
                    f"and utterance after preprocessing; see {lists}."
                )
            self.corpora[split] = corpus
        self._check_batch_size()

    def _check_batch_size(self) -> None:
        usable = len(self.corpora["train"].usable)
        if self.per_device_batch() > usable:
            raise DatasetError(
                f"{self.root}: batch of {self.per_device_batch()} per device exceeds the {usable} usable "
                "training identities (one item per identity per epoch). Lower --data.init_args.batch_size."
            )

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        dataset = TrainPairs(self.corpora["train"], hp.segments, hp.window_frames, tuple(hp.clip_frames))
        return self.loader(dataset, self.per_device_batch(), shuffle=True, collate=None)

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")

    def _evaluation_loader(self, split: str, clip_seed: int | None = None) -> DataLoader:
        dataset = EvaluationIdentities(self.corpora[split], self.hparams.eval_frames, clip_seed)
        return self.loader(dataset, self.hparams.eval_batch_size, shuffle=False, collate=evaluation_collate)

    def evaluation_speech(self, split: str, index: int) -> np.ndarray:
        """The speech of evaluation item `index` (the identity's utterances, voice-activity-trimmed as cached,
        one after another) cut to its `eval_frames`: about the audio its deterministic mel clip was computed
        from, for a listener (`make compare`'s report), at `log_mel_config.sample_rate`."""
        corpus, config = self.corpora[split], self.log_mel_config
        wanted = int(self.hparams.eval_frames * config.hop_seconds * config.sample_rate)
        pieces, total = [], 0
        for row in corpus.mel_rows[corpus.usable[index]]:
            wave = read_audio(corpus.mel_path(row), config.sample_rate)
            pieces.append(voiced_audio(wave, config.sample_rate) if self.hparams.vad else wave)
            total += len(pieces[-1])
            if total >= wanted:
                break
        return np.concatenate(pieces)[:wanted].astype(np.float32)

    def random_clip_test_loader(self, run: int) -> DataLoader:
        """The test identities, each with a random clip of `eval_frames` drawn for evaluation run `run`."""
        return self._evaluation_loader("test", clip_seed=run)
