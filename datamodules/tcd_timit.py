"""TCD-TIMIT: 59 volunteers reading ~100 TIMIT sentences each, filmed at 29.97 fps (TCSAN's second dataset).

Layout read (either form)::

    <root>/volunteers/<ID>/Clips/straightcam/<sentence>.mp4
    <root>/volunteers/<ID>/straightcam/<sentence>.mp4
    … with the audio in the mp4, or in a sibling <sentence>.wav (preferred when present)
    <root>/splits/tcd_{train,test}.txt     optional: volunteer IDs per split, one per line

`<ID>` is the volunteer number and sex, e.g. `01M`, `59F`. Split by speaker (docs/tcsan.md):
test = volunteers 50–59, train = 01–49; validation is every 20th training clip.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import DatasetError, pass_dataset
from .talking_face import ClipFiles, TalkingFaceDataModule, every_nth_to_val

VOLUNTEER = re.compile(r"^(\d{2})[MF]$")
FIRST_TEST_VOLUNTEER = 50
TCD_FPS = "30000/1001"


def volunteer_split(root: Path, volunteer: str) -> str | None:
    files = {split: root / "splits" / f"tcd_{split}.txt" for split in ("train", "test")}
    if all(path.exists() for path in files.values()):
        listed = {name: split for split, path in files.items() for name in path.read_text().split()}
        return listed.get(volunteer)
    return "test" if int(VOLUNTEER.match(volunteer).group(1)) >= FIRST_TEST_VOLUNTEER else "train"


def _straightcam_clips(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*.mp4") if p.parent.name == "straightcam" and not p.name.startswith(".")
    )


def scan_tcd_timit(root: str | Path) -> list[ClipFiles]:
    root = Path(root)
    volunteers = root / "volunteers"
    if not volunteers.is_dir():
        raise DatasetError(
            f"{root}: no volunteers/ folder. {pass_dataset('the TCD-TIMIT root holding volunteers/')}"
        )
    clips = []
    for folder in sorted(p for p in volunteers.iterdir() if p.is_dir() and VOLUNTEER.match(p.name)):
        split = volunteer_split(root, folder.name)
        if split is None:
            continue
        for video in _straightcam_clips(folder):
            wav = video.with_suffix(".wav")
            clips.append(
                ClipFiles(
                    key=f"{folder.name}/{video.stem}",
                    video=video,
                    speaker=folder.name,
                    split=split,
                    audio=wav if wav.exists() else None,
                )
            )
    if not clips:
        raise DatasetError(
            f"{volunteers}: no <ID>/**/straightcam/*.mp4 clips found. Check the TCD-TIMIT layout."
        )
    return every_nth_to_val(clips)


class TCDTIMITDataModule(TalkingFaceDataModule):
    """TCD-TIMIT volunteers' straightcam clips at their native 29.97 fps (see `TalkingFaceDataModule`)."""

    layout = "tcd_timit"
    native_fps = TCD_FPS

    def scan(self, root: Path) -> list[ClipFiles]:
        return scan_tcd_timit(root)
