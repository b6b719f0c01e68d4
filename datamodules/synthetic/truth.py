"""What a generated talking clip's mouth really did, frame by frame, for lip-sync measures.

A dataset generated with the `lips` articulation (see `speech.py`) holds, beside its real layout, one CSV
per clip under `<root>/.truth/`, at the clip's path relative to the root with `.csv` for its suffix: the
mouth's opening (0 closed … 1 widest) and the lips' width relative to rest in every video frame, after a
first line naming the speaker (`# speaker: spk03`), which layouts such as LRW do not record. No datamodule
reads it; the files of the real layout are unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .faces import render_frames
from .speakers import SpeakerProfile
from .speech import Utterance, mouth_opening, mouth_width
from .video import write_bytes

TRUTH_FOLDER = ".truth"


def truth_path(root: Path, clip: Path) -> Path:
    """Where the truth of `clip` (a file under `root`) lies."""
    return Path(root) / TRUTH_FOLDER / Path(clip).relative_to(root).with_suffix(".csv")


def talking_frames(
    profile: SpeakerProfile,
    utterance: Utterance,
    fps: float,
    num_frames: int,
    frame_size: int | tuple[int, int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clip's frames `(T, H, W, 3)` uint8 for `utterance`, with the per-frame opening and width `(T,)`
    they were rendered from."""
    openings = mouth_opening(utterance, fps, num_frames)
    widths = mouth_width(utterance, fps, num_frames)
    lips = None if utterance.width is None else widths
    return render_frames(profile, openings, frame_size, rng, lips), openings, widths


SPEAKER_LINE = "# speaker: "


def write_truth(root: Path, clip: Path, speaker: str, openings: np.ndarray, widths: np.ndarray) -> None:
    rows = "".join(f"{k},{o:.4f},{w:.4f}\n" for k, (o, w) in enumerate(zip(openings, widths)))
    write_bytes(truth_path(root, clip), f"{SPEAKER_LINE}{speaker}\nframe,opening,width\n{rows}".encode())


def read_truth(root: Path, clip: Path) -> tuple[np.ndarray, np.ndarray]:
    """(opening, width) `(T,)` float32 of a clip of a `lips` dataset."""
    table = np.loadtxt(truth_path(root, clip), delimiter=",", skiprows=2, ndmin=2)
    return table[:, 1].astype(np.float32), table[:, 2].astype(np.float32)


def truth_speaker(root: Path, clip: Path) -> str:
    """Who speaks a clip of a `lips` dataset."""
    with open(truth_path(root, clip)) as handle:
        return handle.readline().removeprefix(SPEAKER_LINE).strip()
