"""The shared data pipeline: audio reading, log-mel features, the sharded cache and resumable preparation."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from datamodules.errors import CacheMismatchError, DatasetError
from datamodules.pipeline.audio import read_audio, resample, voiced_audio
from datamodules.pipeline.cache import ShardedCache
from datamodules.pipeline.features import LogMelConfig, MfccConfig, log_mel, mfcc, psf_mfcc_options
from datamodules.pipeline.images import read_image
from datamodules.pipeline.prepare import prepare_cache


def tone(seconds: float, rate: int = 16000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_log_mel_frame_count_and_normalisation():
    config = LogMelConfig()
    features = log_mel(tone(1.0), config)
    assert features.shape == (40, 99)  # 1 + ceil((16000 - 400) / 160)
    silent = log_mel(np.zeros(16000, np.float32), config)
    assert np.isfinite(silent).all()
    assert config.padding_value == pytest.approx(-10.9915 / 3.1661)


def test_tcsan_mfccs_without_energy_carry_no_loudness():
    """Why TCSAN's silence check is hard (docs/tcsan.md): with the energy coefficient dropped, as in the
    paper, a sound's level does not change its MFCCs, and digital silence is a flat spectrum (all zeros)."""
    noise = np.random.default_rng(0).normal(size=16000).astype(np.float32)
    quiet, loud = mfcc(1e-3 * noise, MfccConfig()), mfcc(1e-1 * noise, MfccConfig())
    assert np.abs(quiet).mean() > 1 and np.allclose(quiet, loud, atol=1e-4)
    assert np.allclose(mfcc(np.zeros(16000, np.float32), MfccConfig()), 0, atol=1e-6)
    with_energy = MfccConfig(drop_energy=False)
    assert not np.allclose(mfcc(1e-3 * noise, with_energy), mfcc(1e-1 * noise, with_energy), atol=1e-1)


@pytest.mark.parametrize("samples", [16000 + 55, 16000 + 400, 160 * 97 + 240, 300])
def test_mfccs_in_pieces_equal_one_pass(samples):
    """Long speech is framed a piece at a time (bounded memory); the pieces, each pre-emphasised with the
    sample before it, must equal psf's single pass, including the zero-padded last frame."""
    import python_speech_features as psf

    wave = np.random.default_rng(samples).normal(0, 0.1, samples).astype(np.float32)
    config = MfccConfig(drop_energy=False)
    options = psf_mfcc_options(config)
    whole = psf.mfcc(wave.astype(np.float64), preemph=config.pre_emphasis, **options).astype(np.float32)
    for piece_frames in (7, 32, 10_000):
        pieces = mfcc(wave, config, piece_frames=piece_frames)
        assert pieces.shape == whole.shape
        np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("source", "target"), [(16000, 8000), (44100, 16000), (8000, 16000), (22050, 16000)])
def test_resampling_in_blocks_equals_one_pass(source, target):
    """Long audio is resampled a block at a time (bounded memory); cut on torchaudio's output groups with
    real input beyond the filter's reach, the blocks must join into its one-pass result."""
    import torch
    import torchaudio.functional as AF

    wave = np.random.default_rng(source).normal(0, 0.1, source + 977).astype(np.float32)
    whole = AF.resample(torch.from_numpy(wave), source, target).numpy()
    for block_seconds in (0.01, 0.137, 100.0):
        blocks = resample(wave, source, target, block_seconds=block_seconds)
        assert blocks.shape == whole.shape
        np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("codec", "suffix"), [("pcm_s16le", "mkv"), ("flac", "mkv"), ("aac", "m4a")])
