"""Audio reading, resampling and voice-activity detection shared by every dataset.

Audio is read with soundfile (wav/flac) or PyAV (m4a/aac, video containers) and returned as float32 mono
in [-1, 1]. Resampling goes through torchaudio's polyphase resampler; `torchaudio.load` is avoided on
purpose because it needs system ffmpeg libraries.
"""

from __future__ import annotations

import collections
import math
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from ..errors import DatasetError, fix_or_replace

SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg"}
SILENCE_PEAK = 1e-3  # audio that never exceeds this peak holds no speech worth the name
# A voiced stretch ends only after this much unvoiced audio (10 frames of 30 ms), as in SF2F's preparation.
VAD_HANGOVER_MS = 300
RESAMPLE_BLOCK_SECONDS = 60.0
# torchaudio's filter reaches ceil(6·orig / (0.99·min(orig, new))) input samples to the left of a group and
# that plus `orig` to the right: at most 7·orig and 8·orig, so 8 groups of real input cover it.
RESAMPLE_MARGIN_GROUPS = 8


def checked_wave(wave: np.ndarray, source: str = "the speech signal") -> np.ndarray:
    """`wave` as `(T,)` float32 when it is 1-D, non-empty and finite; else `DatasetError` naming `source`
    (an empty or NaN-filled signal would otherwise crash deep inside a transform or, worse, give NaN
    features)."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise DatasetError(f"{source}: expected mono samples (T,), got an array of shape {wave.shape}.")
    if wave.size == 0:
        raise DatasetError(f"{source}: holds no audio samples. {fix_or_replace('Re-export it', 'audio')}")
    if not np.isfinite(wave).all():
        raise DatasetError(
            f"{source}: {int((~np.isfinite(wave)).sum())} of its {wave.size} samples are NaN or "
            "infinite (a broken float export). Re-export it as 16-bit PCM."
        )
    return wave


PCM16_SCALE = 32768.0


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """`(T,)` float in [-1, 1] → `(T,)` int16, as caches store speech (half the bytes of float32). Speech
    read from a 16-bit file at its own rate comes back exactly; resampled speech is rounded to 16 bits."""
    return np.clip(np.round(np.asarray(wave, np.float64) * PCM16_SCALE), -32768, 32767).astype(np.int16)


def stored_speech(stored: np.ndarray) -> np.ndarray:
    """A cache's speech (int16 PCM, or float32 in caches written before PCM) as `(T,)` float32 in [-1, 1]."""
    if stored.dtype == np.int16:
        return np.asarray(stored, dtype=np.float32) / np.float32(PCM16_SCALE)
    return np.asarray(stored, dtype=np.float32)


def batchable_speech(pieces: list[np.ndarray]) -> list[np.ndarray]:
    """Stored speech pieces that one batch array can hold: as stored when all are int16 PCM, all as float32
    when some are not (a cache whose preparation was resumed across the change to PCM mixes both)."""
    if all(piece.dtype == np.int16 for piece in pieces):
        return pieces
    return [stored_speech(piece) for piece in pieces]


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read any audio file as mono float32 at `sample_rate`.

    Returns:
        `(T,)` float32 in [-1, 1]. Multi-channel audio is averaged to mono.
    Raises:
        DatasetError: naming the file when it cannot be decoded or holds no samples.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in SOUNDFILE_SUFFIXES:
            wave, source_rate = _read_with_soundfile(path)
        else:
            wave, source_rate = _decode_with_pyav(path)
    except DatasetError:
        raise
    except Exception as error:  # noqa: BLE001 - any decoder failure is the file's fault
        raise DatasetError(
            f"{path}: cannot decode audio ({type(error).__name__}: {error}). "
            f"{fix_or_replace('Re-encode it as 16-bit PCM wav', 'audio')}"
        ) from None
    return resample(checked_wave(wave, str(path)), source_rate, sample_rate)


# Both readers average the channels block by block, so that only the mono signal is ever held whole: an hour
# of 44.1-kHz stereo is 1.3 GB as float32 channels, 0.6 GB as mono.
READ_BLOCK_FRAMES = 1 << 20


def _read_with_soundfile(path: Path) -> tuple[np.ndarray, int]:
    # As bytes: libsndfile takes UTF-8 names only, and a file name need not be UTF-8 on Linux.
    with sf.SoundFile(os.fsencode(path)) as audio:
        wave, filled = np.empty(audio.frames, np.float32), 0
        for block in audio.blocks(READ_BLOCK_FRAMES, dtype="float32", always_2d=True):
            wave[filled : filled + len(block)] = block.mean(axis=1)
            filled += len(block)
        return wave[:filled], audio.samplerate


def _decode_with_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise DatasetError(f"{path}: the file has no audio stream. Use a file with its speech track.")
        stream = container.streams.audio[0]
        chunks = [_mono(frame) for frame in container.decode(stream)]
        source_rate = stream.codec_context.sample_rate
    return np.concatenate(chunks), source_rate


def _mono(frame) -> np.ndarray:
    """A decoded PyAV audio frame → `(n,)` float32 in [-1, 1], its channels averaged. Planar frames are
    `(channels, n)`; packed ones `(1, n·channels)`, interleaved. Integer samples are scaled by their range."""
    samples = frame.to_ndarray()
    if not frame.format.is_planar:
        samples = samples.reshape(-1, len(frame.layout.channels)).T
    if samples.dtype == np.uint8:  # unsigned 8-bit PCM is centred on 128
        return (samples.astype(np.float32).mean(axis=0) - 128.0) / 128.0
    scale = float(np.iinfo(samples.dtype).max) + 1.0 if samples.dtype.kind == "i" else 1.0
    return samples.astype(np.float32).mean(axis=0) / scale


