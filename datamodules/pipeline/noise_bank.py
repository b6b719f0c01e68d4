"""Noise banks: named noise types with their recordings, and the random segments drawn from them.

The paper trains on 138 noise types and tests on 5 others, so training and evaluation each get their own
`NoiseBank`. Sound Ideas cannot be downloaded here, so a bank is either the user's folder of recordings
(`noise_bank_from_folder`, read here) or generated (`noise_synthesis.generated_noise_bank`, whose training
and evaluation types share none). Every random choice takes an explicit `np.random.Generator`; nothing
touches numpy's global state.

Shapes: every waveform is 1-D, `(T,)`, mono, at the bank's sample rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .audio import SILENCE_PEAK, SOUNDFILE_SUFFIXES, read_audio
from .noise_mixing import TRAIN_SNRS_DB, mix_at_snr, peak_normalise

SEGMENT_ATTEMPTS = 8  # segments drawn before giving up on finding a non-silent one


# ----------------------------------------------------------------------------------------------------
# Noise banks


class NoiseBank:
    """Named noise types, each with one or more recordings at one sample rate.

    Args:
        recordings: type name → `(N,)` waveforms (any length ≥ 1, finite, not all zero).
        sample_rate: the rate of every recording.
        source: where the recordings came from, for messages (a folder, "generated train noise", …).
    """

    def __init__(
        self, recordings: Mapping[str, Sequence[np.ndarray]], sample_rate: int, source: str = "noise bank"
    ):
        if not recordings:
            raise ValueError(f"{source}: a noise bank needs at least one noise type")
        self.sample_rate = int(sample_rate)
        self.source = source
        self._recordings: dict[str, tuple[np.ndarray, ...]] = {}
        self._peaks: dict[str, tuple[float, ...]] = {}
        for name, waves in recordings.items():
            checked = tuple(_checked_recording(wave, f"{source}: noise type {name!r}") for wave in waves)
            if not checked:
                raise ValueError(f"{source}: noise type {name!r} has no recordings")
            self._recordings[name] = checked
            self._peaks[name] = tuple(float(np.max(np.abs(wave))) for wave in checked)

    @property
    def types(self) -> tuple[str, ...]:
        """The noise type names, sorted."""
        return tuple(sorted(self._recordings))

    def recordings(self, type_name: str) -> tuple[np.ndarray, ...]:
        """The `(N,)` float32 recordings of one type."""
        return self._recordings[self._known(type_name)]

    def segment(self, type_name: str, length: int, rng: np.random.Generator) -> np.ndarray:
        """A random `(length,)` float32 stretch of one of the type's recordings (chosen uniformly).

        The start is uniform over the positions where the segment fits; a recording shorter than
        `length` is looped from a random start. A near-silent stretch (peak under `SILENCE_PEAK` times
        the recording's peak) is redrawn up to `SEGMENT_ATTEMPTS` times, keeping the loudest, so a
        recording with gaps of digital silence cannot break the mixing.
        """
        name = self._known(type_name)
        if length < 0:
            raise ValueError(f"segment length must be ≥ 0, got {length}")
        if length == 0:
            return np.zeros(0, dtype=np.float32)
        best, best_peak = None, -1.0
        for _ in range(SEGMENT_ATTEMPTS):
            index = int(rng.integers(len(self._recordings[name])))
            piece = _random_stretch(self._recordings[name][index], length, rng)
            peak = float(np.max(np.abs(piece)))
            if peak > best_peak:
                best, best_peak = piece, peak
            if peak >= SILENCE_PEAK * self._peaks[name][index]:
                break
        if best_peak <= 0.0:
            raise ValueError(
                f"{self.source}: every {length}-sample segment drawn from noise type {name!r} "
                "was silent. Trim the digital silence from its recordings."
            )
        return best

    def draw(
        self, speech: np.ndarray, rng: np.random.Generator, snrs_db: Sequence[float] = TRAIN_SNRS_DB
    ) -> tuple[np.ndarray, str, float]:
        """One training mixture of `pick`'s noise at its SNR.

        Returns:
            `(mixture, type_name, snr_db)`: the `(T,)` mixture peak-normalised (float32 for float32
            speech), the noise type it holds, and its SNR in dB.
        """
        noise, name, snr = self.pick(len(speech), rng, snrs_db)
        return peak_normalise(mix_at_snr(speech, noise, snr)), name, snr

    def pick(
        self, length: int, rng: np.random.Generator, snrs_db: Sequence[float] = TRAIN_SNRS_DB
    ) -> tuple[np.ndarray, str, float]:
        """A type uniformly, then an SNR uniformly from `snrs_db`, then a `(length,)` segment of that type:
        `(segment, type_name, snr_db)`, what a training mixture is made of."""
        if len(snrs_db) == 0:
            raise ValueError("snrs_db is empty: give at least one SNR to draw from")
        types = self.types
        name = types[int(rng.integers(len(types)))]
        snr = float(snrs_db[int(rng.integers(len(snrs_db)))])
        return self.segment(name, length, rng), name, snr

    def _known(self, type_name: str) -> str:
        if type_name not in self._recordings:
            raise KeyError(f"{self.source}: no noise type {type_name!r}; it has {list(self.types)}")
        return type_name

    def __repr__(self) -> str:
        return f"NoiseBank({self.source}, {self.sample_rate} Hz, types={list(self.types)})"


def _checked_recording(wave: np.ndarray, what: str) -> np.ndarray:
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError(f"{what}: a recording must be a non-empty 1-D waveform, got shape {wave.shape}")
    if not np.isfinite(wave).all():
        raise ValueError(f"{what}: a recording holds NaN or infinite samples")
    if not np.any(wave):
        raise ValueError(f"{what}: a recording is all zeros")
    return wave


def _random_stretch(recording: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """`(length,)` from a uniform start: contiguous when it fits, else wrapping around the recording."""
    if len(recording) >= length:
        start = int(rng.integers(len(recording) - length + 1))
        return recording[start : start + length].copy()
    start = int(rng.integers(len(recording)))
    return recording[(start + np.arange(length)) % len(recording)]


# ----------------------------------------------------------------------------------------------------
# The user's recordings


def noise_bank_from_folder(root: str | Path, sample_rate: int) -> NoiseBank:
    """Every recording under `root`, resampled to `sample_rate`, grouped into noise types.

    Layout: each immediate subfolder is one type, named after the folder, holding its recordings (searched
    recursively); each audio file directly in `root` is a type of its own, named after the file's stem.
    Audio means .wav, .flac or .ogg; other files and names starting with "." are ignored, and so are
    subfolders without audio.

    Raises:
        DatasetError: naming the folder when it is missing, holds no audio, or gives a type twice; naming
            the file when it cannot be decoded or is silent (peak below `SILENCE_PEAK`).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: the noise folder does not exist. Point the noise folder option at a "
            "folder holding one subfolder (or one audio file) per noise type."
        )
    recordings = {
        name: [_read_noise_file(path, sample_rate) for path in paths]
        for name, paths in _noise_files(root).items()
    }
    return NoiseBank(recordings, sample_rate, source=str(root))


