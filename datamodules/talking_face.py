"""The talking-face datamodule: speaking-face clips, decoded, face-tracked and featurised once into a cache.

Used by the systems that generate video from speech (E2E-NR, TCSAN, A2V). A dataset adapter (`lrw.py`,
`grid.py`, `tcd_timit.py`, `avspeech.py`) only lists clips (`ClipFiles`) with their speaker and split;
`TalkingFaceDataModule` does the rest:

- `prepare_data` runs `talking_face_clips.clip_item` on every clip (decode, check, trim the audio to the
  frames' span, track the face, optional MFCCs) and writes the results into a sharded cache in worker
  processes, resumably. Unusable clips are rejected with a reason.
- `setup` memory-maps the cache and builds each split's `talking_face_windows.ClipWindows` (windows of
  `window_frames` consecutive frames with exactly their audio), its noise, MFCC statistics and AU labels;
  the loaders batch them with `clip_collate`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .base import SPLITS, CachedDataModule
from .errors import DatasetError
from .noisy_speech import FixedNoise, NoiseMixing, RandomNoise
from .pipeline.action_units import AULabelConfig, build_labeler, class_rates
from .pipeline.audio import stored_speech
from .pipeline.cache import REJECTED_LIST, CachedItems, ShardedCache, parameter_differences
from .pipeline.face_tracks import FaceCropConfig
from .pipeline.features import MfccConfig
from .pipeline.prepare import prepare_cache
from .pipeline.video import parse_fps
from .talking_face_clips import clip_item
from .talking_face_windows import ClipWindows, clip_collate, finish_batch


@dataclass(frozen=True)
class ClipFiles:
    """One clip as an adapter found it: `audio` is a separate file, or None for the video's own track;
    `face_hint` the speaker's face centre as fractions (x, y) of the frame, when the dataset gives one."""

    key: str
    video: Path
    speaker: str
    split: str
    audio: Path | None = None
    face_hint: tuple[float, float] | None = None


# ----------------------------------------------------------------------------- datamodule

EVAL_NOISE_DONORS = 32  # training utterances that babble and speech-shaped evaluation noise are made of
SCAN_RECORD = "scan.json"  # in the cache folder: per split, the clips and speakers the root's scan listed


