"""Noise sources and SNR mixing for E2E-NR's training and evaluation, and their invariants."""

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import welch

from datamodules.errors import DatasetError
from datamodules.pipeline.noise_bank import NoiseBank, noise_bank_from_folder
from datamodules.pipeline.noise_mixing import (
    EVAL_SNRS_DB,
    TRAIN_SNRS_DB,
    loop_to_length,
    mix_at_snr,
    mixing_gain,
    peak_normalise,
)
from datamodules.pipeline.noise_synthesis import (
    EVAL_NOISE_TYPES,
    TRAIN_NOISE_TYPES,
    generate_noise,
    generated_noise_bank,
)

SECONDS = 2.0  # generated recordings in these tests: long enough for spectra, short enough to be fast


def snr_of(clean: np.ndarray, noise_part: np.ndarray) -> float:
    clean, noise_part = clean.astype(np.float64), noise_part.astype(np.float64)
    return 10 * np.log10(np.sum(clean**2) / np.sum(noise_part**2))


def utterance(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """A speech-like test signal: a voiced harmonic stack with a 4 Hz syllable envelope."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = rng.uniform(90, 220)
    harmonics = [h for h in range(1, 15) if h * f0 < 0.45 * rate]
    voiced = sum(np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6)) / h for h in harmonics)
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * rng.uniform(3, 5) * t)
    return (0.3 * voiced * envelope / np.max(np.abs(voiced))).astype(np.float32)


@pytest.fixture(scope="module")
def donors():
    rng = np.random.default_rng(7)
    return [utterance(rng, rng.uniform(0.6, 1.5), 8000) for _ in range(10)]


@pytest.fixture(scope="module")
def banks(donors):
    return {
        kind: generated_noise_bank(kind, 8000, seed=1, speech=donors, seconds=SECONDS)
        for kind in ("train", "eval")
    }


# ---------------------------------------------------------------------------------------------- mixing


@pytest.mark.parametrize("snr", [-10.0, -6.0, 0.0, 30.0])
def test_mixture_has_the_requested_snr(snr):
    rng = np.random.default_rng(0)
    speech, noise = rng.standard_normal(4000) * 0.1, rng.uniform(-1, 1, 4000)
    mixture = mix_at_snr(speech, noise, snr)
    assert mixture.dtype == np.float64 and mixture.shape == speech.shape
    assert abs(snr_of(speech, mixture - speech) - snr) < 1e-9
    k = mixing_gain(speech, noise, snr)
    np.testing.assert_allclose(mixture - speech, k * noise, rtol=0, atol=1e-12)


def test_float32_speech_gives_a_float32_mixture():
    rng = np.random.default_rng(1)
    speech, noise = rng.standard_normal(4000).astype(np.float32), rng.standard_normal(4000).astype(np.float32)
    mixture = mix_at_snr(speech, noise, 5.0)
    assert mixture.dtype == np.float32
    assert abs(snr_of(speech, mixture.astype(np.float64) - speech) - 5.0) < 1e-3


def test_peak_normalisation_keeps_the_snr():
    rng = np.random.default_rng(2)
    speech, noise = rng.standard_normal(3000), rng.standard_normal(3000)
    mixture = mix_at_snr(speech, noise, -6.0)
    normalised = peak_normalise(mixture)
    scale = 1.0 / np.max(np.abs(mixture))
    assert np.max(np.abs(normalised)) == 1.0
    assert abs(snr_of(scale * speech, normalised - scale * speech) - -6.0) < 1e-9
    silent = np.zeros(10, np.float32)
    assert np.array_equal(peak_normalise(silent), silent) and peak_normalise(silent).dtype == np.float32


def test_short_noise_is_looped_and_long_noise_cropped():
    rng = np.random.default_rng(3)
    speech, short = rng.standard_normal(1000), rng.standard_normal(300)
    looped = loop_to_length(short, 1000)
    assert looped.shape == (1000,)
    assert np.array_equal(looped[300:600], short) and np.array_equal(looped[900:], short[:100])
    mixture = mix_at_snr(speech, short, 3.0)
    np.testing.assert_allclose(mixture - speech, mixing_gain(speech, short, 3.0) * looped, rtol=0, atol=1e-12)
    assert abs(snr_of(speech, mixture - speech) - 3.0) < 1e-9
    long = rng.standard_normal(5000)
    cropped = mix_at_snr(speech, long, 0.0) - speech
    np.testing.assert_allclose(cropped, mixing_gain(speech, long, 0.0) * long[:1000], rtol=0, atol=1e-12)


def test_silent_noise_is_refused_and_silent_speech_passes_through():
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(np.ones(100), np.zeros(100), 0.0)
    with pytest.raises(ValueError):
        mix_at_snr(np.ones((2, 100)), np.ones(100), 0.0)
    silence = np.zeros(100, np.float32)
    assert np.array_equal(mix_at_snr(silence, np.ones(100), 0.0), silence)
    assert mix_at_snr(np.zeros(0), np.ones(10), 0.0).shape == (0,)


def test_snr_sets():
    assert len(TRAIN_SNRS_DB) == 13 and TRAIN_SNRS_DB == tuple(float(s) for s in range(-6, 31, 3))
    assert len(EVAL_SNRS_DB) == 41 and EVAL_SNRS_DB[0] == -10.0 and EVAL_SNRS_DB[-1] == 30.0
    assert np.all(np.diff(EVAL_SNRS_DB) == 1.0)


# ---------------------------------------------------------------------------------------------- banks


def test_bank_segments_loop_short_recordings_and_are_reproducible():
    rng = np.random.default_rng(4)
    bank = NoiseBank({"short": [rng.standard_normal(50)], "long": [rng.standard_normal(5000)]}, 8000)
    assert bank.types == ("long", "short")
    piece = bank.segment("short", 175, np.random.default_rng(0))
    assert piece.shape == (175,) and piece.dtype == np.float32
    assert np.array_equal(piece[:125], piece[50:])  # looped with the recording's period
    first, again = (bank.segment("long", 400, np.random.default_rng(9)) for _ in range(2))
    assert np.array_equal(first, again)
    recording = bank.recordings("long")[0]
    start = int(np.flatnonzero(recording == first[0])[0])
    assert np.array_equal(recording[start : start + 400], first)  # a contiguous stretch
    with pytest.raises(KeyError, match="long"):
        bank.segment("missing", 10, rng)
    with pytest.raises(ValueError):
        NoiseBank({"quiet": [np.zeros(10)]}, 8000)


def test_segments_skip_digital_silence():
    recording = np.random.default_rng(0).standard_normal(10_000)
    recording[3000:5000] = 0.0  # a fifth of the recording is digital silence
    bank = NoiseBank({"gappy": [recording]}, 8000)
    rng = np.random.default_rng(1)
    assert all(np.any(bank.segment("gappy", 50, rng)) for _ in range(300))  # a silent stretch is redrawn


def test_draw_is_reproducible_and_uses_every_type_and_snr(banks):
    bank = banks["train"]
    rng = np.random.default_rng(5)
    speech = (rng.standard_normal(8000) * 0.1).astype(np.float32)
    seen_types, seen_snrs = set(), set()
    for seed in range(150):
        mixture, name, snr = bank.draw(speech, np.random.default_rng(seed))
        seen_types.add(name), seen_snrs.add(snr)
        assert mixture.dtype == np.float32 and mixture.shape == speech.shape
        assert np.max(np.abs(mixture)) == pytest.approx(1.0)
        if seed < 10:  # the clean part is the projection on the speech (speech and noise nearly orthogonal)
            clean = speech * (mixture @ speech) / (speech @ speech)
            assert snr_of(clean, mixture - clean) == pytest.approx(snr, abs=0.5)
    assert seen_types == set(bank.types) and seen_snrs == set(TRAIN_SNRS_DB)
    one, two = (bank.draw(speech, np.random.default_rng(42)) for _ in range(2))
    assert np.array_equal(one[0], two[0]) and one[1:] == two[1:]


# ---------------------------------------------------------------------------------------------- generated


def test_train_and_eval_types_are_disjoint(banks):
    assert len(TRAIN_NOISE_TYPES) >= 5
    assert not set(TRAIN_NOISE_TYPES) & set(EVAL_NOISE_TYPES)
    assert set(EVAL_NOISE_TYPES) == {"babble", "speech_shaped", "cafeteria", "motorcycle", "factory"}
    assert banks["train"].types == TRAIN_NOISE_TYPES and banks["eval"].types == EVAL_NOISE_TYPES


@pytest.mark.parametrize("rate", [8000, 16000])
def test_every_generated_type_is_finite_audible_and_sized(rate):
    rng = np.random.default_rng(11)
    speech = [utterance(rng, 1.0, rate) for _ in range(6)]
    for kind in ("train", "eval"):
        bank = generated_noise_bank(kind, rate, seed=0, speech=speech, seconds=SECONDS)
        assert bank.sample_rate == rate
        for name in bank.types:
            (wave,) = bank.recordings(name)
            assert wave.shape == (int(SECONDS * rate),) and wave.dtype == np.float32, name
            assert np.isfinite(wave).all(), name
            assert 0.5 < np.max(np.abs(wave)) <= 1.0 and np.std(wave) > 1e-3, name
            window = wave[: rate // 10]  # any short stretch is audible (no digital silence)
            assert np.max(np.abs(window)) > 1e-4, name


def test_generated_banks_are_deterministic_per_seed(donors, banks):
    for kind in ("train", "eval"):
        again = generated_noise_bank(kind, 8000, seed=1, speech=donors, seconds=SECONDS)
        other = generated_noise_bank(kind, 8000, seed=2, speech=donors, seconds=SECONDS)
        for name in again.types:
            assert np.array_equal(again.recordings(name)[0], banks[kind].recordings(name)[0]), name
            assert not np.allclose(other.recordings(name)[0], banks[kind].recordings(name)[0]), name


def _band_power(wave: np.ndarray, rate: int, low: float, high: float) -> float:
    freqs, power = welch(wave.astype(np.float64), fs=rate, nperseg=1024)
    return float(power[(freqs >= low) & (freqs < high)].mean())


def test_coloured_noise_spectra_fall_as_expected(banks):
    train = banks["train"]
    ratio = {}
    for name in ("white", "pink", "brown"):
        (wave,) = train.recordings(name)
        ratio[name] = _band_power(wave, 8000, 50, 500) / _band_power(wave, 8000, 2000, 3500)
    assert 0.5 < ratio["white"] < 2.0
    assert ratio["pink"] > 5.0  # 1/f: about a decade between the bands' centres
    assert ratio["brown"] > 10 * ratio["pink"]


def test_hum_peaks_at_the_mains_frequency(banks):
    wave = banks["train"].recordings("hum")[0].astype(np.float64)
    freqs, power = welch(wave, fs=8000, nperseg=8000)  # 1 Hz bins
    assert freqs[np.argmax(power)] in (50.0, 60.0)


def test_speech_shaped_noise_follows_the_speech_spectrum(banks, donors):
    noise = banks["eval"].recordings("speech_shaped")[0]
    speech = np.concatenate(donors)
    for wave in (speech, noise):  # the donors' harmonics stop near 3 kHz: so must the noise's power
        assert _band_power(wave, 8000, 100, 1000) > 100 * _band_power(wave, 8000, 3600, 3900)


def test_speech_made_noise_needs_speech():
    with pytest.raises(ValueError, match="speech"):
        generated_noise_bank("eval", 8000, seed=0)
    with pytest.raises(ValueError, match="speech"):
        generated_noise_bank("eval", 8000, seed=0, speech=[])
    with pytest.raises(ValueError, match="silent"):
        generated_noise_bank("eval", 8000, seed=0, speech=[np.zeros(800, np.float32)])
    with pytest.raises(ValueError, match="speech"):
        generate_noise("babble", 8000, 800, np.random.default_rng(0))
    with pytest.raises(ValueError, match="kind"):
        generated_noise_bank("test", 8000)
    no_speech = generated_noise_bank("train", 8000, seed=0, seconds=0.5)  # training types need no speech
    assert no_speech.types == TRAIN_NOISE_TYPES


# ---------------------------------------------------------------------------------------------- folders


def _tone(seconds: float, rate: int, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_folder_types_from_subfolders_and_loose_files(tmp_path):
    (tmp_path / "fan" / "takes").mkdir(parents=True)
    sf.write(tmp_path / "fan" / "a.wav", _tone(1.0, 16000, 440), 16000)
    sf.write(tmp_path / "fan" / "takes" / "b.flac", _tone(0.5, 16000, 300), 16000)
    sf.write(tmp_path / "street.wav", _tone(1.0, 16000, 200), 16000)
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "empty").mkdir()
    sf.write(tmp_path / ".hidden.wav", _tone(0.1, 16000, 100), 16000)
    bank = noise_bank_from_folder(tmp_path, 8000)
    assert bank.types == ("fan", "street") and bank.sample_rate == 8000
    assert sorted(len(w) for w in bank.recordings("fan")) == [4000, 8000]
    (street,) = bank.recordings("street")
    assert street.shape == (8000,) and abs(np.max(np.abs(street)) - 0.3) < 0.02
    mixture, name, snr = bank.draw(_tone(1.5, 8000, 150), np.random.default_rng(0))
    assert mixture.shape == (12000,) and name in bank.types and snr in TRAIN_SNRS_DB


def test_folder_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        noise_bank_from_folder(tmp_path / "missing", 8000)
    (tmp_path / "readme.txt").write_text("no audio here")
    with pytest.raises(DatasetError, match=f"{tmp_path}.*no noise recordings"):
        noise_bank_from_folder(tmp_path, 8000)

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    sf.write(corrupt / "good.wav", _tone(0.5, 16000, 440), 16000)
    (corrupt / "broken.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(DatasetError, match="broken.wav"):
        noise_bank_from_folder(corrupt, 8000)

    silent = tmp_path / "silent"
    (silent / "hiss").mkdir(parents=True)
    sf.write(silent / "hiss" / "quiet.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(DatasetError, match="quiet.wav.*silent"):
        noise_bank_from_folder(silent, 8000)

    twice = tmp_path / "twice"
    (twice / "fan").mkdir(parents=True)
    sf.write(twice / "fan" / "a.wav", _tone(0.5, 16000, 440), 16000)
    sf.write(twice / "fan.wav", _tone(0.5, 16000, 440), 16000)
    with pytest.raises(DatasetError, match="'fan' is given twice"):
        noise_bank_from_folder(twice, 8000)
