"""Writers of the still-image + speech layout (HQ-VoxCeleb) and helpers shared by every layout writer.

A writer is `write_<layout>(root, speakers, size_config, rng, progress=False) -> counts`: it fills `root`
with files in the real dataset's on-disk layout and returns how many of each kind it wrote. Randomness
is split per speaker (`rng.spawn`), so one speaker's files do not depend on how many others there are.
"""

from __future__ import annotations

import io
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .faces import render_face_crop
from .speakers import SpeakerProfile
from .speech import synthesize_utterance
from .video import write_bytes, write_wav

T = TypeVar("T")
VOXCELEB_SAMPLE_RATE = 16_000
YOUTUBE_ID_ALPHABET = string.ascii_letters + string.digits + "-_"
JPEG_QUALITY = 90


def with_progress(items: Sequence[T], show: bool, description: str, unit: str = "speaker") -> Iterator[T]:
    """Iterate `items`, with a progress bar when `show`."""
    yield from tqdm(items, desc=description, unit=unit, disable=not show, leave=False)


def per_item_rngs(rng: np.random.Generator, items: Iterable[T]) -> list[tuple[T, np.random.Generator]]:
    """Pair every item with an independent child generator of `rng`."""
    items = list(items)
    return list(zip(items, rng.spawn(len(items))))


def youtube_id(rng: np.random.Generator) -> str:
    """An 11-character YouTube-like video id, as VoxCeleb's clip folders are named."""
    return "".join(YOUTUBE_ID_ALPHABET[i] for i in rng.integers(len(YOUTUBE_ID_ALPHABET), size=11))


def jpeg_bytes(image: np.ndarray) -> bytes:
    """`(H, W, 3)` uint8 → JPEG file contents."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- HQ-VoxCeleb


@dataclass(frozen=True)
class HqVoxCelebSize:
    """Counts for one HQ-VoxCeleb size. `seconds` is the (min, max) utterance length."""

    speakers: int
    faces_per_speaker: int
    face_px: int
    utterances_per_speaker: int
    seconds: tuple[float, float]
    utterances_per_clip: int = 4


HQ_VOXCELEB_SIZES = {
    # Loaders split identities by meta row (i % 10 == 8 test, 9 val): 20 speakers give 2 val, 2 test.
    "tiny": HqVoxCelebSize(
        speakers=20, faces_per_speaker=3, face_px=96, utterances_per_speaker=3, seconds=(2.0, 3.0)
    ),
    "demo": HqVoxCelebSize(
        speakers=100, faces_per_speaker=5, face_px=128, utterances_per_speaker=8, seconds=(2.0, 5.0)
    ),
    # The learning proof's: 30 held-out test identities, so that an interval that resamples identities is
    # not as wide as the demo's 10 make it (one identity is a tenth of R@1 there).
    "many_speakers": HqVoxCelebSize(
        speakers=300, faces_per_speaker=5, face_px=128, utterances_per_speaker=8, seconds=(2.0, 5.0)
    ),
}
VOX1_META_HEADER = ("VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set")


def voxceleb_id(profile: SpeakerProfile) -> str:
    """VoxCeleb1 ids start at id10001."""
    return f"id{10001 + profile.index}"


def face_folder(root: Path, profile: SpeakerProfile) -> Path:
    return root / "vox1" / "masked_faces" / profile.name


def speech_folder(root: Path, profile: SpeakerProfile) -> Path:
    return root / "vox1" / "wav" / voxceleb_id(profile)


def write_vox1_meta(root: Path, speakers: Sequence[SpeakerProfile]) -> None:
    """Tab-separated `vox1_meta.csv` with VoxCeleb's header, one row per speaker in speaker order."""
    rows = ["\t".join(VOX1_META_HEADER)]
    for profile in speakers:
        gender = "f" if profile.f0_hz >= 165.0 else "m"  # the usual pitch boundary between the sexes
        subset = "test" if profile.index % 10 == 8 else "dev"
        rows.append("\t".join((voxceleb_id(profile), profile.name, gender, "Synthetic", subset)))
    write_bytes(root / "vox1_meta.csv", ("\n".join(rows) + "\n").encode())


def _write_speaker_faces(
    root: Path, profile: SpeakerProfile, size: HqVoxCelebSize, rng: np.random.Generator
) -> int:
    folder = face_folder(root, profile)
    for k in range(size.faces_per_speaker):
        crop = render_face_crop(profile, 0.0, size.face_px, rng, masked=True)  # still photos: mouth closed
        write_bytes(folder / f"{k}.jpg", jpeg_bytes(crop))
    return size.faces_per_speaker


def _write_speaker_speech(
    root: Path, profile: SpeakerProfile, size: HqVoxCelebSize, rng: np.random.Generator, articulation: str
) -> int:
    """Utterances grouped into YouTube clips, numbered 00001… within each clip, as in VoxCeleb1."""
    clip = ""
    for k in range(size.utterances_per_speaker):
        if k % size.utterances_per_clip == 0:
            clip = youtube_id(rng)
        seconds = round(float(rng.uniform(*size.seconds)), 2)
        utterance = synthesize_utterance(
            profile, seconds, VOXCELEB_SAMPLE_RATE, rng, articulation=articulation
        )
        number = k % size.utterances_per_clip + 1
        path = speech_folder(root, profile) / clip / f"{number:05d}.wav"
        write_wav(path, utterance.wave, VOXCELEB_SAMPLE_RATE)
    return size.utterances_per_speaker


def write_hq_voxceleb(
    root: Path,
    speakers: Sequence[SpeakerProfile],
    size_config: HqVoxCelebSize,
    rng: np.random.Generator,
    progress: bool = False,
    articulation: str = "jaw",
) -> dict[str, int]:
    """HQ-VoxCeleb (SF2F's data)::

    vox1_meta.csv                                  VoxCeleb1 ID ↔ VGGFace1 ID (= face folder name)
    vox1/masked_faces/<Name>/<k>.jpg               aligned face crops, background whitened
    vox1/wav/<id1xxxx>/<youtube id>/<00001>.wav    16 kHz mono 16-bit utterances
    """
    write_vox1_meta(root, speakers)
    counts = {"speakers": len(speakers), "faces": 0, "utterances": 0}
    for profile, speaker_rng in with_progress(per_item_rngs(rng, speakers), progress, "hq_voxceleb"):
        face_rng, speech_rng = speaker_rng.spawn(2)
        counts["faces"] += _write_speaker_faces(root, profile, size_config, face_rng)
        counts["utterances"] += _write_speaker_speech(root, profile, size_config, speech_rng, articulation)
    return counts