def test_decoded_audio_is_downmixed_and_scaled_whatever_the_sample_layout(tmp_path, codec, suffix):
    """Decoders hand over planar float (AAC) or packed, interleaved integers (PCM and FLAC in a container):
    each must come out as the channels' mean in [-1, 1], not as raw integers or de-interleaved halves."""
    from fractions import Fraction

    import av

    left = (0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    path = tmp_path / f"stereo.{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=16000, layout="stereo")
        layout, size = stream.codec_context.format, stream.codec_context.frame_size or 1024
        for start in range(0, len(left), size):
            channels = np.stack([left[start : start + size], np.zeros_like(left[start : start + size])])
            if not layout.is_planar:
                channels = channels.T.reshape(1, -1)
            if layout.name.startswith("s16"):
                channels = (channels * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(channels), format=layout.name, layout="stereo"
            )
            frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    wave = read_audio(path, 16000)
    assert abs(np.abs(wave).max() - 0.25) < 0.02  # the mean of the sine and silence
    assert np.corrcoef(wave[2000:14000], left[2000:14000])[0, 1] > 0.99


def test_read_audio_downmixes_and_resamples(tmp_path):
    stereo = np.stack([tone(0.5, 48000), tone(0.5, 48000)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 48000, subtype="PCM_16")
    wave = read_audio(tmp_path / "s.wav", 16000)
    assert wave.ndim == 1 and len(wave) == 8000
    assert abs(np.abs(wave).max() - 0.3) < 0.02


def test_resample_length_is_exact():
    assert len(resample(tone(1.0, 25000), 25000, 16000)) == 16000


def test_corrupt_audio_names_the_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00not a wav at all")
    with pytest.raises(DatasetError, match="bad.wav"):
        read_audio(bad, 16000)


def test_vad_drops_silence():
    speechlike = np.concatenate(
        [
            np.zeros(16000, np.float32),
            tone(1.0) * np.random.default_rng(0).uniform(0.5, 1, 16000).astype(np.float32),
        ]
    )
    kept = voiced_audio(speechlike, 16000)
    assert 0 < len(kept) < len(speechlike)
    assert len(voiced_audio(np.zeros(32000, np.float32), 16000)) == 0


class PatternVad:
    """Stands in for `webrtcvad.Vad`: a frame is voiced when its (int16) sample value is odd."""

    def __init__(self, aggressiveness: int):
        pass

    def is_speech(self, frame: bytes, sample_rate: int) -> bool:
        return bool(np.frombuffer(frame, np.int16)[0] % 2)


def frames_of(pattern: str, frame_len: int = 480) -> np.ndarray:
    """One 30 ms frame per character ('1' voiced, '0' not); frame i holds the int16 code 2(i + 1) + voiced,
    so the frames a VAD keeps can be read back. The half step survives the float → int16 truncation."""
    codes = [2 * (i + 1) + (c == "1") for i, c in enumerate(pattern)]
    return np.repeat((np.array(codes) + 0.5) / 32767, frame_len).astype(np.float32)


def kept_frames(wave: np.ndarray, frame_len: int = 480) -> list[int]:
    return [int(round(code * 32767)) // 2 - 1 for code in wave.reshape(-1, frame_len)[:, 0]]


def test_vad_keeps_a_stretch_open_until_ten_unvoiced_frames_in_a_row(monkeypatch):
    import webrtcvad

    monkeypatch.setattr(webrtcvad, "Vad", PatternVad)
    # Onset after 10 voiced frames; a 3-frame pause right after it; more speech; 12 silent frames; a
    # 3-frame blip too short to open a stretch.
    pattern = "1" * 10 + "0" * 3 + "1" * 5 + "0" * 12 + "1" * 3
    kept = kept_frames(voiced_audio(frames_of(pattern), 16000))
    assert kept == list(range(28))  # the pause is bridged; the stretch ends on the 10th silent frame (27)
    short = kept_frames(voiced_audio(frames_of(pattern), 16000, hangover_ms=90))
    assert short == list(range(13))  # a 3-frame hangover closes inside the pause
    assert len(voiced_audio(frames_of("1" * 9 + "0" * 20), 16000)) == 0  # 9 voiced frames never open one


def test_read_image_converts_modes(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((30, 40, 4), 128, np.uint8), "RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.full((30, 40), 50, np.uint8), "L").save(tmp_path / "g.png")
    assert read_image(tmp_path / "a.png", 16).shape == (3, 16, 16)
    assert read_image(tmp_path / "g.png", 16)[0, 0, 0] == 50
    (tmp_path / "junk.jpg").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="junk.jpg"):
        read_image(tmp_path / "junk.jpg", 16)


def _square(job: dict):
    if job["path"].endswith("bad"):
        raise DatasetError(f"{job['path']}: bad on purpose")
    value = int(job["path"])
    return {"value": value}, {"x": np.full((value % 3 + 1, 2), value, np.float32)}


def test_cache_round_trip_and_rejections(tmp_path):
    cache = ShardedCache(tmp_path / "c", {"a": 1})
    jobs = [{"path": str(i)} for i in range(7)] + [{"path": "7bad"}]
    report = prepare_cache(cache, jobs, _square, shard_size=3)
    assert report.items == 7 and report.rejected == 1 and report.shards_written == 3
    items = cache.read()
    for i in range(7):
        meta, arrays = items[i]
        assert meta["value"] == i and arrays["x"].shape == (i % 3 + 1, 2) and (arrays["x"] == i).all()
    rows = list(csv.DictReader(open(tmp_path / "c" / "rejected.csv")))
    assert rows == [{"path": "7bad", "reason": "7bad: bad on purpose"}]


def test_cache_refuses_other_parameters(tmp_path):
    ShardedCache(tmp_path / "c", {"image_size": 64})
    with pytest.raises(CacheMismatchError, match="image_size"):
        ShardedCache(tmp_path / "c", {"image_size": 128})


def test_interrupted_preparation_resumes_without_duplicates(tmp_path):
    jobs = [{"path": str(i)} for i in range(10)]
    calls = []

    def crash_after_four(job):
        calls.append(job["path"])
        if len(calls) > 4:
            raise KeyboardInterrupt  # not a per-file error: it must stop the run, as a crash would
        return _square(job)

    cache = ShardedCache(tmp_path / "c", {})
    with pytest.raises(KeyboardInterrupt):
        prepare_cache(cache, jobs, crash_after_four, shard_size=2)
    assert len(cache.read()) == 4  # two complete shards survive, the third was never marked complete
    report = prepare_cache(ShardedCache(tmp_path / "c", {}), jobs, _square, shard_size=2)
    assert report.shards_skipped == 2 and report.shards_written == 3
    values = [meta["value"] for meta in cache.read().metas]
    assert values == list(range(10))
    assert not list((tmp_path / "c").glob(".*tmp"))


def test_parallel_preparation_matches_serial(tmp_path):
    jobs = [{"path": str(i)} for i in range(9)]
    serial, parallel = ShardedCache(tmp_path / "s", {}), ShardedCache(tmp_path / "p", {})
    prepare_cache(serial, jobs, _square, shard_size=2)
    prepare_cache(parallel, jobs, _square, shard_size=2, num_workers=2)
    assert serial.read().metas == parallel.read().metas
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["params"] == {}


def test_write_video_muxes_audio_and_reads_back(tmp_path):
    import av

    from datamodules.pipeline.video import read_video
    from datamodules.pipeline.video_writer import write_mp4 as write_video

    rng = np.random.default_rng(0)
    frames = np.repeat(np.linspace(0, 255, 10, dtype=np.uint8)[:, None, None, None], 3, axis=-1)
    frames = np.broadcast_to(frames, (10, 32, 48, 3)).copy()  # brightness ramp: frame k is recognisable
    speech = (0.3 * rng.standard_normal(3200)).astype(np.float32)  # 0.4 s at 8 kHz
    path = tmp_path / "out" / "clip.mp4"
    write_video(path, frames, fps=25, audio=speech, sample_rate=8000)
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no temporary file left behind

    decoded = read_video(path)
    assert decoded.frames.shape == (10, 32, 48, 3) and decoded.fps == 25
    assert np.abs(decoded.frames.mean(axis=(1, 2, 3)) - frames.mean(axis=(1, 2, 3))).max() < 3
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and video.format.name == "yuv420p"
        assert audio.codec_context.name == "aac" and audio.sample_rate == 8000 and audio.channels == 1
        # AAC encodes whole 1024-sample frames; the mp4 edit list trims the stream back to 3200 samples.
        assert float(audio.duration * audio.time_base) == pytest.approx(0.4, abs=0.01)
        assert float(video.duration * video.time_base) == pytest.approx(0.4, abs=0.01)
        assert container.duration / 1e6 == pytest.approx(0.4, abs=0.01)
        assert sum(frame.samples for frame in container.decode(audio)) >= 3200

    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", frames[:, :31], fps=25)
    assert not list(tmp_path.glob("*odd*"))

    # Chunks, as long inference hands them over, make the same file as one array.
    chunked = tmp_path / "chunked.mp4"
    write_video(chunked, (frames[s : s + 3] for s in range(0, 10, 3)), fps=25, audio=speech, sample_rate=8000)
    assert chunked.read_bytes() == path.read_bytes()
    mixed = (frames[:4], frames[4:, :16])
    with pytest.raises(ValueError, match="follows frames of"):
        write_video(tmp_path / "mixed.mp4", iter(mixed), fps=25)
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.mp4", iter([]), fps=25)
    assert not list(tmp_path.glob("*mixed*")) and not list(tmp_path.glob("*empty*"))
