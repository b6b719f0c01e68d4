"""Writers of the talking-head video layouts: LRW (word clips) and GRID (command sentences).

Frames show the whole head at the speaker's position, so the pipelines must detect and crop the face
themselves, as on the real data. The mouth follows the synthesised speech frame by frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from ..pipeline.video_writer import write_mp4, write_mpg
from .broken import BrokenFile, wav_bytes, write_broken_video
from .faces import render_frames
from .layouts import per_item_rngs, with_progress
from .speakers import SpeakerProfile, speakers_for_split
from .speech import Utterance, mouth_opening, plan_speech, render_speech, retime
from .truth import talking_frames, write_truth
from .video import video_frame_size, write_bytes, write_wav

FPS = 25

# ----------------------------------------------------------------------------- LRW

LRW_SAMPLE_RATE = 16_000
LRW_FRAMES = 29  # 1.16 s at 25 fps, the target word centred
LRW_SPLITS = ("train", "val", "test")
# Words of LRW's vocabulary with their syllable counts.
LRW_WORDS = {
    "ABOUT": 2,
    "BECAUSE": 2,
    "CHANGE": 1,
    "COUNTRY": 2,
    "DIFFERENT": 3,
    "FAMILY": 3,
    "GOVERNMENT": 3,
    "HOUSE": 1,
    "MAJORITY": 4,
    "NUMBER": 2,
    "PEOPLE": 2,
    "QUESTION": 2,
    "RIGHT": 1,
    "SCHOOL": 1,
    "THINK": 1,
    "WORLD": 1,
}


@dataclass(frozen=True)
class LrwSize:
    """`clips` per word for train, val and test; frames are `frame_px` square."""

    speakers: int
    words: int
    clips: tuple[int, int, int]
    frame_px: int


LRW_SIZES = {
    "tiny": LrwSize(speakers=20, words=3, clips=(2, 1, 1), frame_px=96),
    "demo": LrwSize(speakers=20, words=10, clips=(8, 2, 2), frame_px=256),
}


def _lrw_speech(
    profile: SpeakerProfile, syllables: int, rng: np.random.Generator, articulation: str
) -> tuple[Utterance, float]:
    """A clip of running speech whose middle word (`syllables` long) is centred; returns its duration."""
    seconds = LRW_FRAMES / FPS
    context = [int(rng.integers(1, 3)), syllables, int(rng.integers(1, 3))]
    plan = plan_speech(profile, seconds, rng, words=context, start_s=0.0, articulation=articulation)
    target = [s for s in plan if s.word == 1]
    centre = (target[0].start_s + target[-1].end_s) / 2
    plan = retime(plan, shift_s=seconds / 2 - centre)
    return render_speech(profile, plan, seconds, LRW_SAMPLE_RATE, rng), target[-1].end_s - target[0].start_s


def _lrw_metadata(word: str, duration_s: float) -> bytes:
    return f"Text:  {word}\nConference:  SYNTHETIC\n\nDuration: {duration_s:.2f} seconds\n".encode()


def lrw_clip_path(root: Path, word: str, split: str, number: int) -> Path:
    return root / "lipread_mp4" / word / split / f"{word}_{number:05d}.mp4"


def _write_lrw_clip(
    root: Path,
    path: Path,
    word: str,
    profile: SpeakerProfile,
    frame_px: int,
    rng: np.random.Generator,
    articulation: str,
) -> None:
    utterance, duration = _lrw_speech(profile, LRW_WORDS[word], rng, articulation)
    frames, openings, widths = talking_frames(profile, utterance, FPS, LRW_FRAMES, frame_px, rng)
    write_mp4(path, frames, FPS, utterance.wave, LRW_SAMPLE_RATE)
    write_bytes(path.with_suffix(".txt"), _lrw_metadata(word, duration))
    if articulation == "lips":
        write_truth(root, path, profile.name, openings, widths)


def write_lrw(
    root: Path,
    speakers: Sequence[SpeakerProfile],
    size_config: LrwSize,
    rng: np.random.Generator,
    progress: bool = False,
    articulation: str = "jaw",
) -> dict[str, int]:
    """LRW (Lip Reading in the Wild)::

        lipread_mp4/<WORD>/{train,val,test}/<WORD>_<00001>.mp4   25 fps, 29 frames, AAC audio at 16 kHz
        lipread_mp4/<WORD>/{train,val,test}/<WORD>_<00001>.txt   "Text:", "Duration: 0.38 seconds"…

    Each clip is spoken by a speaker drawn at random (LRW has no identity labels); for the `lips`
    articulation, val and test speakers never speak a training clip (`speakers_for_split`).
    """
    words = list(LRW_WORDS)[: size_config.words]
    jobs = [
        (word, split, number)
        for word in words
        for split, count in zip(LRW_SPLITS, size_config.clips)
        for number in range(1, count + 1)
    ]
    for (word, split, number), clip_rng in with_progress(per_item_rngs(rng, jobs), progress, "lrw", "clip"):
        pool = speakers_for_split(len(speakers), split, articulation)
        profile = speakers[int(clip_rng.integers(pool.start, pool.stop))]
        path = lrw_clip_path(root, word, split, number)
        _write_lrw_clip(root, path, word, profile, size_config.frame_px, clip_rng, articulation)
    return {"words": len(words), "videos": len(jobs)}


def write_broken_lrw(
    root: Path, speakers: Sequence[SpeakerProfile], rng: np.random.Generator
) -> list[BrokenFile]:
    """A truncated clip, a `.DS_Store`, and a clip re-encoded at 15 fps (`wrong_fps`: 17 frames, 1.16 s)."""
    word = next(iter(LRW_WORDS))
    good = lrw_clip_path(root, word, "train", 1)
    entries = write_broken_video(root, good, lrw_clip_path(root, word, "train", 99999))
    wrong_fps, wrong = 15, lrw_clip_path(root, word, "train", 99998)
    utterance, duration = _lrw_speech(speakers[0], LRW_WORDS[word], rng, "jaw")
    num_frames = round(utterance.seconds * wrong_fps)
    openings = mouth_opening(utterance, wrong_fps, num_frames)
    frames = render_frames(speakers[0], openings, video_frame_size(good), rng)
    write_mp4(wrong, frames, wrong_fps, utterance.wave, LRW_SAMPLE_RATE)
    write_bytes(wrong.with_suffix(".txt"), _lrw_metadata(word, duration))
    return entries + [{"path": wrong.relative_to(root).as_posix(), "defect": "wrong_fps"}]


# ----------------------------------------------------------------------------- GRID

GRID_SAMPLE_RATE = 25_000
GRID_VIDEO_AUDIO_RATE = 32_000  # MPEG-1 layer II has no 25 kHz mode
GRID_SECONDS = 3.0
GRID_FRAMES = 75
ALIGN_UNITS_PER_SECOND = 25_000  # GRID alignments count 1/1000 of a 25 fps frame
# GRID's grammar: command colour preposition letter digit adverb, with syllables per word.
GRID_GRAMMAR = (
    {"bin": 1, "lay": 1, "place": 1, "set": 1},
    {"blue": 1, "green": 1, "red": 1, "white": 1},
    {"at": 1, "by": 1, "in": 1, "with": 1},
    {letter: 1 for letter in "abcdefghijklmnopqrstuvxyz"},  # no "w": it is the only 3-syllable letter
    {
        "zero": 2,
        "one": 1,
        "two": 1,
        "three": 1,
        "four": 1,
        "five": 1,
        "six": 1,
        "seven": 2,
        "eight": 1,
        "nine": 1,
    },
    {"again": 2, "now": 1, "please": 1, "soon": 1},
)
DIGIT_CODES = {
    "zero": "z",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}


@dataclass(frozen=True)
class GridSize:
    """`frame_size` is (height, width); GRID's own videos are 288×360."""

    speakers: int
    utterances_per_speaker: int
    frame_size: tuple[int, int]


