"""Synthetic speakers whose voice and face are tied together through a shared latent.

Each speaker draws four uniform latents in [0, 1) plus a binary voice class. Every latent drives one voice
parameter and one face parameter, monotonically, so a model can learn voice → face (SF2F's retrieval must
beat chance) and a test can check the tie by rank correlation:

    pitch      → f0_hz              ↔ hue_shift   (skin tint)
    tract      → formant_scale      ↔ scale       (shorter vocal tract → higher formants → smaller face)
    tempo      → syllable_rate_hz   ↔ saturation
    breath     → breathiness        ↔ brightness
    voice class→ vibrato and jitter ↔ hflip

Rotation and the face position in full frames are drawn independently: they only make identities distinct.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F0_RANGE_HZ = (85.0, 255.0)  # low male to high female speaking pitch
FORMANT_SCALE_RANGE = (0.85, 1.2)
SYLLABLE_RATE_RANGE_HZ = (3.0, 6.0)
BREATHINESS_RANGE = (0.05, 0.35)
HUE_SHIFT_RANGE_DEG = (-25.0, 25.0)
FACE_SCALE_RANGE = (1.2, 0.8)  # reversed on purpose: the largest formant scale gives the smallest face
SATURATION_RANGE = (0.6, 1.3)
BRIGHTNESS_RANGE = (0.8, 1.2)
ROTATION_LIMIT_DEG = 12.0
FRAME_OFFSET_LIMIT = 0.08  # of the frame side


@dataclass(frozen=True)
class SpeakerProfile:
    """One synthetic identity.

    Voice: `f0_hz` mean pitch; `formant_scale` multiplies every vowel formant (1 = adult male tract);
    `syllable_rate_hz` syllables per second; `vibrato_cents` depth of a 5.5 Hz pitch vibrato; `jitter`
    relative standard deviation of slow pitch perturbation; `breathiness` share of aspiration noise.
    Face: `scale` magnification of the face; `rotation_deg` in-plane rotation; `hue_shift` in degrees of
    hue; `saturation` and `brightness` multipliers; `hflip` mirror image; `frame_offset` (x, y) of the
    face centre from the frame centre in full video frames, as fractions of the frame side.
    """

    index: int
    name: str
    voice_class: int
    f0_hz: float
    formant_scale: float
    syllable_rate_hz: float
    vibrato_cents: float
    jitter: float
    breathiness: float
    scale: float
    rotation_deg: float
    hue_shift: float
    saturation: float
    brightness: float
    hflip: bool
    frame_offset: tuple[float, float]


def _lerp(bounds: tuple[float, float], t: float) -> float:
    return float(bounds[0] + (bounds[1] - bounds[0]) * t)


def speaker_name(index: int) -> str:
    """Folder-safe display name, e.g. `Demo_Speaker_007` for index 6."""
    return f"Demo_Speaker_{index + 1:03d}"


def _profile(index: int, latent: np.ndarray, voice_class: int, rng: np.random.Generator) -> SpeakerProfile:
    pitch, tract, tempo, breath = (float(v) for v in latent)
    # Pitch is spread on a log scale, as perceived.
    f0 = F0_RANGE_HZ[0] * (F0_RANGE_HZ[1] / F0_RANGE_HZ[0]) ** pitch
    return SpeakerProfile(
        index=index,
        name=speaker_name(index),
        voice_class=voice_class,
        f0_hz=float(f0),
        formant_scale=_lerp(FORMANT_SCALE_RANGE, tract),
        syllable_rate_hz=_lerp(SYLLABLE_RATE_RANGE_HZ, tempo),
        vibrato_cents=40.0 if voice_class else 8.0,
        jitter=0.012 if voice_class else 0.004,
        breathiness=_lerp(BREATHINESS_RANGE, breath),
        scale=_lerp(FACE_SCALE_RANGE, tract),
        rotation_deg=float(rng.uniform(-ROTATION_LIMIT_DEG, ROTATION_LIMIT_DEG)),
        hue_shift=_lerp(HUE_SHIFT_RANGE_DEG, pitch),
        saturation=_lerp(SATURATION_RANGE, tempo),
        brightness=_lerp(BRIGHTNESS_RANGE, breath),
        hflip=bool(voice_class),
        frame_offset=tuple(float(v) for v in rng.uniform(-FRAME_OFFSET_LIMIT, FRAME_OFFSET_LIMIT, size=2)),
    )


def make_speakers(count: int, seed: int) -> list[SpeakerProfile]:
    """`count` distinct speakers, identical for the same `seed`.

    Latents are stratified (one draw per equal-width bin, shuffled) so that even 20 speakers cover every
    parameter's whole range and no two speakers share a pitch or a face scale.
    """
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    rng = np.random.default_rng([seed, 0x5BEA])
    strata = (np.arange(count)[:, None] + rng.uniform(size=(count, 4))) / count
    latents = np.stack([rng.permutation(strata[:, k]) for k in range(4)], axis=1)
    voice_classes = rng.permutation(np.arange(count) % 2)
    return [_profile(i, latents[i], int(voice_classes[i]), rng) for i in range(count)]


# The `lips` data is what the learning proofs score, so its held-out clips are spoken by speakers that no
# training clip has; the `jaw` data keeps the speakers it always had (byte-identical files).
HELD_OUT_SPEAKER_SHARE = 0.2


def speakers_for_split(count: int, split: str, articulation: str) -> range:
    """Indices, among `count` speakers, of those who may speak a clip of `split` ("train" or a held-out
    split such as "val" or "test")."""
    if articulation == "jaw":
        return range(count)
    held_out = max(1, round(count * HELD_OUT_SPEAKER_SHARE))
    return range(count - held_out) if split == "train" else range(count - held_out, count)
