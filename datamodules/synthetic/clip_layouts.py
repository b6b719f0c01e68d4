"""Helpers for writers of many talking-head clips, and the AVSpeech layout (a csv of YouTube segments,
mixed frame rates, rows whose clip was never downloaded). TCD-TIMIT is in `tcd_timit.py`.

Clips are rendered on a few threads: every clip draws from its own generator and writes its own files,
so the bytes do not depend on the order the threads finish in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..pipeline.video_writer import write_mp4
from .broken import BrokenFile, _record, smooth_noise_image, write_broken_video
from .faces import FACE_BOX, FRAME_WINDOW, render_frames
from .layouts import per_item_rngs, with_progress, youtube_id
from .speakers import FRAME_OFFSET_LIMIT, SpeakerProfile, speakers_for_split
from .speech import synthesize_utterance
from .truth import talking_frames, write_truth
from .video import video_frame_size, write_bytes

MAX_THREADS = 4


def run_jobs(function: Callable[..., object], jobs: Sequence[tuple], show: bool, description: str) -> None:
    """`function(*job)` for every job, on up to MAX_THREADS threads; the first failure is raised."""
    pool = ThreadPoolExecutor(min(MAX_THREADS, os.cpu_count() or 1))
    try:
        futures = [pool.submit(function, *job) for job in jobs]
        for future in with_progress(futures, show, description, "clip"):
            future.result()
    finally:
        pool.shutdown(cancel_futures=True)


def write_talking_clip(
    path: Path,
    profile: SpeakerProfile,
    num_frames: int,
    fps: int | Fraction,
    frame_size: int | tuple[int, int],
    sample_rate: int,
    rng: np.random.Generator,
    articulation: str = "jaw",
    root: Path | None = None,
) -> np.ndarray:
    """An mp4 of `profile` speaking, lips following the speech; returns the audio `(T,)`. With the `lips`
    articulation the clip's truth goes under `root` (`truth.py`)."""
    utterance = synthesize_utterance(
        profile, float(num_frames / fps), sample_rate, rng, articulation=articulation
    )
    frames, openings, widths = talking_frames(profile, utterance, float(fps), num_frames, frame_size, rng)
    write_mp4(path, frames, fps, utterance.wave, sample_rate)
    if articulation == "lips" and root is not None:
        write_truth(root, path, profile.name, openings, widths)
    return utterance.wave


def no_face_frames(rng: np.random.Generator, num_frames: int, frame_size: tuple[int, int]) -> np.ndarray:
    """`(T, H, W, 3)` uint8: one smooth-noise image fading into another, no face anywhere."""
    height, width = frame_size
    first, last = (smooth_noise_image(rng, max(frame_size))[:height, :width].astype(np.float32) for _ in "ab")
    t = np.linspace(0.0, 1.0, num_frames, dtype=np.float32)[:, None, None, None]
    return np.rint((1 - t) * first + t * last).astype(np.uint8)


def framed(
    profile: SpeakerProfile, face_fraction: float, offset: tuple[float, float] | None = None
) -> SpeakerProfile:
    """`profile` filmed so that its face box spans `face_fraction` of the frame's shorter side, its centre
    `offset` (x, y) from the frame centre in fractions of that side (None keeps the speaker's).

    The camera framing, not the speaker, sets face size and position in these videos, so the voice-tied
    face scale is replaced for the clip; every other face parameter is kept.
    """
    scale = face_fraction * FRAME_WINDOW / (FACE_BOX[2] - FACE_BOX[0])
    return replace(profile, scale=scale, frame_offset=profile.frame_offset if offset is None else offset)


# ----------------------------------------------------------------------------- AVSpeech

AVSPEECH_SAMPLE_RATE = 44_100
AVSPEECH_SPLITS = ("train", "test")
BROKEN_SECONDS = 2


@dataclass(frozen=True)
class AvSpeechSize:
    """Clips on disk per split, plus `missing_rows` train rows whose clip was never downloaded. Frames are
    `frame_px` square; the face box spans `face_fraction` (min, max) of the side."""

    speakers: int
    train_clips: int
    test_clips: int
    missing_rows: int
    seconds: tuple[float, float]
    frame_px: int
    face_fraction: tuple[float, float] = (0.58, 0.72)


AVSPEECH_SIZES = {
    "tiny": AvSpeechSize(
        speakers=4, train_clips=4, test_clips=2, missing_rows=1, seconds=(2.0, 3.0), frame_px=160
    ),
    # 384 px frames keep every face box ≥ 200 px, the smallest face A2V keeps.
    "demo": AvSpeechSize(
        speakers=12, train_clips=32, test_clips=8, missing_rows=2, seconds=(3.0, 6.0), frame_px=384
    ),
}


@dataclass(frozen=True)
class Segment:
    """One csv row: frames [start_frame, start_frame + frames) of a video at `fps`."""

    youtube_id: str
    start_frame: int
    frames: int
    fps: int
    speaker: int
    face_fraction: float
    offset: tuple[float, float]

    def start(self) -> str:
        return f"{self.start_frame / self.fps:.6f}"

    def row(self, face_x: float | None = None, face_y: float | None = None) -> str:
        """The csv line; the face centre defaults to where the clip's framing puts it (square frames)."""
        end = (self.start_frame + self.frames) / self.fps
        face_x = 0.5 + self.offset[0] if face_x is None else face_x
        face_y = 0.5 + self.offset[1] if face_y is None else face_y
        return f"{self.youtube_id},{self.start()},{end:.6f},{face_x:.6f},{face_y:.6f}\n"


def avspeech_clip_path(root: Path, youtube_id_: str, start: str) -> Path:
    return root / "clips" / f"{youtube_id_}_{start}.mp4"