GRID_SIZES = {
    "tiny": GridSize(speakers=3, utterances_per_speaker=3, frame_size=(144, 180)),  # s3: 2 train + 1 val
    "demo": GridSize(speakers=6, utterances_per_speaker=10, frame_size=(288, 360)),
}


def grid_sentence(rng: np.random.Generator) -> list[str]:
    return [str(rng.choice(list(slot))) for slot in GRID_GRAMMAR]


def grid_utterance_id(words: Sequence[str]) -> str:
    """GRID's file name: first letters of the words, the digit as a numeral ("z" for zero): `bbaf2n`."""
    return "".join(DIGIT_CODES.get(word, word[0]) for word in words)


def _grid_speech(
    profile: SpeakerProfile, words: Sequence[str], rng: np.random.Generator, articulation: str
) -> Utterance:
    """The sentence between 0.4 s and at most 2.6 s of the 3 s clip, silence around it (as in GRID)."""
    syllables = [slot[word] for slot, word in zip(GRID_GRAMMAR, words)]
    plan = plan_speech(profile, GRID_SECONDS, rng, words=syllables, start_s=0.0, articulation=articulation)
    start = float(rng.uniform(0.4, 0.7))
    scale = min(1.0, (2.6 - start) / plan[-1].end_s)  # GRID speakers talk fast: squeeze slow speakers
    return render_speech(profile, retime(plan, scale, start), GRID_SECONDS, GRID_SAMPLE_RATE, rng)


