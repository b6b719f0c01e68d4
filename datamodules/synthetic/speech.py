"""Speech-like audio by source–filter synthesis, with the mouth opening that goes with it.

A glottal pulse train at the speaker's pitch (with vibrato, jitter and a slow intonation contour) is
passed through one formant filter per vowel; syllables gate the vowel outputs with raised-cosine
envelopes, some syllables start with a short noise burst (a fricative), and words are separated by
pauses. The same envelopes, weighted by how open each vowel is, give the per-sample mouth opening, so a
model can learn lip-sync from the audio. Everything is vectorised over samples: a 5 s utterance at
16 kHz takes about 30 ms.

Two articulations (`ARTICULATIONS`):
- `jaw` (the demo data's so far): open vowels are louder, so loudness alone tells the mouth's opening, and
  only the jaw moves;
- `lips`: each syllable's loudness is drawn apart from its vowel, vowels also set the lips' width (spread for
  i/e, rounded for o/u, neutral for the open a), and bilabial onsets (p/b) close the lips before the vowel
  and release them with a burst. Tracking loudness then tells little about the mouth: a model has to hear
  which vowel and which onset it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import signal

from .speakers import SpeakerProfile

VOWELS = ("a", "e", "i", "o", "u")
# F1..F4 in Hz of an adult male voice (classic vowel-chart averages); scaled by the speaker's tract.
VOWEL_FORMANTS_HZ = np.array(
    [
        [730, 1090, 2440, 3400],
        [530, 1840, 2480, 3500],
        [270, 2290, 3010, 3700],
        [570, 840, 2410, 3300],
        [300, 870, 2240, 3300],
    ],
    dtype=np.float64,
)
FORMANT_BANDWIDTHS_HZ = np.array([80, 100, 140, 200], dtype=np.float64)
FORMANT_GAINS = np.array([1.0, 0.5, 0.3, 0.15])  # parallel bank: higher formants stay visible in a mel
VOWEL_OPENNESS = np.array([1.0, 0.7, 0.4, 0.8, 0.45])  # jaw opening of a / e / i / o / u
# Lip width of a / e / i / o / u relative to the resting mouth (the `lips` articulation): spread, rounded.
VOWEL_WIDTH = np.array([1.0, 1.1, 1.18, 0.85, 0.78])
FRICATIVE_OPENNESS = 0.15
ARTICULATIONS = ("jaw", "lips")
ONSETS = ("none", "fricative", "bilabial")
BILABIAL_BURST_S = 0.012  # the release of a /p/ or /b/: a short broadband burst as the lips part
SYLLABLE_LOUDNESS = (0.5, 1.0)  # the `lips` articulation draws each syllable's loudness in this range
FRICATIVE_BAND_HZ = (3000.0, 7000.0)
VIBRATO_HZ = 5.5
GLOTTAL_OPEN_QUOTIENT = 0.6  # share of each pitch period the glottis is open
NOISE_FLOOR = 0.002  # background noise, so silences are not digital zeros


@dataclass(frozen=True)
class Syllable:
    """One planned syllable; times in seconds. The vowel follows an optional onset (`ONSETS`: a fricative's
    hiss, or a bilabial closure); `loudness` None makes it as loud as its vowel is open (`jaw`)."""

    start_s: float
    onset_s: float
    vowel_s: float
    vowel: int
    word: int
    onset: str = "none"
    loudness: float | None = None

    @property
    def end_s(self) -> float:
        return self.start_s + self.onset_s + self.vowel_s


@dataclass(frozen=True)
class Utterance:
    """Synthesised speech: `wave` `(T,)` float32 in [-1, 1], the mouth's `opening` `(T,)` float32 in [0, 1]
    and its lips' `width` `(T,)` float32 relative to rest (1 throughout for the `jaw` articulation)."""

    wave: np.ndarray
    mouth: np.ndarray
    sample_rate: int
    syllables: tuple[Syllable, ...]
    width: np.ndarray | None = None

    @property
    def seconds(self) -> float:
        return len(self.wave) / self.sample_rate

    def word_spans(self) -> list[tuple[float, float]]:
        """(start, end) in seconds of every word, in order, clipped to the utterance."""
        spans: dict[int, tuple[float, float]] = {}
        for s in self.syllables:
            first, _ = spans.get(s.word, (s.start_s, s.end_s))
            spans[s.word] = (first, s.end_s)
        return [(max(0.0, a), min(self.seconds, b)) for a, b in spans.values()]


