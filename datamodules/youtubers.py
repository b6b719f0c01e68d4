"""Youtubers (Wav2Pix): face crops of Spanish YouTubers, each paired with the speech around its frame.

Layout read (the authors' public release; `<root>` may also be the `dataset/` folder itself)::

    <root>/dataset/{train,test}/<youtuber>/cropped_face_frame_<k>.png    face crop (JPEG data despite .png)
    <root>/dataset/{train,test}/<youtuber>/preprocessed_frame_<k>.wav    16 kHz mono speech paired by k

Identities are the sorted folder names; test speakers are the training speakers. The release has no
validation split, and model selection must never see the test pairs, so validation holds out the last
`val_fraction` of each identity's training pairs (in listing order: a block of frames, not frames
interleaved with the training ones). For the open-set evaluation, `open_set_speakers` keeps the last
identities out of training and validation whole; their pairs form the splits "open_set_train" and
"open_set_test" (`OPEN_SET_SPLITS`). Crops are stored with red and
blue swapped (`swap_red_blue` undoes it). Each face is checked with dlib's detector: a crop without a
detectable face is rejected, as are pairs whose wav is missing, silent or shorter than the window.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from torch.utils.data import DataLoader

from .base import CachedDataModule, stack_items
from .errors import DatasetError, pass_dataset
from .face_speech import FACE_CHECK_BORDER_PX, FaceSpeechPairs, finish_face_speech_batch, pair_item
from .pipeline.cache import ShardedCache
from .pipeline.prepare import prepare_cache

FACE_FILE = re.compile(r"^cropped_face_frame_(\d+)\.png$")
PREPROCESSING_KEYS = ("image_size", "sample_rate", "audio_samples", "swap_red_blue", "check_face")
PARTITIONS = ("train", "test")  # the release's folders
OPEN_SET_SPLITS = ("open_set_train", "open_set_test")  # the held-out youtubers' pairs of each partition
OPEN_SET_MINIMUM = 2  # youtubers held out (retrieval among one is certain) and youtubers left to train on


def scan_youtubers(root: str | Path) -> list[dict]:
    """Pairs `{"path": face, "audio": wav, "identity": name, "split": split}`, sorted."""
    root = Path(root)
    base = root / "dataset" if (root / "dataset").is_dir() else root
    pairs = []
    for split in PARTITIONS:
        for folder in sorted(p for p in (base / split).glob("*") if p.is_dir()):
            for face in sorted(folder.iterdir()):
                if (match := FACE_FILE.match(face.name)) is not None:
                    wav = folder / f"preprocessed_frame_{match.group(1)}.wav"
                    pairs.append(
                        {"path": str(face), "audio": str(wav), "identity": folder.name, "split": split}
                    )
    if not pairs:
        raise DatasetError(
            f"{root}: no dataset/{{train,test}}/<youtuber>/cropped_face_frame_<k>.png found. "
            + pass_dataset("the folder holding the release's dataset/")
        )
    return pairs


class YoutubersDataModule(CachedDataModule):
    """Wav2Pix's face ↔ speech pairs.

    Args:
        root: the release folder; None uses (and generates) the demo dataset in the same layout.
        image_size: 64 or 128. audio_samples: speech window (16000 = 1 s; 4800 and 11200 for the sweep).
        repeats: times each pair is drawn per epoch (5 with 4-s wavs, as in the paper; 1 for the release's
            1-s wavs).
        pre_emphasis, emphasis_first: speech normalisation (0.95, pre-emphasis before peak normalisation).
        swap_red_blue: the release stores BGR crops. check_face: reject crops where dlib finds no face.
        val_fraction: share of each identity's training pairs held out for validation (at least one pair
            of an identity with two or more).
        open_set_speakers: the last this many identities (in sorted order) are held out whole: none of
            their faces or speech is trained or validated on, and the open-set evaluation retrieves them
            from the faces generated from their test-partition speech. 0 (default): every identity trains.
        demo_size, demo_articulation, demo_seed: the demo dataset generated when root is None
            (`CachedDataModule`).
    """

    layout = "youtubers"

    def __init__(
        self,
        root: str | None = None,
        cache_dir: str | None = None,
        prepared_dir: str | None = None,
        image_size: int = 64,
        audio_samples: int = 16000,
        sample_rate: int = 16000,
        repeats: int = 1,
        pre_emphasis: float = 0.95,
        emphasis_first: bool = True,
        swap_red_blue: bool = True,
        check_face: bool = True,
        val_fraction: float = 0.1,
        open_set_speakers: int = 0,
        batch_size: int = 64,
        eval_batch_size: int = 64,
        num_workers: int = 2,
        prepare_workers: int = 2,
        demo_size: str = "demo",
        demo_articulation: str = "jaw",
        demo_seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.datasets: dict[str, FaceSpeechPairs] = {}

    @cached_property
    def pairs(self) -> list[dict]:
        return scan_youtubers(self.root)

    def _preprocessing(self) -> dict:
        return {key: self.hparams[key] for key in PREPROCESSING_KEYS}

    def cache(self) -> ShardedCache:
        # The face check's border is part of the key: a cache checked on borderless crops, which rejected
        # most real faces, is refused with a rebuild hint rather than reused.
        params = {
            "root": str(self.root),
            **self._preprocessing(),
            "face_check_border_px": FACE_CHECK_BORDER_PX,
        }
        return self.sharded_cache(f"pairs-{self.hparams.image_size}px-{self.hparams.audio_samples}", params)

    def prepare_data(self) -> None:
        jobs = [{**pair, **self._preprocessing()} for pair in self.pairs]
        cache = self.cache()
        report = prepare_cache(
            cache, jobs, pair_item, num_workers=self.hparams.prepare_workers, description="youtubers pairs"
        )
        self.report(report, cache, "pair")

    @cached_property
    def _trained_and_held_out(self) -> tuple[list[str], list[str]]:
        """The sorted training folder names, known from the layout alone (before preprocessing), so the
        model's classifier can be sized when both are built, split into those trained on and the last
        `open_set_speakers` held out."""
        names = sorted({pair["identity"] for pair in self.pairs if pair["split"] == "train"})
        return split_off_open_set(names, self.hparams.open_set_speakers, self.root)

    @property
    def identities(self) -> list[str]:
        """Class order: the identities trained on. An identity whose pairs were all rejected keeps its
        index."""
        return self._trained_and_held_out[0]

    @property
    def open_set_identities(self) -> list[str]:
        """The held-out identities, in the order the open-set splits' `identity` indices follow."""
        return self._trained_and_held_out[1]

    @property
    def num_identities(self) -> int:
        return len(self.identities)

    @property
    def description(self) -> str:
        held_out = self.hparams.open_set_speakers
        return super().description + (f", last {held_out} youtubers held out" if held_out else "")

    def setup(self, stage: str | None = None) -> None:
        self.items = self.cache().read()
        rows = rows_by_split(self.items.metas, set(self.open_set_identities))
        if not rows["train"]:
            raise DatasetError(
                f"{self.root}: no training pair survived preprocessing; see {self.cache().directory}."
            )
        rows["train"], rows["val"] = held_out_tail(
            rows["train"], [self.items.metas[r]["identity"] for r in rows["train"]], self.hparams.val_fraction
        )
        self._rows = rows
        hp = self.hparams
        self.datasets["train"] = FaceSpeechPairs(
            self.items,
            rows["train"],
            self.identities,
            rows["train"],
            hp.audio_samples,
            hp.repeats,
            True,
            (hp.pre_emphasis, hp.emphasis_first),
        )
        self.datasets["val"] = self.evaluation_dataset("val")
        self.datasets["test"] = self.evaluation_dataset("test")

    def evaluation_dataset(self, split: str) -> FaceSpeechPairs:
        """Every pair of `split` once, with its centred speech window (deterministic). In an open-set split
        (`OPEN_SET_SPLITS`) `identity` indexes `open_set_identities`."""
        hp = self.hparams
        return FaceSpeechPairs(
            self.items,
            self._rows[split],
            self.open_set_identities if split in OPEN_SET_SPLITS else self.identities,
            self._rows["train"],
            hp.audio_samples,
            1,
            False,
            (hp.pre_emphasis, hp.emphasis_first),
        )

    def finish_batch(self, batch: dict) -> dict:
        return finish_face_speech_batch(batch, (self.hparams.pre_emphasis, self.hparams.emphasis_first))

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.datasets["train"], self.per_device_batch(), shuffle=True, collate=stack_items)

    def val_dataloader(self) -> DataLoader:
        return self.loader(
            self.datasets["val"], self.hparams.eval_batch_size, shuffle=False, collate=stack_items
        )

    def test_dataloader(self) -> DataLoader:
        return self.loader(
            self.datasets["test"], self.hparams.eval_batch_size, shuffle=False, collate=stack_items
        )