def _noise_files(root: Path) -> dict[str, list[Path]]:
    """Type name → its audio files, following the layout of `noise_bank_from_folder`."""
    found: dict[str, list[Path]] = {}
    origin: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            name, files = entry.name, sorted(p for p in entry.rglob("*") if _is_audio(p, entry))
        elif _is_audio(entry, root):
            name, files = entry.stem, [entry]
        else:
            continue
        if not files:
            continue
        if name in found:
            raise DatasetError(
                f"{root}: noise type {name!r} is given twice ({origin[name].name} and "
                f"{entry.name}). Rename one, or move the loose file into the folder {name}/."
            )
        found[name], origin[name] = files, entry
    if not found:
        suffixes = ", ".join(sorted(SOUNDFILE_SUFFIXES))
        raise DatasetError(
            f"{root}: no noise recordings ({suffixes}) found. Put one subfolder per noise "
            "type holding its recordings, or one audio file per noise type, in this folder."
        )
    return found


def _is_audio(path: Path, under: Path) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(under).parts)
    return not hidden and path.is_file() and path.suffix.lower() in SOUNDFILE_SUFFIXES


def _read_noise_file(path: Path, sample_rate: int) -> np.ndarray:
    """`(N,)` float32 at `sample_rate`; DatasetError naming `path` when it is unusable as noise."""
    wave = read_audio(path, sample_rate)
    if wave.size == 0:
        raise DatasetError(
            f"{path}: the recording is too short to survive resampling to {sample_rate} Hz. "
            "Remove it or use a longer recording."
        )
    if not np.isfinite(wave).all():
        raise DatasetError(f"{path}: the recording holds NaN or infinite samples. Re-export it as PCM audio.")
    peak = float(np.max(np.abs(wave)))
    if peak < SILENCE_PEAK:
        raise DatasetError(
            f"{path}: the recording is silent (peak {peak:.2g} < {SILENCE_PEAK}), so it "
            "cannot be mixed at any SNR. Remove it or replace it with an audible recording."
        )
    return wave
