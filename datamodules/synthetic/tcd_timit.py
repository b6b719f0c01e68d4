"""Writer of the TCD-TIMIT layout: volunteers reading TIMIT sentences to a straight camera, filmed at
NTSC's 29.97 fps (exactly 30000/1001) with 48 kHz audio; some volunteers also have wav siblings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..pipeline.video_writer import write_mp4
from .broken import BrokenFile, _record, write_broken_video
from .clip_layouts import BROKEN_SECONDS, no_face_frames, run_jobs, write_talking_clip
from .layouts import per_item_rngs
from .speakers import SpeakerProfile
from .speech import synthesize_utterance
from .video import video_frame_size, write_wav

TCD_FPS = Fraction(30000, 1001)
TCD_SAMPLE_RATE = 48_000
TIMIT_SX_NUMBERS = (3, 452)  # TIMIT numbers its compact (sx) sentences 3–452 and its diverse (si) ones
TIMIT_SI_NUMBERS = (453, 2342)  # 453–2342; sa1 and sa2 are read by everyone
SENTENCE_ORDER = ("sa1", "si", "sx", "sa2")


@dataclass(frozen=True)
class TcdTimitSize:
    """One speaker per volunteer number; `frame_size` is (height, width), 16:9 like the 1080p originals."""

    volunteers: tuple[int, ...]
    sentences: int
    seconds: float
    frame_size: tuple[int, int]

    @property
    def speakers(self) -> int:
        return len(self.volunteers)


TCD_TIMIT_SIZES = {
    # The loader's default split is test = volunteers 50–59: both sides are covered.
    "tiny": TcdTimitSize(volunteers=(1, 2, 50, 51), sentences=2, seconds=2.0, frame_size=(180, 320)),
    "demo": TcdTimitSize(
        volunteers=(1, 2, 3, 4, 5, 50, 51, 52), sentences=6, seconds=3.0, frame_size=(360, 640)
    ),
}


def volunteer_id(number: int, profile: SpeakerProfile) -> str:
    """`01M`, `02F`…: the volunteer number and sex (from the voice's pitch)."""
    return f"{number:02d}{'F' if profile.f0_hz >= 165.0 else 'M'}"


def timit_sentences(count: int, rng: np.random.Generator) -> list[str]:
    """`count` distinct TIMIT sentence names: sa1, si<453–2342>, sx<3–452>, sa2, then si and sx."""
    names: list[str] = []
    while len(names) < count:
        n = len(names)
        kind = SENTENCE_ORDER[n] if n < len(SENTENCE_ORDER) else ("si", "sx")[n % 2]
        low, high = TIMIT_SI_NUMBERS if kind == "si" else TIMIT_SX_NUMBERS
        name = kind if kind.startswith("sa") else f"{kind}{int(rng.integers(low, high + 1))}"
        if name not in names:
            names.append(name)
    return names


def straightcam_folder(root: Path, volunteer: str) -> Path:
    return root / "volunteers" / volunteer / "Clips" / "straightcam"


def write_tcd_timit(
    root: Path,
    speakers: Sequence[SpeakerProfile],
    size_config: TcdTimitSize,
    rng: np.random.Generator,
    progress: bool = False,
    articulation: str = "jaw",
) -> dict[str, int]:
    """TCD-TIMIT volunteers, straight camera::

        volunteers/<01M>/Clips/straightcam/<sentence>.mp4   H.264 at 29.97 fps (30000/1001), 16:9, AAC 48 kHz
        volunteers/<01M>/Clips/straightcam/<sentence>.wav   same audio, 48 kHz wav: every other volunteer only

    Sentences are TIMIT's names (`sa1`, `si1234`, `sx56`); the face is near the frame centre.
    """
    jobs, frames = [], round(size_config.seconds * TCD_FPS)
    for position, ((number, profile), speaker_rng) in enumerate(
        per_item_rngs(rng, zip(size_config.volunteers, speakers))
    ):
        folder = straightcam_folder(root, volunteer_id(number, profile))
        names = timit_sentences(size_config.sentences, speaker_rng)
        jobs += [
            (folder / f"{name}.mp4", profile, position % 2 == 0, clip_rng)
            for name, clip_rng in per_item_rngs(speaker_rng, names)
        ]

    def write_clip(
        path: Path, profile: SpeakerProfile, with_wav: bool, clip_rng: np.random.Generator
    ) -> None:
        wave = write_talking_clip(
            path,
            profile,
            frames,
            TCD_FPS,
            size_config.frame_size,
            TCD_SAMPLE_RATE,
            clip_rng,
            articulation,
            root,
        )
        if with_wav:
            write_wav(path.with_suffix(".wav"), wave, TCD_SAMPLE_RATE)

    run_jobs(write_clip, jobs, progress, "tcd_timit")
    return {"volunteers": len(speakers), "videos": len(jobs), "wavs": sum(job[2] for job in jobs)}


def write_broken_tcd_timit(
    root: Path, speakers: Sequence[SpeakerProfile], rng: np.random.Generator
) -> list[BrokenFile]:
    """A truncated clip and a clip without a face among the first volunteer's sentences."""
    folder = sorted((root / "volunteers").iterdir())[0] / "Clips" / "straightcam"
    good = sorted(folder.glob("*.mp4"))[0]
    size, frames = video_frame_size(good), round(BROKEN_SECONDS * TCD_FPS)

    def no_face(path: Path) -> None:
        speech = synthesize_utterance(speakers[0], float(frames / TCD_FPS), TCD_SAMPLE_RATE, rng).wave
        write_mp4(path, no_face_frames(rng, frames, size), TCD_FPS, speech, TCD_SAMPLE_RATE)

    # si numbers stop at 2342, so these names cannot clash with a good sentence.
    return write_broken_video(root, good, folder / "si9998.mp4") + [
        _record(root, folder / "si9999.mp4", "no_face_video", no_face)
    ]
