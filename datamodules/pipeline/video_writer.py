"""Writing video files atomically: H.264 mp4 (inference outputs, LRW/AVSpeech-style fixtures) and MPEG-1
program streams (GRID-style fixtures), with mono audio muxed in.

Every writer encodes into a hidden temporary name in the target folder and renames it into place, so an
interrupted run never leaves a half-written file under a real name. Frames come as one array or as an
iterable of chunks, encoded as they arrive: a long video never has to be held in memory whole.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .files import atomic_path

AUDIO_BITRATE = 64_000


def _add_audio(container: av.container.OutputContainer, codec: str, sample_rate: int):
    stream = container.add_stream(codec, rate=sample_rate)
    stream.layout = "mono"
    stream.bit_rate = AUDIO_BITRATE
    return stream


def _encode_audio(container, stream, wave: np.ndarray, sample_rate: int) -> None:
    """Feed `wave` in chunks of the encoder's frame size (AAC and MP2 need exactly that many samples)."""
    chunk = stream.codec_context.frame_size or 1024
    sample_format = stream.codec_context.format.name
    for start in range(0, len(wave), chunk):
        # Clipped piece by piece: a whole copy of an hour of speech would cost hundreds of MB.
        piece = np.clip(wave[None, start : start + chunk], -1.0, 1.0).astype(np.float32)
        if sample_format == "s16":  # MP2 takes packed 16-bit integers
            piece = (piece * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(piece, format=sample_format, layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def rgb_to_yuv420p(image: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8 RGB → `(3H/2, W)` uint8 planar YUV 4:2:0 (BT.601, limited range: the colours a
    decoder assumes for these files), chroma averaged over each 2×2 block.

    Done here in float64 element-wise arithmetic rather than by libswscale, whose SIMD and scalar paths
    round differently and are chosen by the input buffer's memory alignment: the same frames then encoded
    to different bytes depending on what the process had allocated before.
    """
    rgb = image.astype(np.float64)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 16.0 + 0.256788 * red + 0.504129 * green + 0.097906 * blue
    block = (rgb[0::2, 0::2] + rgb[0::2, 1::2] + rgb[1::2, 0::2] + rgb[1::2, 1::2]) / 4.0
    red, green, blue = block[..., 0], block[..., 1], block[..., 2]
    cb = 128.0 - 0.148223 * red - 0.290993 * green + 0.439216 * blue
    cr = 128.0 + 0.439216 * red - 0.367788 * green - 0.071427 * blue
    height, width = luma.shape
    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8).ravel() for p in (luma, cb, cr)]
    return np.concatenate(planes).reshape(height * 3 // 2, width)


def _checked_chunks(frames: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Each chunk `(t, H, W, 3)` uint8 with even sides, all of one size; at least one frame in all."""
    size, count = None, 0
    for chunk in [frames] if isinstance(frames, np.ndarray) else frames:
        if chunk.ndim != 4 or chunk.shape[-1] != 3 or chunk.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (T, H, W, 3), got {chunk.dtype} {chunk.shape}")
        if chunk.shape[1] % 2 or chunk.shape[2] % 2:
            raise ValueError(f"yuv420p needs even frame sides, got {chunk.shape[1]}×{chunk.shape[2]}")
        if size not in (None, chunk.shape[1:3]):
            raise ValueError(f"a chunk of {chunk.shape[1:3]} frames follows frames of {size}")
        size, count = chunk.shape[1:3], count + len(chunk)
        yield chunk
    if not count:
        raise ValueError("no frames to write")


def _encode_video(container, stream, chunks: Iterator[np.ndarray]) -> None:
    index = 0
    for chunk in chunks:
        for image in chunk:
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(image), format="yuv420p")
            frame.pts, index = index, index + 1
            container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _write_video(
    path: Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: int | Fraction,
    audio: np.ndarray | None,
    sample_rate: int | None,
    container_format: str,
    video_codec: str,
    audio_codec: str,
    options: dict[str, str],
) -> None:
    if audio is not None and sample_rate is None:
        raise ValueError("sample_rate is required with audio")
    chunks = _checked_chunks(frames)
    first = next(chunks)  # the stream's size, known before anything is written (no frames: ValueError)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=container_format) as container:
            video = container.add_stream(video_codec, rate=Fraction(fps), options=options)
            video.width, video.height, video.pix_fmt = first.shape[2], first.shape[1], "yuv420p"
            video.codec_context.time_base = 1 / Fraction(fps)
            sound = _add_audio(container, audio_codec, sample_rate) if audio is not None else None
            _encode_video(container, video, itertools.chain([first], chunks))
            if sound is not None:
                _encode_audio(container, sound, audio, sample_rate)


def write_mp4(
    path: Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: int | Fraction = 25,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
) -> None:
    """H.264 (yuv420p) mp4 of `frames` `(T, H, W, 3)` uint8, or of an iterable of such chunks; `audio` `(N,)`
    float muxed as mono AAC.

    `fps` may be a Fraction (NTSC's 29.97 is `Fraction(30000, 1001)`): frame k is stamped k / fps exactly.

    One encoder thread keeps the output bytes identical from run to run.
    """
    _write_video(
        path,
        frames,
        fps,
        audio,
        sample_rate,
        "mp4",
        "libx264",
        "aac",
        {"preset": "veryfast", "crf": "23", "threads": "1"},
    )


def write_mpg(
    path: Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: int | Fraction = 25,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
) -> None:
    """MPEG-1 video in an MPEG program stream (GRID's .mpg), audio as MPEG-1 layer II."""
    _write_video(
        path, frames, fps, audio, sample_rate, "mpeg", "mpeg1video", "mp2", {"b": "1500k", "threads": "1"}
    )