def split_off_open_set(names: list[str], count: int, root: Path) -> tuple[list[str], list[str]]:
    """(trained, held out): the last `count` of the sorted `names` are held out; 0 holds none out."""
    if count == 0:
        return names, []
    largest = len(names) - OPEN_SET_MINIMUM
    if OPEN_SET_MINIMUM <= count <= largest:
        return names[:-count], names[-count:]
    fix = (
        f"Pass --data.init_args.open_set_speakers=N with N from {OPEN_SET_MINIMUM} to {largest}, or 0 for "
        "no open set."
        if largest >= OPEN_SET_MINIMUM
        else "Pass --data.init_args.open_set_speakers=0, or data with at least "
        f"{2 * OPEN_SET_MINIMUM} youtubers (the generated demo's: --data.init_args.demo_size=open)."
    )
    raise DatasetError(
        f"open_set_speakers={count}: {root} has {len(names)} youtubers, and the open set needs at least "
        f"{OPEN_SET_MINIMUM} held out and {OPEN_SET_MINIMUM} left to train on. {fix}"
    )


def rows_by_split(metas: list[dict], held_out: set[str]) -> dict[str, list[int]]:
    """Row indices of each release partition ("train", "test") of the trained identities, and of each
    open-set split (`OPEN_SET_SPLITS`) of the `held_out` ones."""
    rows = {split: [] for split in (*PARTITIONS, *OPEN_SET_SPLITS)}
    for row, meta in enumerate(metas):
        rows[f"open_set_{meta['split']}" if meta["identity"] in held_out else meta["split"]].append(row)
    return rows


def held_out_tail(rows: list[int], groups: list[str], fraction: float) -> tuple[list[int], list[int]]:
    """(kept, held out): per group, the last `fraction` of its rows (in the given order) are held out, at
    least one of a group with two or more rows."""
    by_group: dict[str, list[int]] = {}
    for row, group in zip(rows, groups):
        by_group.setdefault(group, []).append(row)
    held = set()
    for members in by_group.values():
        count = min(len(members) - 1, max(1, round(fraction * len(members)))) if fraction > 0 else 0
        held.update(members[len(members) - count :] if count > 0 else [])
    return [r for r in rows if r not in held], [r for r in rows if r in held]
