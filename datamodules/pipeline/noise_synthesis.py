"""Generated noise: procedural stand-ins for the paper's training and held-out evaluation noise types.

Why it is built this way:

- **Unseen test noise.** The paper trains on 138 noise types and tests on 5 others. The generated
  training types (`TRAIN_NOISE_TYPES`) and the held-out evaluation types (`EVAL_NOISE_TYPES`, the
  paper's five names) share none; `generated_noise_bank` makes a `NoiseBank` of either set.
- **Offline stand-ins.** Sound Ideas cannot be downloaded here, so without the user's recordings
  (`noise_bank.noise_bank_from_folder`) noise is generated procedurally. Babble, speech-shaped and
  cafeteria noise are made from speech the caller passes in (other speakers' clips), which keeps the
  test speakers out of the noise.
- **Reproducible.** Every random choice takes an explicit `np.random.Generator`; nothing touches numpy's
  global state. A generated type depends only on (seed, type name), so adding a type changes no other.

Shapes: every waveform is 1-D, `(T,)`, mono, at the bank's sample rate.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence

import numpy as np
from scipy.signal.windows import tukey

from .audio import SILENCE_PEAK
from .noise_bank import NoiseBank

GENERATED_SECONDS = 5.0  # length of each generated recording; segments longer than this loop it
GENERATED_PEAK = 0.9  # generated recordings are peak-normalised to this
NOISE_FLOOR_DB = -40.0  # white floor under every generated type, so no segment is ever digital silence
MIN_SAMPLE_RATE = 4000


# ----------------------------------------------------------------------------------------------------
# Generated noise: small signal-building blocks
#
# Each builder returns an unnormalised float64 `(n,)`; `_finish` adds the floor and sets the peak.


def _coloured(
    rng: np.random.Generator, n: int, sample_rate: int, exponent: float, low_hz: float = 20.0
) -> np.ndarray:
    """Gaussian noise with power ∝ 1/f^exponent (flat below `low_hz`, no DC): 0 white, 1 pink, 2 brown."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    gain = np.maximum(freqs, low_hz) ** (-exponent / 2.0)
    gain[0] = 0.0
    return np.fft.irfft(spectrum * gain, n)


def _wander(
    rng: np.random.Generator, n: int, sample_rate: int, low: float, high: float, step_s: float
) -> np.ndarray:
    """`(n,)` a value drifting smoothly in [low, high]: random anchors every `step_s` s, smoothstep-joined."""
    anchors = rng.uniform(low, high, max(2, math.ceil(n / (step_s * sample_rate)) + 1))
    position = np.linspace(0.0, len(anchors) - 1.0, n)
    left = np.minimum(position.astype(int), len(anchors) - 2)
    frac = position - left
    smooth = frac * frac * (3.0 - 2.0 * frac)
    return anchors[left] * (1.0 - smooth) + anchors[left + 1] * smooth


