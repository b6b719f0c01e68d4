"""Bad input gets the project's own error, naming the file and the fix, or a documented fallback; never a
traceback from inside a decoder and never silently wrong data (the bad-input table of docs/reliability.md).

Property-based part: random bytes under every suffix the readers accept, random short or non-finite
signals into every audio feature, random small images into the face path; only `DatasetError` (the
project's data error) may come out, and what does come out is finite and shaped as documented.
"""

import io
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage.data import astronaut

from datamodules.errors import DatasetError
from datamodules.pipeline.audio import read_audio, resample, voiced_audio
from datamodules.pipeline.features import LogMelConfig, MfccConfig, log_mel, mfcc
from datamodules.pipeline.images import read_image
from datamodules.pipeline.video import read_video
from experiments.infer import align_face, read_face_image

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SUFFIXES = (".wav", ".flac", ".mp4", ".m4a", ".mp3", ".avi", ".png", ".jpg")
E2E_CROP = {"image_size": 128, "crop": {"method": "template", "detector": "dlib", "landmarks": True}}
BOX_CROP = {"image_size": 112, "crop": {"method": "box", "detector": "dlib", "landmarks": False}}


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- random bytes into every file reader -----------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_are_refused_by_every_reader_with_the_file_named(tmp_path, data, suffix):
    path = write(tmp_path / f"random{suffix}", data)
    for read in (
        lambda: read_audio(path, 16000),
        lambda: read_video(path),
        lambda: read_image(path, 64),
        lambda: read_face_image(path),
    ):
        try:
            result = read()
        except DatasetError as error:
            assert str(path) in str(error)
        else:  # a few bytes can happen to be a valid file; then the result must be sane
            values = result.frames if hasattr(result, "frames") else result
            assert np.isfinite(np.asarray(values, dtype=np.float64)).all()


# --- random signals into every audio transform ------------------------------------------------------

signals = st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=3000).map(
    lambda v: np.asarray(v, dtype=np.float32)
)


@FUZZ
@given(wave=signals)
def test_random_short_or_broken_signals_give_features_or_a_clear_error(wave):
    for transform in (
        lambda w: log_mel(w, LogMelConfig()),
        lambda w: mfcc(w, MfccConfig()),
        lambda w: voiced_audio(w, 16000),
        lambda w: resample(w, 44100, 16000),
    ):
        try:
            result = transform(wave)
        except DatasetError as error:
            assert "no audio samples" in str(error) or "NaN or infinite" in str(error)
        else:
            assert np.isfinite(result).all()
            assert np.isfinite(wave).all()  # a NaN sample never yields "valid" features


# --- random pictures into the face path ------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(side=st.integers(1, 96), channels=st.sampled_from([None, 1, 2, 3, 4]), seed=st.integers(0, 2**16))
def test_random_pictures_are_refused_as_faceless(tmp_path, side, channels, seed):
    rng = np.random.default_rng(seed)
    shape = (side, side) if channels is None else (side, side, channels)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    mode = {None: "L", 1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    path = tmp_path / "noise.png"
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)
    image = read_face_image(path)
    assert image.shape == (side, side, 3) and image.dtype == np.uint8
    with pytest.raises(DatasetError, match="noise.png"):
        align_face(image, BOX_CROP, path)


# --- the bad-input table (docs/reliability.md), case by case -------------------------------------------


def face_photo(path: Path, mode: str = "RGB", scale: float = 1.0) -> Path:
    image = Image.fromarray(astronaut()).convert(mode)
    if scale != 1.0:
        image = image.resize((int(image.width * scale), int(image.height * scale)))
    image.save(path)
    return path


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK"])
def test_grey_alpha_palette_and_cmyk_photos_are_converted(tmp_path, mode):
    path = face_photo(tmp_path / ("face.jpg" if mode == "CMYK" else "face.png"), mode)
    crop = align_face(read_face_image(path), BOX_CROP, path)
    assert crop.shape == (112, 112, 3)