def _plan_segments(
    count: int, first_video: int, speakers: range, size: AvSpeechSize, rng: np.random.Generator
) -> tuple[list[Segment], int]:
    """`count` segments of videos numbered from `first_video`, each video spoken by one of `speakers`
    (indices); returns them and the next video number.

    Even videos give 2–3 segments at 25 fps, odd ones 1 segment at 30 fps: about a third of the clips
    are 30 fps, and splits must group segments by video.
    """
    segments, video = [], first_video
    while len(segments) < count:
        fps, repeats = (30, 1) if video % 2 else (25, int(rng.integers(2, 4)))
        name = youtube_id(rng)
        speaker, start = int(rng.integers(speakers.start, speakers.stop)), float(rng.uniform(0.0, 120.0))
        for _ in range(min(repeats, count - len(segments))):
            start_frame, frames = round(start * fps), round(float(rng.uniform(*size.seconds)) * fps)
            offset = tuple(float(v) for v in rng.uniform(-FRAME_OFFSET_LIMIT, FRAME_OFFSET_LIMIT, size=2))
            segments.append(
                Segment(
                    name, start_frame, frames, fps, speaker, float(rng.uniform(*size.face_fraction)), offset
                )
            )
            start = (start_frame + frames) / fps + float(rng.uniform(2.0, 60.0))
        video += 1
    return segments, video


def write_avspeech(
    root: Path,
    speakers: Sequence[SpeakerProfile],
    size_config: AvSpeechSize,
    rng: np.random.Generator,
    progress: bool = False,
    articulation: str = "jaw",
) -> dict[str, int]:
    """AVSpeech (downloaded segments)::

        avspeech_{train,test}.csv        no header: youtube_id,start_s,end_s,face_x,face_y
        clips/<youtube_id>_<start_s>.mp4 H.264 (25 or 30 fps) + AAC at 44.1 kHz, one speaker, face large

    Times are written `%.6f` (the file name uses the csv's start text); face_x, face_y are the face centre
    over the frame width and height. A video may give several rows; some train rows have no clip.
    """
    size, (plan_rng, clip_rng) = size_config, rng.spawn(2)
    train_speakers, test_speakers = (
        speakers_for_split(len(speakers), s, articulation) for s in ("train", "test")
    )
    train, video = _plan_segments(size.train_clips, 0, train_speakers, size, plan_rng)
    test, video = _plan_segments(size.test_clips, video, test_speakers, size, plan_rng)
    missing, _ = _plan_segments(size.missing_rows, video, train_speakers, size, plan_rng)
    rows = {split: [s.row() for s in segments] for split, segments in zip(AVSPEECH_SPLITS, (train, test))}
    for segment in missing:
        rows["train"].insert(int(plan_rng.integers(len(rows["train"]) + 1)), segment.row())
    for split in AVSPEECH_SPLITS:
        write_bytes(root / f"avspeech_{split}.csv", "".join(rows[split]).encode())

    def write_clip(segment: Segment, segment_rng: np.random.Generator) -> None:
        write_talking_clip(
            avspeech_clip_path(root, segment.youtube_id, segment.start()),
            framed(speakers[segment.speaker], segment.face_fraction, segment.offset),
            segment.frames,
            segment.fps,
            size.frame_px,
            AVSPEECH_SAMPLE_RATE,
            segment_rng,
            articulation,
            root,
        )

    run_jobs(write_clip, per_item_rngs(clip_rng, train + test), progress, "avspeech")
    return {
        "speakers": len(speakers),
        "videos": len({s.youtube_id for s in train + test + missing}),
        "clips": len(train) + len(test),
        "rows": len(train) + len(test) + len(missing),
    }


def _append_row(root: Path, split: str, row: str) -> None:
    csv = root / f"avspeech_{split}.csv"
    write_bytes(csv, csv.read_bytes() + row.encode())


def write_broken_avspeech(
    root: Path, speakers: Sequence[SpeakerProfile], rng: np.random.Generator
) -> list[BrokenFile]:
    """truncated_video, two_faces (two speakers side by side) and no_face_video clips, each with its
    train csv row so a loader tries them."""
    good = sorted((root / "clips").glob("*.mp4"))[0]
    height, width = video_frame_size(good)
    fps, frames = 25, 25 * BROKEN_SECONDS
    segments = [Segment(youtube_id(rng), 0, frames, fps, 0, 0.0, (0.0, -0.05)) for _ in range(3)]
    paths = [avspeech_clip_path(root, s.youtube_id, s.start()) for s in segments]
    entries = write_broken_video(root, good, paths[0])

    def two_faces(path: Path) -> None:
        halves = [
            render_frames(framed(speaker, 0.75, (0.0, 0.0)), np.zeros(frames), (height, width // 2), rng)
            for speaker in (speakers[0], speakers[1 % len(speakers)])
        ]
        speech = synthesize_utterance(speakers[0], BROKEN_SECONDS, AVSPEECH_SAMPLE_RATE, rng).wave
        write_mp4(path, np.concatenate(halves, axis=2), fps, speech, AVSPEECH_SAMPLE_RATE)

    def no_face(path: Path) -> None:
        speech = synthesize_utterance(speakers[0], BROKEN_SECONDS, AVSPEECH_SAMPLE_RATE, rng).wave
        write_mp4(path, no_face_frames(rng, frames, (height, width)), fps, speech, AVSPEECH_SAMPLE_RATE)

    entries += [
        _record(root, paths[1], "two_faces", two_faces),
        _record(root, paths[2], "no_face_video", no_face),
    ]
    for segment, centre in zip(segments, [(None, None), (0.25, 0.5), (None, None)]):
        _append_row(root, "train", segment.row(*centre))  # the two-face row points at the left face
    return entries