def _phase(freq_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    """Instantaneous phase (rad) of a tone following `freq_hz` sample by sample."""
    return 2.0 * np.pi * np.cumsum(freq_hz) / sample_rate


def _harmonics(
    rng: np.random.Generator,
    phase: np.ndarray,
    top_hz: float,
    sample_rate: int,
    rolloff: float,
    max_count: int,
) -> np.ndarray:
    """Σ_h a_h sin(h·phase + φ_h), a_h ∝ h^−rolloff with random spread; harmonics kept below 0.45·rate."""
    count = max(1, min(max_count, int(0.45 * sample_rate // top_hz)))
    total = np.zeros_like(phase)
    for h in range(1, count + 1):
        amplitude = h**-rolloff * rng.uniform(0.5, 1.0)
        total += amplitude * np.sin(h * phase + rng.uniform(0.0, 2.0 * np.pi))
    return total


def _event_times(rng: np.random.Generator, n: int, sample_rate: int, rate_hz: float) -> np.ndarray:
    """Sorted start samples of a Poisson process at `rate_hz` events per second."""
    return np.sort(rng.integers(0, n, rng.poisson(rate_hz * n / sample_rate)))


def _place(out: np.ndarray, start: int, kernel: np.ndarray) -> None:
    """Add `kernel` into `out` from `start`, cut at the end."""
    stop = min(len(out), start + len(kernel))
    if stop > start:
        out[start:stop] += kernel[: stop - start]


def _decaying(
    rng: np.random.Generator, sample_rate: int, decay_s: float, freq_hz: float | None = None
) -> np.ndarray:
    """An exponentially decaying burst, 5 time constants long: white noise, or a tone ringing at `freq_hz`."""
    t = np.arange(max(1, int(5 * decay_s * sample_rate))) / sample_rate
    if freq_hz is None:
        carrier = rng.standard_normal(len(t))
    else:
        carrier = np.sin(2 * np.pi * freq_hz * t + rng.uniform(0, 2 * np.pi))
    return carrier * np.exp(-t / decay_s)


def _sine_modulation(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    depth: tuple[float, float],
    rate_hz: tuple[float, float],
) -> np.ndarray:
    """`(n,)` 1 + d·sin(2π f t + φ) with d, f and φ drawn uniformly (d and f from the given ranges)."""
    depth_value, rate_value, phase = rng.uniform(*depth), rng.uniform(*rate_hz), rng.uniform(0, 2 * np.pi)
    return 1.0 + depth_value * np.sin(2 * np.pi * rate_value * np.arange(n) / sample_rate + phase)


def _rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(wave * wave))) if wave.size else 0.0


def _unit_rms(wave: np.ndarray) -> np.ndarray:
    rms = _rms(wave)
    return wave / rms if rms > 0 else wave


def _finish(rng: np.random.Generator, wave: np.ndarray) -> np.ndarray:
    """No DC, a white floor `NOISE_FLOOR_DB` below the signal, peak `GENERATED_PEAK`, float32."""
    wave = wave - wave.mean()
    level = _rms(wave) or 1.0
    wave = wave + 10.0 ** (NOISE_FLOOR_DB / 20.0) * level * rng.standard_normal(len(wave))
    return (GENERATED_PEAK * wave / np.max(np.abs(wave))).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# Generated training types (none built from speech)


def _white(rng, n, sample_rate, donors):
    return rng.standard_normal(n)


def _pink(rng, n, sample_rate, donors):
    return _coloured(rng, n, sample_rate, 1.0)


def _brown(rng, n, sample_rate, donors):
    return _coloured(rng, n, sample_rate, 2.0)


def _hum(rng, n, sample_rate, donors):
    """Mains hum: 50 or 60 Hz (the fundamental strongest) and harmonics, with a slight level wobble."""
    mains = float(rng.choice([50.0, 60.0]))
    t = np.arange(n) / sample_rate
    tone = np.sin(2 * np.pi * mains * t + rng.uniform(0, 2 * np.pi))
    for h in range(2, min(12, int(0.45 * sample_rate // mains)) + 1):
        tone += rng.uniform(0.15, 0.6) / h * np.sin(2 * np.pi * h * mains * t + rng.uniform(0, 2 * np.pi))
    return tone * (1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t))


def _clicks(rng, n, sample_rate, donors):
    """Impulsive noise: single-sample clicks and short decaying bursts at random times and levels."""
    out = np.zeros(n)
    for start in _event_times(rng, n, sample_rate, rng.uniform(3.0, 12.0)):
        level = 10.0 ** rng.uniform(-1.0, 0.0) * rng.choice([-1.0, 1.0])
        if rng.random() < 0.5:
            out[start] += level
        else:
            _place(out, int(start), level * _decaying(rng, sample_rate, rng.uniform(0.001, 0.01)))
    return out


def _chirps(rng, n, sample_rate, donors):
    """Tone sweeps (exponential in frequency, 0.1–0.8 s, 100 Hz to 0.45·rate) separated by short gaps."""
    out = np.zeros(n)
    position = int(rng.integers(0, max(1, int(0.2 * sample_rate))))
    while position < n:
        length = max(2, int(rng.uniform(0.1, 0.8) * sample_rate))
        start_hz, stop_hz = np.exp(rng.uniform(np.log(100.0), np.log(0.45 * sample_rate), 2))
        freq = start_hz * (stop_hz / start_hz) ** (np.arange(length) / length)
        _place(out, position, tukey(length, 0.2) * np.sin(_phase(freq, sample_rate)))
        position += length + int(rng.uniform(0.0, 0.3) * sample_rate)
    return out


def _modulated(rng, n, sample_rate, donors):
    """Coloured noise (1/f^0.5 … 1/f²) under a periodic 0.5–8 Hz amplitude modulation and a slow drift."""
    base = _coloured(rng, n, sample_rate, rng.uniform(0.5, 2.0))
    modulation = _sine_modulation(rng, n, sample_rate, depth=(0.5, 0.95), rate_hz=(0.5, 8.0))
    return base * modulation * _wander(rng, n, sample_rate, 0.3, 1.0, 1.0)


def _engine(rng, n, sample_rate, donors):
    """A car-like engine: harmonics of an f0 drifting within 70–220 Hz, over a little pink noise."""
    low = rng.uniform(70.0, 110.0)
    f0 = _wander(rng, n, sample_rate, low, low * rng.uniform(1.3, 2.0), rng.uniform(0.5, 1.5))
    tones = _harmonics(rng, _phase(f0, sample_rate), f0.max(), sample_rate, rolloff=1.0, max_count=20)
    return _unit_rms(tones) + 0.15 * _unit_rms(_coloured(rng, n, sample_rate, 1.0))


# ----------------------------------------------------------------------------------------------------
# Generated evaluation types: stand-ins for the paper's five held-out noises


def _babble(rng, n, sample_rate, donors, talkers: tuple[int, int] = (4, 8)):
    """Several talkers at once, each a stream of random donor utterances and pauses at its own level."""
    out = np.zeros(n)
    for _ in range(int(rng.integers(talkers[0], talkers[1] + 1))):
        out += rng.uniform(0.5, 1.0) * _talker(rng, n, sample_rate, donors)
    return out


def _talker(rng, n, sample_rate, donors):
    """`(n,)` one talker: random utterances back to back with 50–400 ms pauses, from a random offset."""
    pieces, total = [], 0
    while total < 2 * n:
        utterance = donors[int(rng.integers(len(donors)))]
        pause = np.zeros(int(rng.uniform(0.05, 0.4) * sample_rate))
        pieces += [utterance, pause]
        total += len(utterance) + len(pause)
    stream = np.concatenate(pieces)
    start = int(rng.integers(len(stream) - n + 1))
    return stream[start : start + n]


def _speech_shaped(rng, n, sample_rate, donors):
    """Stationary noise with the donors' long-term average spectrum: white noise shaped in the FFT domain."""
    frame = 2 ** round(math.log2(0.032 * sample_rate))
    freqs, power = np.fft.rfftfreq(frame, 1.0 / sample_rate), _long_term_spectrum(donors, frame)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    gain = np.sqrt(np.interp(np.fft.rfftfreq(n, 1.0 / sample_rate), freqs, power))
    return np.fft.irfft(spectrum * gain, n)


def _long_term_spectrum(donors: Sequence[np.ndarray], frame: int) -> np.ndarray:
    """`(frame//2 + 1,)` mean Hann-windowed power spectrum over all half-overlapping frames of all donors."""
    window, hop = np.hanning(frame), frame // 2
    total, count = np.zeros(frame // 2 + 1), 0
    for donor in donors:
        padded = np.pad(donor, (0, max(0, frame - len(donor))))
        frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop]
        total += np.sum(np.abs(np.fft.rfft(frames * window, axis=1)) ** 2, axis=0)
        count += len(frames)
    return total / count


def _cafeteria(rng, n, sample_rate, donors):
    """Denser babble, a pink room tone, and clatter: ringing 1.5–7 kHz transients (cutlery, plates)."""
    talk = _unit_rms(_babble(rng, n, sample_rate, donors, talkers=(6, 10)))
    clatter = np.zeros(n)
    for start in _event_times(rng, n, sample_rate, rng.uniform(2.0, 5.0)):
        for _ in range(int(rng.integers(1, 4))):
            freq = rng.uniform(1500.0, min(7000.0, 0.45 * sample_rate))
            ring = _decaying(rng, sample_rate, rng.uniform(0.01, 0.06), freq)
            _place(clatter, int(start), 10.0 ** rng.uniform(0.0, 0.6) * ring)
    return talk + clatter + 0.2 * _unit_rms(_coloured(rng, n, sample_rate, 1.0))


def _motorcycle(rng, n, sample_rate, donors):
    """A low firing rate (22–55 Hz, revving) with many harmonics, exhaust pulses of noise, and throttle AM."""
    f0 = _wander(rng, n, sample_rate, 22.0, 55.0, rng.uniform(0.4, 1.0))
    phase = _phase(f0, sample_rate)
    tones = _harmonics(rng, phase, f0.max(), sample_rate, rolloff=0.7, max_count=40)
    exhaust = _coloured(rng, n, sample_rate, 1.0) * (0.5 + 0.5 * np.cos(phase)) ** 6
    wobble = _sine_modulation(rng, n, sample_rate, depth=(0.3, 0.6), rate_hz=(2.0, 6.0))
    throttle = _wander(rng, n, sample_rate, 0.5, 1.0, 1.0)
    return (_unit_rms(tones) + 0.7 * _unit_rms(exhaust)) * wobble * throttle


def _factory(rng, n, sample_rate, donors):
    """Machinery: a 20–30 Hz rotation with harmonics, 100/120 Hz electrical hum, a bearing whine, a brown
    floor, and periodic impacts (a press every 0.4–1.2 s) that ring at a structural resonance."""
    t = np.arange(n) / sample_rate
    rotation = rng.uniform(20.0, 30.0)
    machine = _harmonics(rng, 2 * np.pi * rotation * t, rotation, sample_rate, rolloff=1.0, max_count=8)
    machine += 0.5 * np.sin(2 * np.pi * float(rng.choice([100.0, 120.0])) * t)
    whine_hz = rng.uniform(1000.0, min(3000.0, 0.4 * sample_rate))
    machine += 0.2 * np.sin(2 * np.pi * whine_hz * t + 3.0 * np.sin(2 * np.pi * 0.3 * t))
    machine = _unit_rms(machine) + 0.3 * _unit_rms(_coloured(rng, n, sample_rate, 2.0))
    impacts = np.zeros(n)
    period, resonance = rng.uniform(0.4, 1.2) * sample_rate, rng.uniform(300.0, 1500.0)
    position = rng.uniform(0.0, period)
    while position < n:
        hit = 2.0 * _decaying(rng, sample_rate, 0.08, resonance)
        thud = _decaying(rng, sample_rate, rng.uniform(0.03, 0.08))  # never longer than the ring
        hit[: len(thud)] += thud
        _place(impacts, int(position), rng.uniform(2.0, 4.0) * hit / np.max(np.abs(hit)))
        position += period * (1.0 + 0.03 * rng.standard_normal())
    return machine + impacts


Builder = Callable[[np.random.Generator, int, int, list | None], np.ndarray]

_TRAIN_BUILDERS: dict[str, Builder] = {
    "white": _white,
    "pink": _pink,
    "brown": _brown,
    "hum": _hum,
    "clicks": _clicks,
    "chirps": _chirps,
    "modulated": _modulated,
    "engine": _engine,
}
_EVAL_BUILDERS: dict[str, Builder] = {
    "babble": _babble,
    "speech_shaped": _speech_shaped,
    "cafeteria": _cafeteria,
    "motorcycle": _motorcycle,
    "factory": _factory,
}
TRAIN_NOISE_TYPES: tuple[str, ...] = tuple(sorted(_TRAIN_BUILDERS))
EVAL_NOISE_TYPES: tuple[str, ...] = tuple(sorted(_EVAL_BUILDERS))  # the paper's five held-out noises
SPEECH_NOISE_TYPES = frozenset({"babble", "speech_shaped", "cafeteria"})  # built from caller-given speech


def generate_noise(
    type_name: str,
    sample_rate: int,
    num_samples: int,
    rng: np.random.Generator,
    speech: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """One generated recording of `type_name` (any of `TRAIN_NOISE_TYPES` or `EVAL_NOISE_TYPES`).

    Args:
        speech: `(T_i,)` utterances at `sample_rate`, required by babble, speech_shaped and cafeteria
            (use speakers outside the test set); ignored by the other types.
    Returns:
        `(num_samples,)` float32, peak `GENERATED_PEAK`, zero mean, never silent.
    """
    builders = {**_TRAIN_BUILDERS, **_EVAL_BUILDERS}
    if type_name not in builders:
        raise ValueError(f"unknown generated noise type {type_name!r}; known: {sorted(builders)}")
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(f"generated noise needs a sample rate ≥ {MIN_SAMPLE_RATE} Hz, got {sample_rate}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be ≥ 1, got {num_samples}")
    donors = _donors(speech, type_name) if type_name in SPEECH_NOISE_TYPES else None
    return _finish(rng, builders[type_name](rng, num_samples, sample_rate, donors))


def generated_noise_bank(
    kind: str,
    sample_rate: int,
    seed: int = 0,
    speech: Sequence[np.ndarray] | None = None,
    seconds: float = GENERATED_SECONDS,
) -> NoiseBank:
    """A bank of generated noise, one `seconds`-long recording per type, reproducible from `seed`.

    Args:
        kind: "train" (`TRAIN_NOISE_TYPES`) or "eval" (`EVAL_NOISE_TYPES`, disjoint from the training ones).
        sample_rate: 8000 for E2E-NR; any rate ≥ `MIN_SAMPLE_RATE`.
        seed: non-negative; each type's recording depends only on (seed, type name) and, for the
            speech-made types, on `speech`.
        speech: `(T_i,)` utterances at `sample_rate` from speakers outside the test set; "eval" needs them.
    Raises:
        ValueError: for an unknown kind, or "eval" without usable speech.
    """
    if kind not in ("train", "eval"):
        raise ValueError(f"kind must be 'train' or 'eval', got {kind!r}")
    names = TRAIN_NOISE_TYPES if kind == "train" else EVAL_NOISE_TYPES
    if kind == "eval":
        _donors(speech, "the evaluation bank")  # fail before generating anything
    num_samples = max(1, round(seconds * sample_rate))
    recordings = {
        name: [generate_noise(name, sample_rate, num_samples, _type_rng(seed, name), speech)]
        for name in names
    }
    return NoiseBank(recordings, sample_rate, source=f"generated {kind} noise (seed {seed})")


def _type_rng(seed: int, type_name: str) -> np.random.Generator:
    """A generator for one type that depends only on (seed, name); crc32 is stable across processes."""
    return np.random.default_rng([int(seed), zlib.crc32(type_name.encode())])


def _donors(speech: Sequence[np.ndarray] | None, what: str) -> list[np.ndarray]:
    """The usable utterances as float64 at unit RMS; ValueError when there are none."""
    hint = (
        "babble, speech_shaped and cafeteria noise are made from speech: pass other speakers' utterances "
        "(1-D float waveforms at the bank's sample rate) as `speech`"
    )
    if speech is None or len(speech) == 0:
        raise ValueError(f"{what} needs speech: {hint}")
    donors = []
    for wave in speech:
        wave = np.asarray(wave, dtype=np.float64)
        if wave.ndim != 1:
            raise ValueError(f"{what}: every speech waveform must be 1-D, got shape {wave.shape}")
        if not wave.size or not np.isfinite(wave).all():
            continue
        wave = wave - wave.mean()
        if np.max(np.abs(wave)) >= SILENCE_PEAK:
            donors.append(_unit_rms(wave))
    if not donors:
        raise ValueError(
            f"{what} needs speech, but all {len(speech)} waveforms given are silent, empty or "
            f"non-finite: {hint}"
        )
    return donors
