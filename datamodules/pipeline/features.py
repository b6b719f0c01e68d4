"""Audio features, each computed once per utterance during preprocessing and cached.

Parameters live in small frozen dataclasses; their `asdict()` goes into the cache manifest, so a cache
made with other parameters is refused instead of being silently reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import python_speech_features as psf

INT16_SCALE = 32768.0


@dataclass(frozen=True)
class LogMelConfig:
    """SF2F's log-mel filterbank (spec §1, from the authors' code).

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
        """What a zero raw log-energy becomes after normalisation (the spec's right-padding value)."""
        return -self.mean / self.std


def log_mel(wave: np.ndarray, config: LogMelConfig) -> np.ndarray:
    """`(T,)` float32 speech in [-1, 1] → `(n_mels, frames)` float32 normalised log-mel.

    frames = 1 + ceil((T - win) / hop); 1 s at 16 kHz gives 99 frames.
    """
    energies = psf.logfbank(
        wave.astype(np.float64) * INT16_SCALE,
        samplerate=config.sample_rate,
        winlen=config.win_seconds,
        winstep=config.hop_seconds,
        nfilt=config.n_mels,
        nfft=config.nfft,
    )
    return ((energies.T - config.mean) / config.std).astype(np.float32)
