"""GRID: 34 speakers (s21 has no video) reading 1000 six-word commands each, 3 s at 25 fps.

Layout read::

    <root>/s<N>/**/<utt>.mpg (or .mp4)                   video, 25 fps, 75 frames
    <root>/audio_25k/s<N>/<utt>.wav (or audio_50k/)      speech; without it the video's own track is used
    <root>/align/s<N>/<utt>.align                        "start end word", 1/1000 frames: not needed by
                                                         training (`read_align` parses one)
    <root>/splits/grid_{train,test}.txt                  optional: speakers per split, one per line

Split (by speaker, docs/tcsan.md): test = s1, s2, s20, s22, s33, s34 (`split="tcsan"`), or every
speaker in test (`split="all_test"`, E2E-NR's cross-dataset evaluation). Validation: every 20th training
utterance (the papers hold out no validation speakers).
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import DatasetError, pass_dataset
from .talking_face import ClipFiles, TalkingFaceDataModule, every_nth_to_val

GRID_FPS = "25"
GRID_FRAMES = 75
TCSAN_TEST_SPEAKERS = ("s1", "s2", "s20", "s22", "s33", "s34")
ALIGN_UNITS_PER_FRAME = 1000
SPEAKER = re.compile(r"^s\d+$")


def _speakers_from_files(root: Path) -> dict[str, str] | None:
    files = {split: root / "splits" / f"grid_{split}.txt" for split in ("train", "test")}
    if not all(path.exists() for path in files.values()):
        return None
    return {
        line.strip(): split
        for split, path in files.items()
        for line in path.read_text().split()
        if line.strip()
    }


def speaker_split(root: Path, speaker: str, split: str) -> str | None:
    """The split of `speaker` under the `split` scheme (None: the speaker is not used)."""
    listed = _speakers_from_files(root)
    if listed is not None:
        return listed.get(speaker)
    if split == "all_test":
        return "test"
    if split == "tcsan":
        return "test" if speaker in TCSAN_TEST_SPEAKERS else "train"
    raise ValueError(f"unknown GRID split {split!r}; use 'tcsan' or 'all_test'")


def _audio_for(root: Path, speaker: str, utterance: str) -> Path | None:
    for folder in ("audio_25k", "audio_50k"):
        path = root / folder / speaker / f"{utterance}.wav"
        if path.exists():
            return path
    return None


def read_align(path: Path, fps: float = 25.0) -> list[tuple[float, float, str]]:
    """`(start_s, end_s, word)` per line of a GRID `.align` file (silences are "sil" and "sp")."""
    words = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) != 3:
            raise DatasetError(
                f"{path}: malformed line {line!r}; expected 'start end word'. Restore the file."
            )
        start, end = (int(v) / ALIGN_UNITS_PER_FRAME / fps for v in parts[:2])
        words.append((start, end, parts[2]))
    return words


def scan_grid(root: str | Path, split: str = "tcsan") -> list[ClipFiles]:
    root = Path(root)
    folders = sorted(
        (p for p in root.glob("s*") if p.is_dir() and SPEAKER.match(p.name)), key=lambda p: int(p.name[1:])
    )
    clips = []
    for folder in folders:
        speaker_split_name = speaker_split(root, folder.name, split)
        if speaker_split_name is None:
            continue
        videos = sorted(
            p for p in folder.rglob("*") if p.suffix in (".mpg", ".mp4") and not p.name.startswith(".")
        )
        clips += [
            ClipFiles(
                key=f"{folder.name}/{video.stem}",
                video=video,
                speaker=folder.name,
                split=speaker_split_name,
                audio=_audio_for(root, folder.name, video.stem),
            )
            for video in videos
        ]
    if not clips:
        raise DatasetError(
            f"{root}: no s<N>/<utt>.mpg videos found. {pass_dataset('the GRID root holding s1/, s2/, …')}"
        )
    return every_nth_to_val(clips)


class GRIDDataModule(TalkingFaceDataModule):
    """GRID clips, split by speaker.

    Args:
        split: "tcsan" (27 train / 6 test speakers) or "all_test" (every speaker unseen: cross-dataset
            test); `splits/grid_{train,test}.txt` in the root override both.
        **kwargs: see `TalkingFaceDataModule`.
    """

    layout = "grid"
    native_fps = GRID_FPS
    min_frames = GRID_FRAMES

    def __init__(self, split: str = "tcsan", **kwargs):
        super().__init__(**kwargs)

    def scan(self, root: Path) -> list[ClipFiles]:
        return scan_grid(root, self.hparams.split)
