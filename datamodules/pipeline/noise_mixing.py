"""Mixing speech with noise at an exact SNR, and the SNR levels E2E-NR mixes at.

A mixture is `y = s + k·n` with `k = sqrt(Σs² / (Σn² · 10^(SNR/10)))`, the powers taken over the whole clip.
The gain is computed in float64, so `10·log10(Σs² / Σ(k·n)²)` equals the asked SNR to rounding.
Peak-normalising `y` afterwards scales speech and noise alike and leaves the SNR alone.

The noise itself comes from a `NoiseBank` (`noise_bank.py`). Shapes: every waveform is 1-D, `(T,)`, mono.
"""

from __future__ import annotations

import math

import numpy as np

TRAIN_SNRS_DB: tuple[float, ...] = tuple(float(snr) for snr in range(-6, 31, 3))  # −6, −3, …, 30: 13 levels
EVAL_SNRS_DB: tuple[float, ...] = tuple(float(snr) for snr in range(-10, 31))  # −10, −9, …, 30: 41 levels


def loop_to_length(noise: np.ndarray, length: int) -> np.ndarray:
    """`(N,)` → `(length,)`: `noise` repeated end to end, then cut (a plain crop when N ≥ length)."""
    noise = np.asarray(noise)
    if noise.ndim != 1 or noise.size == 0:
        raise ValueError(f"noise must be a non-empty 1-D array, got shape {noise.shape}")
    repeats = -(-length // noise.size)
    return np.tile(noise, max(repeats, 1))[:length]


def mixing_gain(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """The k that puts `noise` at `snr_db` below `speech`: `sqrt(Σs² / (Σn² · 10^(snr/10)))`, in float64.

    `noise` is looped or cropped to the speech's length first, as in `mix_at_snr`. k is 0 for silent
    speech. Raises ValueError when the noise is silent (no gain can reach a finite SNR).
    """
    speech64, noise64 = _as_mixable(speech, noise)
    return _gain(speech64, noise64, snr_db)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`speech + k·noise` with k from `mixing_gain`, so the mixture's SNR is exactly `snr_db`.

    Args:
        speech: `(T,)` float waveform.
        noise: `(N,)` float waveform; cropped to its first T samples, or looped when N < T.
        snr_db: any finite SNR in dB.
    Returns:
        `(T,)` mixture, computed in float64 and returned as float64 for float64 speech, float32 otherwise.
        It is not clipped or normalised (see `peak_normalise`). Silent speech (all zeros) has no SNR;
        the formula then gives k = 0 and the speech comes back unchanged.
    Raises:
        ValueError: for non-1-D inputs, an empty or silent noise, or a non-finite SNR.
    """
    speech64, noise64 = _as_mixable(speech, noise)
    mixture = speech64 + _gain(speech64, noise64, snr_db) * noise64
    return mixture.astype(_output_dtype(speech), copy=False)


def peak_normalise(wave: np.ndarray) -> np.ndarray:
    """`wave / max|wave|` (peak 1), same float dtype; an all-zero or empty wave comes back unchanged."""
    wave = np.asarray(wave)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return wave.astype(_output_dtype(wave), copy=True)
    return (wave.astype(np.float64) / peak).astype(_output_dtype(wave))


def _as_mixable(speech: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 `(T,)`, the noise fitted to the speech's length."""
    speech = np.asarray(speech)
    if speech.ndim != 1:
        raise ValueError(f"speech must be a 1-D waveform, got shape {speech.shape}")
    return speech.astype(np.float64), loop_to_length(noise, len(speech)).astype(np.float64)


def _gain(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    if not math.isfinite(snr_db):
        raise ValueError(f"the SNR must be finite, got {snr_db} dB")
    if speech.size == 0:
        return 0.0
    noise_energy = float(noise @ noise)
    if not noise_energy > 0.0:
        raise ValueError("the noise is silent over the speech's length: no gain can bring it to an SNR")
    return math.sqrt(float(speech @ speech) / (noise_energy * 10.0 ** (snr_db / 10.0)))


def _output_dtype(wave: np.ndarray) -> np.dtype:
    return wave.dtype if wave.dtype in (np.float32, np.float64) else np.dtype(np.float32)