def plan_speech(
    profile: SpeakerProfile,
    seconds: float,
    rng: np.random.Generator,
    words: Sequence[int] | None = None,
    start_s: float | None = None,
    articulation: str = "jaw",
) -> list[Syllable]:
    """Syllable timing for an utterance.

    Args:
        words: syllables per word; None draws words of 1–3 syllables until `seconds` is filled (at least
            one word, even when it runs past `seconds`).
        start_s: when the first word starts; None draws 0.05–0.25 s.
        articulation: "jaw" (40 % fricative onsets, loudness from the vowel) or "lips" (a third each of no
            onset, fricative and bilabial onsets, loudness drawn per syllable); see the module doc.
    """
    if articulation not in ARTICULATIONS:
        raise ValueError(f"articulation must be one of {ARTICULATIONS}, got {articulation!r}")
    t = float(rng.uniform(0.05, 0.25)) if start_s is None else start_s
    period = 1.0 / profile.syllable_rate_hz
    syllables: list[Syllable] = []
    word = 0
    while (words is None and (word == 0 or t < seconds - 0.4)) or (words is not None and word < len(words)):
        for _ in range(words[word] if words is not None else int(rng.integers(1, 4))):
            length = period * float(rng.uniform(0.8, 1.2))
            if articulation == "jaw":
                onset = "fricative" if rng.random() < 0.4 else "none"
                onset_s = float(rng.uniform(0.04, 0.08)) if onset != "none" else 0.0
                vowel, loudness = int(rng.integers(len(VOWELS))), None
            else:
                onset = ONSETS[int(rng.integers(len(ONSETS)))]
                onset_s = float(rng.uniform(0.04, 0.08)) if onset != "none" else 0.0
                vowel, loudness = int(rng.integers(len(VOWELS))), float(rng.uniform(*SYLLABLE_LOUDNESS))
            syllables.append(Syllable(t, onset_s, length - onset_s, vowel, word, onset, loudness))
            t += length
        t += float(rng.uniform(0.08, 0.3))  # pause between words
        word += 1
    return syllables


def retime(syllables: Sequence[Syllable], scale: float = 1.0, shift_s: float = 0.0) -> list[Syllable]:
    """The same plan with every time multiplied by `scale`, then moved `shift_s` seconds later."""
    return [
        replace(s, start_s=s.start_s * scale + shift_s, onset_s=s.onset_s * scale, vowel_s=s.vowel_s * scale)
        for s in syllables
    ]


@lru_cache(maxsize=64)
def _vowel_filters(vowel: int, formant_scale: float, sample_rate: int) -> tuple[np.ndarray, ...]:
    """One two-pole resonator per scaled formant, as `(1, 6)` sos with gain FORMANT_GAINS at its peak.

    The resonators run in parallel (summed), as in a parallel formant synthesiser, so every formant
    keeps its level instead of being buried under the skirts of the ones below it.
    """
    resonators = []
    formants = VOWEL_FORMANTS_HZ[vowel] * formant_scale
    for freq, bandwidth, level in zip(formants, FORMANT_BANDWIDTHS_HZ, FORMANT_GAINS):
        freq = min(freq, 0.45 * sample_rate)
        radius = np.exp(-np.pi * bandwidth / sample_rate)
        theta = 2 * np.pi * freq / sample_rate
        gain = level * (1 - radius) * np.sqrt(1 - 2 * radius * np.cos(2 * theta) + radius**2)
        resonators.append(np.array([[gain, 0.0, 0.0, 1.0, -2 * radius * np.cos(theta), radius**2]]))
    return tuple(resonators)


