"""Writer of Wav2Pix's "Youtubers" layout: face crops paired by index with 1-s speech windows.

The public release stores every unique face several times, each copy paired with a different random 1-s
window of the same utterance (its augmentation). Its quirks are reproduced because loaders must cope with
them: the "png" files hold JPEG bytes, and their channels are stored in BGR order (OpenCV's `imwrite` of
an RGB array), so a loader has to swap R and B back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .broken import BrokenFile, smooth_noise_image, truncated
from .faces import render_face_crop
from .layouts import jpeg_bytes, per_item_rngs, with_progress
from .speakers import SpeakerProfile
from .speech import synthesize_utterance
from .video import write_bytes, write_wav

YOUTUBERS_SAMPLE_RATE = 16_000
WINDOW_SAMPLES = YOUTUBERS_SAMPLE_RATE  # every wav is exactly 1 s
YOUTUBERS_SPLITS = ("train", "test")
BROKEN_CROP_PX = 240


@dataclass(frozen=True)
class YoutubersSize:
    """Unique faces per youtuber in train and test, each stored `copies` times with its own 1-s window of
    one `utterance_seconds` utterance; crops are square, `crop_px` the (min, max) side."""

    speakers: int
    train_faces: int
    test_faces: int
    copies: int = 5
    crop_px: tuple[int, int] = (200, 290)
    utterance_seconds: float = 4.0


# "open" and "tiny_open" serve the open-set evaluation (`open_set_speakers`), which keeps whole youtubers out
# of training. With 10 of "open"'s 40 held out, the 30 left have as many training pairs as the demo's 10
# (1800), so the demo recipe's 10 epochs stay 500 batches; "tiny_open" is the smallest set with 2 youtubers
# to train on and 2 to hold out, for tests.
YOUTUBERS_SIZES = {
    "tiny": YoutubersSize(speakers=3, train_faces=3, test_faces=1),
    "tiny_open": YoutubersSize(speakers=4, train_faces=2, test_faces=1, copies=2),
    "demo": YoutubersSize(speakers=10, train_faces=36, test_faces=4),
    "open": YoutubersSize(speakers=40, train_faces=12, test_faces=4),
}


def youtuber_name(profile: SpeakerProfile) -> str:
    """Lowercase channel-like folder name, e.g. `demospeaker001` (the release uses `jaimealtozano`)."""
    return profile.name.replace("_", "").lower()


def youtuber_folder(root: Path, split: str, profile: SpeakerProfile) -> Path:
    return root / "dataset" / split / youtuber_name(profile)


def pair_paths(folder: Path, k: int) -> tuple[Path, Path]:
    """The face and the speech of pair `k`."""
    return folder / f"cropped_face_frame_{k}.png", folder / f"preprocessed_frame_{k}.wav"


def bgr_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes of `image` (RGB) with R and B swapped, as the release stores them."""
    return jpeg_bytes(np.ascontiguousarray(image[..., ::-1]))


def _write_split(
    folder: Path,
    profile: SpeakerProfile,
    unique_faces: int,
    size: YoutubersSize,
    rng: np.random.Generator,
    articulation: str,
) -> int:
    """`unique_faces` × `copies` pairs numbered 0, 1, … : copies of one face are consecutive."""
    k = 0
    for face_rng in rng.spawn(unique_faces):
        side = int(face_rng.integers(size.crop_px[0], size.crop_px[1] + 1))
        # Frames were grabbed from talking videos: the mouth is caught anywhere between closed and open.
        face = bgr_jpeg(render_face_crop(profile, float(face_rng.uniform(0.0, 0.6)), side, face_rng))
        speech = synthesize_utterance(
            profile, size.utterance_seconds, YOUTUBERS_SAMPLE_RATE, face_rng, articulation=articulation
        ).wave
        for _ in range(size.copies):
            start = int(face_rng.integers(len(speech) - WINDOW_SAMPLES + 1))
            image_path, wav_path = pair_paths(folder, k)
            write_bytes(image_path, face)
            write_wav(wav_path, speech[start : start + WINDOW_SAMPLES], YOUTUBERS_SAMPLE_RATE)
            k += 1
    return k


def write_youtubers(
    root: Path,
    speakers: Sequence[SpeakerProfile],
    size_config: YoutubersSize,
    rng: np.random.Generator,
    progress: bool = False,
    articulation: str = "jaw",
) -> dict[str, int]:
    """Wav2Pix's Youtubers dataset (public release)::

        dataset/{train,test}/<youtuber>/cropped_face_frame_<k>.png   JPEG bytes, BGR, square face crop
        dataset/{train,test}/<youtuber>/preprocessed_frame_<k>.wav   16 kHz mono 16-bit, exactly 1 s

    Pairs match by `k` (0, 1, … within a folder). Each unique face is stored `copies` times in a row
    (k … k+4), each copy with a different random 1-s window of one 4-s utterance of that youtuber.
    """
    counts = {"speakers": len(speakers), "unique_faces": 0, "pairs": 0}
    for profile, speaker_rng in with_progress(per_item_rngs(rng, speakers), progress, "youtubers"):
        for split, split_rng in zip(YOUTUBERS_SPLITS, speaker_rng.spawn(len(YOUTUBERS_SPLITS))):
            unique = size_config.train_faces if split == "train" else size_config.test_faces
            counts["pairs"] += _write_split(
                youtuber_folder(root, split, profile), profile, unique, size_config, split_rng, articulation
            )
            counts["unique_faces"] += unique
    return counts


def write_broken_youtubers(
    root: Path, speakers: Sequence[SpeakerProfile], rng: np.random.Generator
) -> list[BrokenFile]:
    """Bad pairs after the first youtuber's good train pairs (silent_wav, truncated_image, no_face_image,
    and missing_pair: a face whose wav was never written); the path recorded is the bad file's."""
    profile = speakers[0]
    folder = youtuber_folder(root, "train", profile)
    n = len(list(folder.glob("cropped_face_frame_*.png")))
    face = bgr_jpeg(render_face_crop(profile, 0.0, BROKEN_CROP_PX, rng))
    speech = synthesize_utterance(profile, 1.0, YOUTUBERS_SAMPLE_RATE, rng).wave
    silence = np.zeros(WINDOW_SAMPLES, np.float32)
    images = [face, truncated(face, len(face) // 2), bgr_jpeg(smooth_noise_image(rng, BROKEN_CROP_PX)), face]
    waves = [silence, speech, speech, None]
    defects = ["silent_wav", "truncated_image", "no_face_image", "missing_pair"]
    entries = []
    for k, (image, wave, defect) in enumerate(zip(images, waves, defects), start=n):
        image_path, wav_path = pair_paths(folder, k)
        write_bytes(image_path, image)
        if wave is not None:
            write_wav(wav_path, wave, YOUTUBERS_SAMPLE_RATE)
        bad = wav_path if defect == "silent_wav" else image_path
        entries.append({"path": bad.relative_to(root).as_posix(), "defect": defect})
    return entries
