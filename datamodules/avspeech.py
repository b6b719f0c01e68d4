"""AVSpeech: 3–10 s YouTube segments with one audible speaker (A2V's dataset).

Layout read::

    <root>/avspeech_train.csv, <root>/avspeech_test.csv    no header: youtube_id,start_s,end_s,face_x,face_y
    <root>/**/<youtube_id>_<start_s>.mp4                   the downloaded segments (any sub-folder)

Rows whose clip was not downloaded are skipped (counted in the log). Splits (docs/a2v.md):
`split="official"` keeps the csv's train/test and moves 5 % of the training videos to val; `"grouped"`
pools every row and splits 90/5/5 by youtube_id. Either way no video spans two splits: the assignment is
a hash of the youtube_id, so it is stable without a seed. The csv's face centre (`face_x, face_y` in
[0, 1]) goes with each clip; with `crop.use_face_hint` it picks the speaker among several faces (the A2V
paper ignores it and drops multi-face clips instead, which is the default).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info

from .errors import DatasetError
from .talking_face import ClipFiles, TalkingFaceDataModule

CSV_FILES = {"train": "avspeech_train.csv", "test": "avspeech_test.csv"}


def video_bucket(youtube_id: str) -> float:
    """A stable pseudo-random number in [0, 1) per video."""
    return int(hashlib.sha1(youtube_id.encode()).hexdigest()[:8], 16) / 2**32


def _split(csv_split: str, youtube_id: str, scheme: str) -> str:
    bucket = video_bucket(youtube_id)
    if scheme == "official":
        return "val" if csv_split == "train" and bucket < 0.05 else csv_split
    if scheme == "grouped":
        return "test" if bucket < 0.05 else "val" if bucket < 0.10 else "train"
    raise ValueError(f"unknown AVSpeech split {scheme!r}; use 'official' or 'grouped'")


def clip_name(youtube_id: str, start: str) -> tuple[str, float]:
    """The (youtube_id, start) a downloaded file or csv row refers to; starts compare to the millisecond."""
    return youtube_id, round(float(start), 3)


def _downloaded(root: Path) -> dict[tuple[str, float], Path]:
    found = {}
    for path in sorted(root.rglob("*.mp4")):
        # ids may contain "_": the start is after the last one
        youtube_id, _, start = path.stem.rpartition("_")
        try:
            found[clip_name(youtube_id, start)] = path
        except ValueError:
            continue
    return found


def read_rows(path: Path) -> list[list[str]]:
    rows = [row for row in csv.reader(path.read_text().splitlines()) if row]
    bad = next((row for row in rows if len(row) != 5), None)
    if bad is not None:
        raise DatasetError(
            f"{path}: row {bad} does not have the 5 AVSpeech columns "
            "(youtube_id,start,end,face_x,face_y). Use the official csv."
        )
    return rows


def scan_avspeech(root: str | Path, split: str = "official") -> list[ClipFiles]:
    root = Path(root)
    csvs = {name: root / file for name, file in CSV_FILES.items() if (root / file).exists()}
    if not csvs:
        raise DatasetError(
            f"{root}: neither avspeech_train.csv nor avspeech_test.csv found. Put the official csv "
            "files next to the downloaded clips."
        )
    downloaded, clips, missing = _downloaded(root), [], 0
    for csv_split, path in csvs.items():
        for youtube_id, start, _end, face_x, face_y in read_rows(path):
            video = downloaded.get(clip_name(youtube_id, start))
            if video is None:
                missing += 1
                continue
            clips.append(
                ClipFiles(
                    key=video.stem,
                    video=video,
                    speaker=youtube_id,
                    split=_split(csv_split, youtube_id, split),
                    face_hint=(float(face_x), float(face_y)),
                )
            )
    if missing:
        rank_zero_info(f"avspeech: {missing} csv row(s) have no downloaded clip under {root}; skipped.")
    if not clips:
        raise DatasetError(f"{root}: none of the csv rows has a downloaded <youtube_id>_<start>.mp4 clip.")
    return ensure_validation(clips)


def ensure_validation(clips: list[ClipFiles]) -> list[ClipFiles]:
    """When hashing put no video in "val" (a small download), move the training video with the smallest
    bucket there, so that validation, and the checkpoints chosen by it, exist."""
    training = sorted({c.speaker for c in clips if c.split == "train"}, key=video_bucket)
    if any(c.split == "val" for c in clips) or len(training) < 2:
        return clips
    rank_zero_info(f"avspeech: no video fell into the validation split; using video {training[0]}.")
    return [
        dataclasses.replace(c, split="val") if c.split == "train" and c.speaker == training[0] else c
        for c in clips
    ]


class AVSpeechDataModule(TalkingFaceDataModule):
    """AVSpeech segments, converted to `fps` (A2V: 25) since the source rates vary.

    Args:
        split: "official" (csv train/test, 5 % of training videos as val) or "grouped" (90/5/5 by video).
        **kwargs: see `TalkingFaceDataModule`.
    """

    layout = "avspeech"

    def __init__(self, split: str = "official", **kwargs):
        super().__init__(**kwargs)

    def scan(self, root: Path) -> list[ClipFiles]:
        return scan_avspeech(root, self.hparams.split)