def grid_alignment(utterance: Utterance, words: Sequence[str]) -> str:
    """`start end word` lines in GRID units: "sil" before and after, "sp" for pauses between words."""
    units = lambda seconds: int(round(seconds * ALIGN_UNITS_PER_SECOND))  # noqa: E731
    lines, cursor = [], 0
    for word, (start, end) in zip(words, utterance.word_spans()):
        if units(start) > cursor:
            lines.append((cursor, units(start), "sil" if cursor == 0 else "sp"))
        lines.append((units(start), units(end), word))
        cursor = units(end)
    lines.append((cursor, units(utterance.seconds), "sil"))
    return "".join(f"{a} {b} {w}\n" for a, b, w in lines)


def grid_paths(root: Path, speaker: str, utterance_id: str) -> tuple[Path, Path, Path]:
    """Video, 25 kHz audio and alignment of one GRID utterance."""
    return (
        root / speaker / f"{utterance_id}.mpg",
        root / "audio_25k" / speaker / f"{utterance_id}.wav",
        root / "align" / speaker / f"{utterance_id}.align",
    )


def _write_grid_utterance(
    root: Path,
    profile: SpeakerProfile,
    words: list[str],
    frame_size: tuple[int, int],
    rng: np.random.Generator,
    articulation: str,
) -> None:
    video, audio, align = grid_paths(root, f"s{profile.index + 1}", grid_utterance_id(words))
    utterance = _grid_speech(profile, words, rng, articulation)
    frames, openings, widths = talking_frames(profile, utterance, FPS, GRID_FRAMES, frame_size, rng)
    video_audio = signal.resample_poly(
        utterance.wave, GRID_VIDEO_AUDIO_RATE // 1000, GRID_SAMPLE_RATE // 1000
    )
    write_mpg(video, frames, FPS, video_audio, GRID_VIDEO_AUDIO_RATE)
    write_wav(audio, utterance.wave, GRID_SAMPLE_RATE)
    write_bytes(align, grid_alignment(utterance, words).encode())
    if articulation == "lips":
        write_truth(root, video, profile.name, openings, widths)


def write_grid(
    root: Path,
    speakers: Sequence[SpeakerProfile],
    size_config: GridSize,
    rng: np.random.Generator,
    progress: bool = False,
    articulation: str = "jaw",
) -> dict[str, int]:
    """GRID audio-visual corpus::

        s<N>/<utt>.mpg               MPEG-1, 25 fps, 3 s (75 frames), MPEG audio at 32 kHz
        audio_25k/s<N>/<utt>.wav     25 kHz mono 16-bit
        align/s<N>/<utt>.align       "start end word" in 1/1000 frame, sil/sp for silences

    `<utt>` is the sentence's code (e.g. `bbaf2n`, "bin blue at f two now"), unique per speaker.
    """
    for profile, speaker_rng in with_progress(per_item_rngs(rng, speakers), progress, "grid"):
        sentences: dict[str, list[str]] = {}
        while len(sentences) < size_config.utterances_per_speaker:
            words = grid_sentence(speaker_rng)
            sentences.setdefault(grid_utterance_id(words), words)
        for words, utterance_rng in per_item_rngs(speaker_rng, sentences.values()):
            _write_grid_utterance(root, profile, words, size_config.frame_size, utterance_rng, articulation)
    return {"speakers": len(speakers), "videos": len(speakers) * size_config.utterances_per_speaker}


def write_broken_grid(
    root: Path, speakers: Sequence[SpeakerProfile], rng: np.random.Generator
) -> list[BrokenFile]:
    """A truncated video, a `.DS_Store`, and an utterance whose 25 kHz wav stops after 1.0 s of the
    3 s video (`short_audio`; its .mpg and .align are complete)."""
    good = sorted((root / "s1").glob("*.mpg"))[0]
    entries = write_broken_video(root, good, good.with_name("zzzz9z.mpg"))
    words = grid_sentence(rng)
    while (root / "s1" / f"{grid_utterance_id(words)}.mpg").exists():
        words = grid_sentence(rng)
    _write_grid_utterance(root, speakers[0], words, video_frame_size(good), rng, "jaw")
    audio = grid_paths(root, "s1", grid_utterance_id(words))[1]
    wave, _ = sf.read(audio, dtype="int16")
    write_bytes(audio, wav_bytes(wave[:GRID_SAMPLE_RATE], GRID_SAMPLE_RATE))
    return entries + [{"path": audio.relative_to(root).as_posix(), "defect": "short_audio"}]
