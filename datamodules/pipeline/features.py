"""Audio features, each computed once per utterance during preprocessing and cached.

Parameters live in small frozen dataclasses; their `asdict()` goes into the cache manifest, so a cache
made with other parameters is refused instead of being silently reused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import python_speech_features as psf

from .audio import checked_wave

INT16_SCALE = 32768.0


@dataclass(frozen=True)
class LogMelConfig:
    """SF2F's log-mel filterbank (from the authors' code).

    `python_speech_features.logfbank` defaults: 25 ms rectangular windows every 10 ms (100 frames/s),
    nfft 512, pre-emphasis 0.97, HTK mel scale 0-8000 Hz, natural log. The global mean/std were measured
    on int16-scaled audio, hence the rescaling in `log_mel`.
    """

    sample_rate: int = 16000
    n_mels: int = 40
    win_seconds: float = 0.025
    hop_seconds: float = 0.01
    nfft: int = 512
    mean: float = 10.9915
    std: float = 3.1661

    @property
    def padding_value(self) -> float:
        """What a zero raw log-energy becomes after normalisation (SF2F's right-padding value)."""
        return -self.mean / self.std


def log_mel(wave: np.ndarray, config: LogMelConfig) -> np.ndarray:
    """`(T,)` float32 speech in [-1, 1] → `(n_mels, frames)` float32 normalised log-mel.

    frames = 1 + ceil((T - win) / hop); 1 s at 16 kHz gives 99 frames.
    """
    energies = psf.logfbank(
        checked_wave(wave).astype(np.float64) * INT16_SCALE,
        samplerate=config.sample_rate,
        winlen=config.win_seconds,
        winstep=config.hop_seconds,
        nfilt=config.n_mels,
        nfft=config.nfft,
    )
    return ((energies.T - config.mean) / config.std).astype(np.float32)


MFCC_PIECE_FRAMES = 6000  # one minute at 100 frames/s: ≈ 40 MB of framed float64 samples


@dataclass(frozen=True)
class MfccConfig:
    """TCSAN's MFCCs: 13 cepstra from 26 filters every 10 ms, c0 (energy) dropped → 12."""

    sample_rate: int = 16000
    num_cepstra: int = 13
    n_filters: int = 26
    win_seconds: float = 0.025
    hop_seconds: float = 0.01
    nfft: int = 512
    pre_emphasis: float = 0.97
    lifter: int = 22
    drop_energy: bool = True

    @property
    def rate(self) -> int:
        """Feature columns per second."""
        return round(1.0 / self.hop_seconds)


def mfcc(wave: np.ndarray, config: MfccConfig, piece_frames: int = MFCC_PIECE_FRAMES) -> np.ndarray:
    """`(T,)` float32 speech in [-1, 1] → `(frames, 12)` float32, unstandardised (100 frames/s).

    Computed `piece_frames` frames at a time: the framing holds each frame's samples in float64 (≈ 10×
    the wave's size), which for an hour of speech would be gigabytes. Each piece starts on a frame
    boundary and is pre-emphasised with the sample before it, so the pieces equal one pass.
    """
    wave = checked_wave(wave)
    frame_len = int(psf.sigproc.round_half_up(config.win_seconds * config.sample_rate))
    step = int(psf.sigproc.round_half_up(config.hop_seconds * config.sample_rate))
    total = 1 if len(wave) <= frame_len else 1 + math.ceil((len(wave) - frame_len) / step)
    pieces = []
    for first in range(0, total, piece_frames):
        last = min(first + piece_frames, total)
        stop = len(wave) if last == total else (last - 1) * step + frame_len
        pieces.append(_mfcc_piece(wave, first * step, stop, config))
    coefficients = np.concatenate(pieces)
    return (coefficients[:, 1:] if config.drop_energy else coefficients).astype(np.float32)


def _mfcc_piece(wave: np.ndarray, start: int, stop: int, config: MfccConfig) -> np.ndarray:
    """psf's MFCCs (energy included) of samples [start, stop), pre-emphasised here so that the first sample
    is filtered with the one before it, as a single pass over the whole wave would."""
    piece = wave[start:stop].astype(np.float64)
    emphasised = piece.copy()
    emphasised[1:] -= config.pre_emphasis * piece[:-1]
    if start:
        emphasised[0] -= config.pre_emphasis * float(wave[start - 1])
    return psf.mfcc(emphasised, preemph=0.0, **psf_mfcc_options(config))


def psf_mfcc_options(config: MfccConfig) -> dict:
    """`python_speech_features.mfcc`'s keyword arguments for `config`, except the pre-emphasis."""
    return dict(
        samplerate=config.sample_rate,
        winlen=config.win_seconds,
        winstep=config.hop_seconds,
        numcep=config.num_cepstra,
        nfilt=config.n_filters,
        nfft=config.nfft,
        ceplifter=config.lifter,
        appendEnergy=True,
    )