def _vowel_output(vowel: int, formant_scale: float, sample_rate: int, source: np.ndarray) -> np.ndarray:
    return sum(signal.sosfilt(sos, source) for sos in _vowel_filters(vowel, formant_scale, sample_rate))


@lru_cache(maxsize=8)
def _fricative_filter(sample_rate: int) -> np.ndarray:
    high = min(FRICATIVE_BAND_HZ[1], 0.45 * sample_rate)
    return signal.butter(4, (FRICATIVE_BAND_HZ[0], high), btype="bandpass", fs=sample_rate, output="sos")


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, knot_s: float) -> np.ndarray:
    """Unit-variance noise that varies on a `knot_s` time scale, linearly interpolated."""
    knots = np.arange(0.0, t[-1] + 2 * knot_s, knot_s)
    return np.interp(t, knots, rng.normal(size=len(knots)))


def _glottal_source(profile: SpeakerProfile, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Differentiated raised-cosine glottal flow at the speaker's varying pitch, unit RMS, `(T,)`."""
    declination = 0.04 * (1 - 2 * t / max(t[-1], 1e-3))  # pitch drifts down over the utterance
    contour = 1 + declination + 0.04 * _smooth_noise(rng, t, 0.25)
    wobble = np.sin(2 * np.pi * VIBRATO_HZ * t + rng.uniform(0, 2 * np.pi))
    vibrato = 2 ** (profile.vibrato_cents / 1200 * wobble)
    jitter = 1 + profile.jitter * _smooth_noise(rng, t, 0.01)
    f0 = profile.f0_hz * contour * vibrato * jitter
    phase = np.cumsum(f0) * (t[1] - t[0]) if len(t) > 1 else np.zeros_like(t)
    within = phase % 1.0
    flow = np.where(within < GLOTTAL_OPEN_QUOTIENT, np.sin(np.pi * within / GLOTTAL_OPEN_QUOTIENT) ** 2, 0.0)
    source = np.diff(flow, prepend=0.0)
    return source / (np.sqrt(np.mean(source**2)) + 1e-9)


def _raised_cosine(count: int) -> np.ndarray:
    return np.sin(np.pi * (np.arange(count) + 0.5) / max(count, 1)) ** 2


def _lay(track: np.ndarray, start: int, shape: np.ndarray) -> None:
    """Raise `track` to `shape` from sample `start` on, clipped to the track."""
    lo, hi = max(start, 0), min(start + len(shape), len(track))
    if lo < hi:
        track[lo:hi] = np.maximum(track[lo:hi], shape[lo - start : hi - start])


def _envelopes(syllables: Sequence[Syllable], n: int, sample_rate: int) -> dict[str, np.ndarray]:
    """Envelopes in [0, 1]: `vowels` `(V, T)`, each vowel's shape (what the mouth follows); `voiced` `(V, T)`,
    the same at each syllable's loudness (what is heard); `fricative` and `burst` `(T,)`, the onsets'."""
    tracks = {
        "vowels": np.zeros((len(VOWELS), n)),
        "voiced": np.zeros((len(VOWELS), n)),
        "fricative": np.zeros(n),
        "burst": np.zeros(n),
    }
    for s in syllables:
        onset_at, vowel_at = round(s.start_s * sample_rate), round((s.start_s + s.onset_s) * sample_rate)
        shape = _raised_cosine(round(s.end_s * sample_rate) - vowel_at)
        # Without a drawn loudness, open vowels are louder: loudness then tells the mouth's opening.
        loudness = 0.6 + 0.4 * VOWEL_OPENNESS[s.vowel] if s.loudness is None else s.loudness
        _lay(tracks["vowels"][s.vowel], vowel_at, shape)
        _lay(tracks["voiced"][s.vowel], vowel_at, loudness * shape)
        if s.onset == "fricative":
            _lay(tracks["fricative"], onset_at, _raised_cosine(vowel_at - onset_at))
        elif s.onset == "bilabial":  # closed lips, silent, then the release
            release = round(BILABIAL_BURST_S * sample_rate)
            _lay(tracks["burst"], vowel_at, np.exp(-np.arange(release) / max(release / 4, 1)))
    return tracks


def render_speech(
    profile: SpeakerProfile,
    syllables: Sequence[Syllable],
    seconds: float,
    sample_rate: int,
    rng: np.random.Generator,
) -> Utterance:
    """Synthesise a planned utterance of exactly `round(seconds * sample_rate)` samples; a plan drawn with
    the `lips` articulation (loudness per syllable) also sets the lips' width."""
    n = max(2, round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    tracks = _envelopes(syllables, n, sample_rate)
    source = _glottal_source(profile, t, rng) + profile.breathiness * rng.normal(size=n)
    voiced = np.zeros(n)
    for vowel in np.flatnonzero(tracks["vowels"].any(axis=1)):
        filtered = _vowel_output(int(vowel), profile.formant_scale, sample_rate, source)
        voiced += tracks["voiced"][vowel] * filtered / (np.sqrt(np.mean(filtered**2)) + 1e-9)
    hiss = signal.sosfilt(_fricative_filter(sample_rate), rng.normal(size=n))
    hiss *= 0.35 / (np.sqrt(np.mean(hiss**2)) + 1e-9)
    wave = voiced + tracks["fricative"] * hiss
    if tracks["burst"].any():
        wave += 0.5 * tracks["burst"] * rng.normal(size=n)
    wave *= float(rng.uniform(0.5, 0.9)) / (np.abs(wave).max() + 1e-9)
    wave += NOISE_FLOOR * rng.normal(size=n)
    mouth = VOWEL_OPENNESS @ tracks["vowels"] + FRICATIVE_OPENNESS * tracks["fricative"]
    lips = any(s.loudness is not None for s in syllables)
    width = (1.0 + (VOWEL_WIDTH - 1.0) @ tracks["vowels"]).astype(np.float32) if lips else None
    return Utterance(
        wave=np.clip(wave, -1.0, 1.0).astype(np.float32),
        mouth=np.clip(mouth, 0.0, 1.0).astype(np.float32),
        sample_rate=sample_rate,
        syllables=tuple(syllables),
        width=width,
    )


def synthesize_utterance(
    profile: SpeakerProfile,
    seconds: float,
    sample_rate: int,
    rng: np.random.Generator,
    words: Sequence[int] | None = None,
    articulation: str = "jaw",
) -> Utterance:
    """Speech of `profile` lasting `seconds`; `words` optionally fixes the syllables per word."""
    plan = plan_speech(profile, seconds, rng, words, articulation=articulation)
    return render_speech(profile, plan, seconds, sample_rate, rng)


def per_frame(track: np.ndarray, sample_rate: int, fps: float, num_frames: int, after: float) -> np.ndarray:
    """The mean of a per-sample `track` over each video frame's time span, `(num_frames,)` float32; frames
    past the end of the track get `after`."""
    edges = np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(np.int64)
    edges = np.minimum(edges, len(track))
    sums = np.concatenate([[0.0], np.cumsum(track, dtype=np.float64)])
    counts = np.diff(edges)
    means = (sums[edges[1:]] - sums[edges[:-1]]) / np.maximum(counts, 1)
    return np.where(counts > 0, means, after).astype(np.float32)


def mouth_opening(utterance: Utterance, fps: float, num_frames: int) -> np.ndarray:
    """Mean mouth opening over each video frame's time span: `(num_frames,)` float32 in [0, 1]; frames past
    the end of the audio get 0 (closed mouth)."""
    return per_frame(utterance.mouth, utterance.sample_rate, fps, num_frames, after=0.0)


def mouth_width(utterance: Utterance, fps: float, num_frames: int) -> np.ndarray:
    """Mean lip width relative to rest over each video frame's time span, `(num_frames,)` float32; 1 for a
    `jaw` utterance and past the end of the audio."""
    if utterance.width is None:
        return np.ones(num_frames, dtype=np.float32)
    return per_frame(utterance.width, utterance.sample_rate, fps, num_frames, after=1.0)