class TalkingFaceDataModule(CachedDataModule):
    """Base datamodule for talking-face video datasets; subclasses set `layout`, `native_fps`,
    `min_frames` and implement `scan(root) -> list[ClipFiles]`.

    Args:
        root: dataset folder in the adapter's real layout; None uses (and generates) the demo dataset.
        cache_dir: where preprocessed shards go (default `data/cache/<layout>-<hash of root>`, or of
            prepared_dir).
        prepared_dir: a folder written by `make prepare OUT=…`, only ever read (`CachedDataModule`).
        image_size: face crop side in pixels.
        crop: how faces are detected and cropped (`FaceCropConfig`: template alignment or box crops).
        sample_rate: audio rate of the cached waveform (E2E-NR 8000, TCSAN/A2V 16000).
        fps: convert every clip to this frame rate; None keeps the native rate (and rejects clips whose
            rate differs from the dataset's, when it has a single one).
        mfcc_width: > 0 adds `mfcc (B, T, 12, mfcc_width)` windows (TCSAN: 28), standardised with the
            training set's statistics (saved in checkpoints with the datamodule state).
        window_frames: frames per item (E2E-NR trains on whole 29-frame LRW clips); None = whole clips.
        eval_whole_clips: validation and test items are whole clips whatever `window_frames` is (TCSAN
            tests whole videos; TCD-TIMIT's are longer than its 75-frame training windows).
        noise: training items gain `noisy_audio`, a mixture with noise at a random SNR (`NoiseMixing`;
            E2E-NR's noise-resilient training); validation items a fixed one per clip. None = clean only.
        au_labels: items gain per-frame action-unit labels `au` and `au_mask` (`AULabelConfig`: OpenFace
            CSVs or the landmark-geometry approximation; TCSAN). The training set's occurrence rates
            (`au_rates`) are computed once and saved in checkpoints.
        batch_size: global batch (divided by the number of devices).
        demo_size: "demo" or "tiny" (tests) when root is None.
        demo_articulation: "jaw" (the demo data so far) or "lips" (each clip's true mouth recorded, for the
            lip-shape measure), when root is None; see `datamodules/synthetic/speech.py`.
        demo_seed: the demo data's generation seed (speakers, sentences, renders); the learning proofs
            score data of a seed no recipe was tuned on.
        stream_url: read every split from these exported shards (`python -m datamodules.streaming export`;
            a folder or fsspec URL) instead of root and the local cache; their preprocessing parameters
            must match these. Not with mfcc_width or au_labels (their training-set statistics need the
            local cache), nor for the evaluation scripts' `evaluation_clips` / `noisy_test_set`.
    """

    native_fps: str | None = None
    min_frames: int = 1
    finish_batch = staticmethod(finish_batch)

    def __init__(
        self,
        root: str | None = None,
        cache_dir: str | None = None,
        prepared_dir: str | None = None,
        image_size: int = 128,
        crop: FaceCropConfig = FaceCropConfig(),
        sample_rate: int = 16000,
        fps: float | None = None,
        mfcc_width: int = 0,
        window_frames: int | None = None,
        eval_whole_clips: bool = False,
        noise: NoiseMixing | None = None,
        au_labels: AULabelConfig | None = None,
        batch_size: int = 16,
        eval_batch_size: int = 16,
        num_workers: int = 2,
        prepare_workers: int = 2,
        demo_size: str = "demo",
        demo_articulation: str = "jaw",
        demo_seed: int = 0,
        stream_url: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        # Configs arrive as dataclasses or mappings (YAML); they are used as dataclasses and kept as plain
        # dicts in hparams, so checkpoints load with torch.load(weights_only=True).
        self.crop_config = crop if isinstance(crop, FaceCropConfig) else FaceCropConfig(**crop)
        self.noise_mixing = noise if noise is None or isinstance(noise, NoiseMixing) else NoiseMixing(**noise)
        self.hparams.crop = asdict(self.crop_config)
        self.hparams.noise = None if self.noise_mixing is None else asdict(self.noise_mixing)
        self.au_config = (
            au_labels
            if au_labels is None or isinstance(au_labels, AULabelConfig)
            else AULabelConfig(**au_labels)
        )
        self.hparams.au_labels = None if self.au_config is None else asdict(self.au_config)
        self.au_rates: np.ndarray | None = None
        self._au_tables: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
        self.mfcc_config = MfccConfig(sample_rate=sample_rate) if mfcc_width else None
        self.mfcc_stats: tuple[np.ndarray, np.ndarray] | None = None
        self.datasets: dict[str, ClipWindows] = {}
        self._noise_banks: dict[str, object] = {}
        self._scan_record: dict | None = None

    def scan(self, root: Path) -> list[ClipFiles]:
        raise NotImplementedError

    @cached_property
    def clips(self) -> list[ClipFiles]:
        return self.scan(self.root)

    def speakers(self, split: str) -> list[str]:
        if self.stream is not None:
            return self.stream.speakers(split)
        return self.scan_record()["speakers"][split]

    def scan_record(self) -> dict:
        """What the root's scan lists per split: `{"clips": {split: count}, "speakers": {split: [names]}}`.

        `prepare_data` writes it into the cache folder once every clip is preprocessed, and `setup` reads it
        from there, so a complete cache is set up from its index alone, without listing the dataset root
        again (LRW's 500k files) and without the root at all. Without that record it comes from the scan.
        """
        if self._scan_record is None:
            recorded = self.cache().side_file(SCAN_RECORD)
            self._scan_record = (
                json.loads(recorded.read_text()) if recorded.is_file() else scan_summary(self.clips)
            )
        return self._scan_record

    def _params(self) -> dict:
        return {"root": str(self.root), **self._preprocessing()}

    def _preprocessing(self) -> dict:
        """The cache parameters other than where the clips came from."""
        return {
            "image_size": self.hparams.image_size,
            "crop": asdict(self.crop_config),
            "sample_rate": self.hparams.sample_rate,
            "fps": self._fps(),
            "native_fps": self.native_fps,
            "min_frames": self.min_frames,
            "mfcc": asdict(self.mfcc_config) if self.mfcc_config else None,
        }

    def _fps(self) -> str | None:
        return str(parse_fps(self.hparams.fps)) if self.hparams.fps else None

    def cache(self) -> ShardedCache:
        params = self._params()
        digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
        name = (
            f"clips-{self.crop_config.method}-{self.hparams.image_size}px-"
            f"{self.hparams.sample_rate}hz-{digest}"
        )
        return self.sharded_cache(name, params)

    def jobs(self) -> list[dict]:
        """One `clip_item` job per clip: the preprocessing parameters plus the clip's files and labels."""
        params = self._params()
        return [
            {
                **params,
                "path": str(c.video),
                "audio": str(c.audio) if c.audio else None,
                "key": c.key,
                "speaker": c.speaker,
                "split": c.split,
                "face_hint": c.face_hint,
            }
            for c in self.clips
        ]

    def prepare_data(self) -> None:
        """Decode, track and featurise every clip once (rank 0 only); reruns skip finished shards."""
        if self.stream is not None:
            return  # prepared and exported already
        cache = self.cache()
        report = prepare_cache(
            cache,
            self.jobs(),
            clip_item,
            shard_size=32,
            num_workers=self.hparams.prepare_workers,
            description=f"{self.layout} clips",
        )
        self.report(report, cache, "clip")
        self._scan_record = scan_summary(self.clips)
        cache.write_side_file(SCAN_RECORD, json.dumps(self._scan_record, indent=1, sort_keys=True))

    def setup(self, stage: str | None = None) -> None:
        if self.stream is not None:
            return self._setup_stream()
        items = self.cache().read()
        rows: dict[str, list[int]] = {split: [] for split in SPLITS}
        for row, meta in enumerate(items.metas):
            rows[meta["split"]].append(row)
        if not rows["train"] and self.scan_record()["clips"]["train"]:
            raise DatasetError(
                f"{self.root}: no training clip survived preprocessing; see "
                f"{self.cache().side_file(REJECTED_LIST)}."
            )
        if self.mfcc_config is not None and self.mfcc_stats is None:
            self.mfcc_stats = _feature_stats(items, rows["train"] or rows["test"], "mfcc")
        self._items, self._rows = items, rows
        if self.au_config is not None:
            self._label_action_units(items, rows)
        for split in SPLITS:
            self.datasets[split] = self._windows(
                split, self._split_noise(split), random_start=split == "train"
            )

    def _setup_stream(self) -> None:
        """Check the streamed shards were made with this datamodule's parameters; build each split's
        `ClipWindows`, used only for its `window` transform."""
        url, params = self.hparams.stream_url, json.loads(json.dumps(self._preprocessing()))
        details = parameter_differences(self.stream.params, params, params, "streamed")
        if details:
            raise DatasetError(
                f"{url} was exported from a cache made with other parameters ({details}). "
                "Set the same data arguments, or export a cache prepared with these."
            )
        if self.au_config is not None or self.mfcc_config is not None:
            raise DatasetError(
                f"{url}: au_labels and mfcc_width need statistics over the whole training set, "
                "which streaming does not compute. Train from the local cache (no stream_url)."
            )
        self._stream_windows = {
            split: self._windows(split, self._split_noise(split), split == "train", streamed=True)
            for split in SPLITS
        }

    def _label_action_units(self, items: CachedItems, rows: dict[str, list[int]]) -> None:
        """Every clip's AU labels (cheap: from cached landmarks or small CSVs), and the training rates."""
        labeler = build_labeler(self.au_config)
        self._au_tables = {}
        for row in tqdm([r for split in SPLITS for r in rows[split]], desc="action-unit labels", leave=False):
            meta, arrays = items[row]
            landmarks = np.asarray(arrays["landmarks"]) if "landmarks" in arrays else None
            self._au_tables[row] = labeler.labels(meta["key"], landmarks, np.asarray(arrays["detected"]))
        if self.au_rates is None:
            train = rows["train"] or rows["test"]
            self.au_rates = class_rates(
                np.concatenate([self._au_tables[r][0] for r in train]),
                np.concatenate([self._au_tables[r][1] for r in train]),
            )

    def _windows(
        self, split: str, noise: RandomNoise | FixedNoise | None, random_start: bool, streamed: bool = False
    ) -> ClipWindows:
        whole = split != "train" and self.hparams.eval_whole_clips
        if not streamed:
            self._require_local_cache()
        items, rows = (None, []) if streamed else (self._items, self._rows[split])
        return ClipWindows(
            items,
            rows,
            self.speakers(split),
            self.hparams.sample_rate,
            None if whole else self.hparams.window_frames,
            random_start=random_start,
            mfcc_width=self.hparams.mfcc_width,
            mfcc_stats=self.mfcc_stats,
            noise=noise,
            au_labels=self._au_tables,
        )

    def _require_local_cache(self) -> None:
        """Map-style datasets (the evaluation scripts') need the local cache, not the stream."""
        if self.stream is not None:
            raise DatasetError(
                f"{self.hparams.stream_url}: evaluation datasets read the local cache. "
                "Evaluate without stream_url (root / cache_dir pointing at the prepared cache)."
            )

    def _split_noise(self, split: str) -> RandomNoise | None:
        mixing = self.noise_mixing
        if mixing is None or split == "test":
            return None
        if "train" not in self._noise_banks:
            self._noise_banks["train"] = mixing.training_bank(self.hparams.sample_rate)
        seed = None if split == "train" else mixing.seed  # a fixed noisy validation set
        return RandomNoise(self._noise_banks["train"], tuple(mixing.snrs_db), seed=seed)

    def evaluation_noise_bank(self):
        """The held-out noises of the SNR sweep (`NoiseMixing.eval_folder`, else generated stand-ins whose
        babble and speech-shaped noise come from training speech, never from the test speakers)."""
        if "eval" not in self._noise_banks:
            self._require_local_cache()
            mixing = self.noise_mixing or NoiseMixing()
            donors = self._rows["train"][:EVAL_NOISE_DONORS] or self._rows["val"][:EVAL_NOISE_DONORS]
            speech = [stored_speech(self._items[r][1]["audio"]) for r in donors]
            self._noise_banks["eval"] = mixing.evaluation_bank(self.hparams.sample_rate, speech)
        return self._noise_banks["eval"]

    def evaluation_clips(self, split: str = "test") -> ClipWindows:
        """`split` as evaluation sees it: clean speech, no random start (whole clips with
        `eval_whole_clips`)."""
        return self._windows(split, None, False)

    def noisy_test_set(self, noise_type: str, snr_db: float, split: str = "test") -> ClipWindows:
        """`split` with every item's `audio` mixed with held-out `noise_type` at `snr_db` (clean speech in
        `clean_audio`); the same noise segment per clip at every SNR."""
        seed = (self.noise_mixing or NoiseMixing()).seed
        return self._windows(split, FixedNoise(self.evaluation_noise_bank(), noise_type, snr_db, seed), False)

    def state_dict(self) -> dict:
        """The training set's MFCC statistics and AU rates travel with checkpoints, so inference and
        evaluation standardise and weigh the same way."""
        state = {}
        if self.mfcc_stats is not None:
            state.update(mfcc_mean=self.mfcc_stats[0].tolist(), mfcc_std=self.mfcc_stats[1].tolist())
        if self.au_rates is not None:
            state["au_rates"] = self.au_rates.tolist()
        return state

    def load_state_dict(self, state: dict) -> None:
        if "mfcc_mean" in state:
            self.mfcc_stats = (
                np.asarray(state["mfcc_mean"], np.float32),
                np.asarray(state["mfcc_std"], np.float32),
            )
        if "au_rates" in state:
            self.au_rates = np.asarray(state["au_rates"], np.float64)

    def train_dataloader(self) -> DataLoader:
        return self._split_loader("train", self.per_device_batch(), shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._split_loader("val", self.hparams.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._split_loader("test", self.hparams.eval_batch_size, shuffle=False)

    def _split_loader(self, split: str, batch_size: int, shuffle: bool):
        if self.stream is not None:
            return self.stream_loader(
                split, batch_size, shuffle, self._stream_windows[split].window, clip_collate
            )
        return self.loader(self.datasets[split], batch_size, shuffle=shuffle, collate=clip_collate)


def _feature_stats(items: CachedItems, rows: list[int], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std over every frame of the given clips."""
    stacked = np.concatenate([np.asarray(items[r][1][key], dtype=np.float64) for r in rows])
    return stacked.mean(0).astype(np.float32), np.maximum(stacked.std(0), 1e-5).astype(np.float32)


def scan_summary(clips: list[ClipFiles]) -> dict:
    """`TalkingFaceDataModule.scan_record` of these clips."""
    return {
        "clips": {split: sum(clip.split == split for clip in clips) for split in SPLITS},
        "speakers": {
            split: sorted({clip.speaker for clip in clips if clip.split == split and clip.speaker})
            for split in SPLITS
        },
    }


def every_nth_to_val(clips: list[ClipFiles], every: int = 20) -> list[ClipFiles]:
    """Move every `every`-th training clip (in listing order) to "val": a validation set for monitoring
    when the dataset's split has none. A split of fewer than `every` (but at least 2) clips gives its last
    one, so that validation never silently has nothing to run on. Its speakers also train; the test
    speakers stay unseen."""
    training = [index for index, clip in enumerate(clips) if clip.split == "train"]
    chosen = set(training[every - 1 :: every]) or (set(training[-1:]) if len(training) >= 2 else set())
    return [
        dataclasses.replace(clip, split="val") if index in chosen else clip
        for index, clip in enumerate(clips)
    ]
