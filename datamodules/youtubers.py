"""Youtubers (Wav2Pix): face crops of Spanish YouTubers, each paired with the speech around its frame.

Layout read (the authors' public release; `<root>` may also be the `dataset/` folder itself)::

    <root>/dataset/{train,test}/<youtuber>/cropped_face_frame_<k>.png    face crop (JPEG data despite .png)
    <root>/dataset/{train,test}/<youtuber>/preprocessed_frame_<k>.wav    16 kHz mono speech paired by k

Identities are the sorted folder names; test speakers are the training speakers. The release has no
validation split, and model selection must never see the test pairs, so validation holds out the last
`val_fraction` of each identity's training pairs (in listing order: a block of frames, not frames
interleaved with the training ones). Crops are stored with red and
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


def scan_youtubers(root: str | Path) -> list[dict]:
    """Pairs `{"path": face, "audio": wav, "identity": name, "split": split}`, sorted."""
    root = Path(root)
    base = root / "dataset" if (root / "dataset").is_dir() else root
    pairs = []
    for split in ("train", "test"):
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
    def identities(self) -> list[str]:
        """Class order: the sorted training folder names, known from the layout alone (before preprocessing),
        so the model's classifier can be sized when both are built. An identity whose pairs were all rejected
        keeps its index."""
        return sorted({pair["identity"] for pair in self.pairs if pair["split"] == "train"})

    @property
    def num_identities(self) -> int:
        return len(self.identities)

    def setup(self, stage: str | None = None) -> None:
        self.items = self.cache().read()
        rows = {s: [r for r, m in enumerate(self.items.metas) if m["split"] == s] for s in ("train", "test")}
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
        """Every pair of `split` once, with its centred speech window (deterministic)."""
        hp = self.hparams
        return FaceSpeechPairs(
            self.items,
            self._rows[split],
            self.identities,
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