def phone_portrait(path: Path) -> Path:
    """A JPEG as phones store portraits: the pixels turned a quarter (landscape) plus EXIF orientation 6,
    which says "rotate 90° clockwise to display"."""
    upright = Image.fromarray(astronaut())
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    upright.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)
    return path


def test_a_phone_photo_is_read_upright_everywhere(tmp_path):
    path = phone_portrait(tmp_path / "portrait.jpg")
    upright = np.asarray(Image.fromarray(astronaut()), dtype=np.float32)
    for pixels in (read_face_image(path), read_image(path, None).transpose(1, 2, 0)):
        assert pixels.shape == upright.shape and np.abs(pixels - upright).mean() < 8  # JPEG error only
    assert align_face(read_face_image(path), E2E_CROP, path).shape == (128, 128, 3)


def test_a_faceless_picture_is_named_as_a_picture_not_a_clip(tmp_path):
    path = tmp_path / "wall.png"
    Image.new("RGB", (256, 256), (120, 120, 120)).save(path)
    with pytest.raises(DatasetError, match="wall.png: no face found in the picture") as error:
        align_face(read_face_image(path), E2E_CROP, path)
    assert "clip" not in str(error.value)


def test_a_huge_photo_is_detected_at_a_bounded_size(tmp_path):
    path = face_photo(tmp_path / "huge.png", scale=5.0)  # 2560 × 2560
    crop = align_face(read_face_image(path), E2E_CROP, path)
    assert crop.shape == (128, 128, 3)


def test_two_faces_in_a_photo_use_the_largest(tmp_path):
    face = astronaut()
    canvas = np.zeros((512, 1024, 3), np.uint8)
    canvas[:, :512] = face
    canvas[128:384, 512 + 128 : 512 + 384] = np.asarray(Image.fromarray(face).resize((256, 256)))
    path = tmp_path / "two.png"
    Image.fromarray(canvas).save(path)
    crop = align_face(canvas, BOX_CROP, path)
    assert crop.shape == (112, 112, 3)


def test_a_non_utf8_file_name_is_read_and_named(tmp_path):
    name = bytes(tmp_path / "caf") + b"\xe9.wav"  # Latin-1 é: not valid UTF-8
    sf.write(name, np.zeros(16000, np.float32) + 0.1, 16000)
    path = Path(name.decode("utf-8", "surrogateescape"))
    assert read_audio(path, 16000).shape == (16000,)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(DatasetError, match="empty.wav"):
        read_audio(tmp_path / "empty.wav", 16000)


@pytest.mark.parametrize("rate, channels", [(8000, 1), (44100, 2), (48000, 6)])
def test_any_rate_and_channel_count_becomes_mono_at_the_models_rate(tmp_path, rate, channels):
    path = tmp_path / "speech.wav"
    sf.write(path, np.full((rate, channels), 0.25, np.float32), rate)
    wave = read_audio(path, 16000)
    assert wave.shape == (16000,) and np.allclose(wave[100:-100], 0.25, atol=1e-3)


def test_float_audio_with_nan_samples_is_refused(tmp_path):
    path = tmp_path / "nan.wav"
    wave = np.zeros(1600, np.float32)
    wave[10] = np.nan
    sf.write(path, wave, 16000, subtype="FLOAT")
    with pytest.raises(DatasetError, match="nan.wav: 1 of its 1600 samples are NaN"):
        read_audio(path, 16000)


def test_a_video_without_audio_stream_is_named(tmp_path):
    path = tmp_path / "mute.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for _ in range(5):
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24"))
            )
        container.mux(stream.encode())
    assert len(read_video(path).frames) == 5
    with pytest.raises(DatasetError, match="mute.mp4: the file has no audio stream"):
        read_audio(path, 16000)


def test_a_truncated_video_is_named_with_where_it_broke(tmp_path):
    path = tmp_path / "clip.mp4"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(50):
            frame = np.full((64, 64, 3), i * 5, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DatasetError, match="clip.mp4: the video"):
        read_video(path)
