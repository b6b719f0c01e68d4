"""Noisy copies of a clip's speech, mixed on the fly: E2E-NR's noise-resilient training and the SNR sweep
of its evaluation, which any video system can be put through.

Two policies, both given to `ClipWindows` as `noise`:

- `RandomNoise` (training, validation): per item a noise type, a segment and an SNR drawn at random from
  the training bank; the item gains `noisy_audio` beside its clean `audio`.
- `FixedNoise` (evaluation): one held-out noise type at one SNR; the segment depends only on the seed,
  the clip and the type, so every SNR level and every system hears the same noise. The item's `audio`
  becomes the mixture and the clean speech moves to `clean_audio`.

The recordings come from a `NoiseBank` (`pipeline/noise_bank.py`): the user's folders, or generated types
(`pipeline/noise_synthesis.py`) whose training and evaluation sets are disjoint, as the paper keeps its
five test noises unseen. Mixing at an exact SNR is `pipeline/noise_mixing.py`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .base import randint
from .pipeline.noise_bank import NoiseBank, noise_bank_from_folder
from .pipeline.noise_mixing import TRAIN_SNRS_DB, mix_at_snr, peak_normalise
from .pipeline.noise_synthesis import generated_noise_bank


@dataclass(frozen=True)
class NoiseMixing:
    """Where noise comes from and how training mixes it.

    Args:
        folder: the user's training noise recordings (one subfolder per type, or one file per type);
            None uses the generated training types (white, pink, hum, clicks, …).
        eval_folder: the held-out evaluation noises (the paper's babble, cafeteria, motorcycle,
            speech-shaped, factory); None generates stand-ins for those five.
        snrs_db: training SNRs, drawn uniformly per item (the paper's −6…30 dB in 3-dB steps).
        seed: seed of the generated recordings and of the evaluation segments.
    """

    folder: str | None = None
    eval_folder: str | None = None
    snrs_db: tuple[float, ...] = tuple(TRAIN_SNRS_DB)
    seed: int = 0

    def training_bank(self, sample_rate: int) -> NoiseBank:
        if self.folder is not None:
            return noise_bank_from_folder(self.folder, sample_rate)
        return generated_noise_bank("train", sample_rate, seed=self.seed)

    def evaluation_bank(self, sample_rate: int, speech: list[np.ndarray]) -> NoiseBank:
        """`speech`: utterances of speakers outside the test set, for babble and speech-shaped noise."""
        if self.eval_folder is not None:
            return noise_bank_from_folder(self.eval_folder, sample_rate)
        return generated_noise_bank("eval", sample_rate, seed=self.seed, speech=speech)


def _stable_seed(*parts: object) -> list[int]:
    """Seed words that depend only on the values (Python's `hash` of a str changes between processes)."""
    return [int.from_bytes(hashlib.sha1(str(part).encode()).digest()[:4], "little") for part in parts]


class RandomNoise:
    """A random training mixture per item: type and segment from `bank`, SNR from `snrs_db`.

    With `seed` None the draws follow torch's generator (reseeded per DataLoader worker and by
    `seed_everything`), so each epoch hears new noise; with a seed they depend only on (seed, clip) —
    a fixed noisy validation set.
    """

    target = "noisy_audio"

    def __init__(self, bank: NoiseBank, snrs_db: tuple[float, ...], seed: int | None = None):
        self.bank, self.snrs_db, self.seed = bank, snrs_db, seed

    def __call__(self, speech: np.ndarray, key: str) -> np.ndarray:
        words = _stable_seed(self.seed, key) if self.seed is not None else [randint(2**31)]
        mixture, _, _ = self.bank.draw(speech, np.random.default_rng(words), self.snrs_db)
        return mixture

    def pick(self, length: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """The `(length,)` noise segment and the SNR of one training mixture, drawn from `rng`; the batched
        loaders mix them on the training device (`device_transforms.mix_at_snr`)."""
        if self.seed is not None:
            raise ValueError("a fixed noisy set (seeded RandomNoise) is mixed item by item, not in batches")
        noise, _, snr = self.bank.pick(length, rng, self.snrs_db)
        return noise, snr


class FixedNoise:
    """Every item mixed with `noise_type` at `snr_db`; the segment depends on (seed, clip, type) only."""

    target = "audio"

    def __init__(self, bank: NoiseBank, noise_type: str, snr_db: float, seed: int = 0):
        if noise_type not in bank.types:
            raise ValueError(f"noise type {noise_type!r} is not in the bank; it has {bank.types}")
        self.bank, self.noise_type, self.snr_db, self.seed = bank, noise_type, snr_db, seed

    def __call__(self, speech: np.ndarray, key: str) -> np.ndarray:
        rng = np.random.default_rng(_stable_seed(self.seed, key, self.noise_type))
        segment = self.bank.segment(self.noise_type, len(speech), rng)
        return peak_normalise(mix_at_snr(speech, segment, self.snr_db))