def resample(
    wave: np.ndarray, source_rate: int, target_rate: int, block_seconds: float = RESAMPLE_BLOCK_SECONDS
) -> np.ndarray:
    """`(T,)` at `source_rate` → `(ceil(T * target_rate / source_rate),)` float32 (torchaudio's sinc filter).

    Long audio is resampled `block_seconds` at a time: torchaudio filters with a strided convolution whose
    working buffer holds about 26 floats per output sample, gigabytes for an hour of speech. torchaudio
    makes output samples `new` at a time, each group from the input around `orig` samples (`new/orig`:
    the reduced ratio); a block is cut on those groups, with `RESAMPLE_MARGIN_GROUPS` of real input on each
    side (beyond the filter's reach), so the blocks join into the one-pass result.
    """
    wave = np.ascontiguousarray(checked_wave(wave), dtype=np.float32)
    if source_rate == target_rate:
        return wave
    gcd = math.gcd(source_rate, target_rate)
    orig, new = source_rate // gcd, target_rate // gcd
    total = math.ceil(new * len(wave) / orig)
    groups, per_block = math.ceil(total / new), max(1, int(block_seconds * source_rate) // orig)
    if groups <= per_block:
        return _sinc_resample(wave, source_rate, target_rate)
    out = np.empty(total, np.float32)
    for first in range(0, groups, per_block):
        last = min(groups, first + per_block)
        start = max(0, first - RESAMPLE_MARGIN_GROUPS) * orig
        stop = min(len(wave), (last + RESAMPLE_MARGIN_GROUPS) * orig)
        skip = first - start // orig
        piece = _sinc_resample(wave[start:stop], source_rate, target_rate)[
            skip * new : (skip + last - first) * new
        ]
        out[first * new : first * new + len(piece)] = piece
    return out


def _sinc_resample(wave: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    return AF.resample(torch.from_numpy(wave), source_rate, target_rate).numpy()


def voiced_audio(
    wave: np.ndarray,
    sample_rate: int,
    aggressiveness: int = 1,
    frame_ms: int = 30,
    padding_ms: int = 300,
    trigger_ratio: float = 0.9,
    hangover_ms: int = VAD_HANGOVER_MS,
) -> np.ndarray:
    """Keep only the voiced stretches of `wave`, concatenated (WebRTC VAD with padding and a hangover).

    SF2F's released data preparation works this way, with 30 ms frames: a stretch opens when more than
    `trigger_ratio` of the last `padding_ms` of frames are voiced (those buffered frames become its lead-in)
    and closes only when more than `trigger_ratio` of its last `hangover_ms` of frames are unvoiced. With
    the defaults that is 10 voiced frames in a row to open and 10 unvoiced frames in a row (kept as the
    tail) to close, so the short pauses inside speech stay in.

    Args:
        wave: `(T,)` float32 in [-1, 1]; `sample_rate` must be 8, 16, 32 or 48 kHz (WebRTC's rates).
    Returns:
        `(T',)` float32, T' <= T; empty when nothing is voiced.
    """
    import webrtcvad

    if len(wave) == 0:
        return np.zeros(0, np.float32)
    wave = checked_wave(wave)
    vad = webrtcvad.Vad(aggressiveness)
    frame_len = sample_rate * frame_ms // 1000
    pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)
    frames = [pcm[i : i + frame_len] for i in range(0, len(pcm) - frame_len + 1, frame_len)]
    voiced = [vad.is_speech(frame.tobytes(), sample_rate) for frame in frames]
    padding, hangover = max(1, padding_ms // frame_ms), max(1, hangover_ms // frame_ms)
    keep = vad_stretches(voiced, padding, hangover, trigger_ratio)
    kept = [frame for frame, keep_it in zip(frames, keep) if keep_it]
    if not kept:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(kept).astype(np.float32) / 32767.0


def vad_stretches(
    voiced: list[bool], padding_frames: int, hangover_frames: int, trigger_ratio: float
) -> list[bool]:
    """Which frames belong to a voiced stretch, given each frame's VAD decision `(N,)` → `(N,)`.

    Closed: a stretch opens once more than `trigger_ratio` of the last `padding_frames` decisions are
    voiced, and takes those frames with it. Open: every frame is kept, and the stretch closes once more
    than `trigger_ratio` of the last `hangover_frames` decisions since it opened are unvoiced. Counting
    only the decisions seen since the switch (not the empty slots of the buffer) is what gives the
    hangover: a pause right after an onset does not end the stretch.
    """
    keep = [False] * len(voiced)
    recent: collections.deque = collections.deque(maxlen=padding_frames)  # frame indices while closed
    tail: collections.deque = collections.deque(maxlen=hangover_frames)  # decisions while open
    is_open = False
    for index, speech in enumerate(voiced):
        if not is_open:
            recent.append(index)
            if sum(voiced[i] for i in recent) > trigger_ratio * recent.maxlen:
                is_open = True
                for i in recent:
                    keep[i] = True  # the padding before the onset belongs to the stretch
                recent.clear()
        else:
            keep[index] = True
            tail.append(speech)
            if tail.count(False) > trigger_ratio * tail.maxlen:
                is_open = False
                tail.clear()
    return keep
