"""LRW (Lip Reading in the Wild): 1.16 s BBC clips of one word each, E2E-NR's training set.

Layout read::

    <root>/lipread_mp4/<WORD>/{train,val,test}/<WORD>_<00001>.mp4    25 fps, 29 frames, 16 kHz audio
    <root>/lipread_mp4/<WORD>/{train,val,test}/<WORD>_<00001>.txt    metadata ("Text:", "Duration: …")

Split: the official folders. LRW has no speaker labels, so `speaker` is empty (-1 in batches).
"""

from __future__ import annotations

from pathlib import Path

from .base import SPLITS
from .errors import DatasetError, pass_dataset
from .talking_face import ClipFiles, TalkingFaceDataModule

LRW_FPS = "25"
LRW_FRAMES = 29


def scan_lrw(root: str | Path) -> list[ClipFiles]:
    """Every `<WORD>/<split>/*.mp4`, sorted by word, split and name."""
    videos = Path(root) / "lipread_mp4"
    if not videos.is_dir():
        raise DatasetError(
            f"{root}: no lipread_mp4/ folder. {pass_dataset('the folder that holds lipread_mp4/')}"
        )
    clips = [
        ClipFiles(key=f"{word.name}/{split}/{video.stem}", video=video, speaker="", split=split)
        for word in sorted(p for p in videos.iterdir() if p.is_dir())
        for split in SPLITS
        for video in sorted((word / split).glob("*.mp4"))
        if not video.name.startswith(".")
    ]
    if not clips:
        raise DatasetError(f"{videos}: no <WORD>/{{train,val,test}}/*.mp4 clips found. Check the LRW layout.")
    return clips


class LRWDataModule(TalkingFaceDataModule):
    """LRW clips: whole 29-frame clips with template-aligned faces by default (E2E-NR's setting).

    See `TalkingFaceDataModule` for the arguments.
    """

    layout = "lrw"
    native_fps = LRW_FPS
    min_frames = LRW_FRAMES

    def scan(self, root: Path) -> list[ClipFiles]:
        return scan_lrw(root)
