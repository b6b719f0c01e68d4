"""Deliberately bad files, added next to good ones so the loaders' rejection paths can be tested.

Each writer returns `[{"path": relative path, "defect": name}]`, recorded in `.synthetic.json`. Defects:

    truncated_wav    a wav cut inside its header
    silent_wav       3 s of digital silence
    too_short_wav    0.2 s of speech
    no_face_image    a jpg of smooth noise, with no face in it
    junk_file        a `.DS_Store` among the media files
    truncated_video  a video cut in the middle of its data
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import ndimage

from .layouts import VOXCELEB_SAMPLE_RATE, face_folder, jpeg_bytes, speech_folder
from .speakers import SpeakerProfile
from .speech import plan_speech, render_speech, synthesize_utterance
from .video import write_bytes, write_wav

BrokenFile = dict[str, str]
DS_STORE_JUNK = b"\x00\x00\x00\x01Bud1" + bytes(64)  # the magic of a macOS folder-settings file


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def smooth_noise_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """`(size, size, 3)` uint8 blurred colour noise over a gradient: image-like, but no face."""
    noise = ndimage.gaussian_filter(rng.normal(size=(size, size, 3)), sigma=(size / 12, size / 12, 0))
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-9)
    gradient = np.linspace(0.0, 1.0, size)[None, :, None]
    return np.clip(255 * (0.6 * noise + 0.4 * gradient), 0, 255).astype(np.uint8)


def truncated(data: bytes, keep: int) -> bytes:
    return data[:keep]


def _record(root: Path, path: Path, defect: str, write: Callable[[Path], None]) -> BrokenFile:
    write(path)
    return {"path": path.relative_to(root).as_posix(), "defect": defect}


def write_broken_hq_voxceleb(
    root: Path, speakers: Sequence[SpeakerProfile], rng: np.random.Generator
) -> list[BrokenFile]:
    """Bad files among the first speaker's good ones (that speaker stays usable)."""
    profile = speakers[0]
    clip = sorted(p for p in speech_folder(root, profile).iterdir() if p.is_dir())[0]
    speech = synthesize_utterance(profile, 3.0, VOXCELEB_SAMPLE_RATE, rng).wave
    one_syllable = plan_speech(profile, 0.2, rng, words=[1], start_s=0.0)
    short = render_speech(profile, one_syllable, 0.2, VOXCELEB_SAMPLE_RATE, rng).wave
    faces = face_folder(root, profile)
    return [
        _record(
            root,
            clip / "00091.wav",
            "truncated_wav",
            lambda p: write_bytes(p, truncated(wav_bytes(speech, VOXCELEB_SAMPLE_RATE), 30)),
        ),
        _record(
            root,
            clip / "00092.wav",
            "silent_wav",
            lambda p: write_wav(p, np.zeros(3 * VOXCELEB_SAMPLE_RATE, np.float32), VOXCELEB_SAMPLE_RATE),
        ),
        _record(
            root, clip / "00093.wav", "too_short_wav", lambda p: write_wav(p, short, VOXCELEB_SAMPLE_RATE)
        ),
        _record(
            root,
            faces / "99.jpg",
            "no_face_image",
            lambda p: write_bytes(p, jpeg_bytes(smooth_noise_image(rng, 128))),
        ),
        _record(root, faces / ".DS_Store", "junk_file", lambda p: write_bytes(p, DS_STORE_JUNK)),
    ]


def write_broken_video(root: Path, good_video: Path, broken_video: Path) -> list[BrokenFile]:
    """A copy of `good_video` cut to half its bytes, and a `.DS_Store` beside it."""
    data = good_video.read_bytes()
    return [
        _record(
            root, broken_video, "truncated_video", lambda p: write_bytes(p, truncated(data, len(data) // 2))
        ),
        _record(
            root, broken_video.parent / ".DS_Store", "junk_file", lambda p: write_bytes(p, DS_STORE_JUNK)
        ),
    ]
