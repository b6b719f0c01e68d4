"""Per-clip preprocessing of talking-face video into cache entries (runs in worker processes).

`clip_item` is the job `TalkingFaceDataModule.prepare_data` (`talking_face.py`) runs for every clip: it
decodes the clip (PyAV), checks its frame rate and length, reads its audio at `sample_rate` and trims it to
exactly the frames' span, tracks the face into `image_size` crops with 68-point landmarks
(`pipeline/face_tracks.py`), optionally computes MFCCs, and returns the clip's cache entry. An unusable
clip raises `DatasetError` with the reason, and is rejected.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .errors import DatasetError
from .pipeline.audio import SILENCE_PEAK, read_audio, to_pcm16
from .pipeline.face_tracks import FaceCropConfig, track_faces
from .pipeline.faces import LandmarkPredictor, build_detector
from .pipeline.features import MfccConfig, mfcc
from .pipeline.sync import fit_length, num_samples
from .pipeline.video import convert_fps, parse_fps, read_video

_TOOLS: dict[str, object] = {}  # detector and landmark model, built once per worker process


def _tool(name: str, build):
    if name not in _TOOLS:
        _TOOLS[name] = build()
    return _TOOLS[name]


def _checked_video(job: dict):
    path = job["path"]
    video = read_video(path)
    native = parse_fps(job["native_fps"]) if job["native_fps"] else None
    if native is not None and video.fps != native:
        raise DatasetError(
            f"{path}: {float(video.fps):.3f} fps, but this dataset's clips are {float(native):.3f} fps"
            " (wrong fps: re-encoded or a different source). Remove it, or set fps to convert."
        )
    video = convert_fps(video, parse_fps(job["fps"]) if job["fps"] else None)
    if len(video.frames) < job["min_frames"]:
        raise DatasetError(
            f"{path}: {len(video.frames)} frames, fewer than the {job['min_frames']} needed "
            "(truncated clip). Remove it or re-download it."
        )
    return video


def _checked_audio(job: dict, frames: int, fps: Fraction) -> np.ndarray:
    path, rate = job["audio"] or job["path"], job["sample_rate"]
    wave = read_audio(path, rate)
    needed = num_samples(frames, fps, rate)
    if needed - len(wave) > rate / fps:  # more than one frame's worth missing
        raise DatasetError(
            f"{path}: audio lasts {len(wave) / rate:.2f} s but the video {float(frames / fps):.2f} s "
            "(audio shorter than the video). Use the complete audio file or remove the clip."
        )
    if np.abs(wave).max() < SILENCE_PEAK:
        raise DatasetError(f"{path}: the audio track is silent. Remove the clip or supply its real audio.")
    return fit_length(wave, needed)


def clip_item(job: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """Decode, check, face-track and featurise one clip (runs in a worker process)."""
    video = _checked_video(job)
    wave = _checked_audio(job, len(video.frames), video.fps)
    crop = FaceCropConfig(**job["crop"])
    detector = _tool(crop.detector, lambda: build_detector(crop.detector))
    predictor = _tool("landmarks", LandmarkPredictor) if crop.landmarks else None
    track = track_faces(
        video.frames, crop, job["image_size"], detector, predictor, job["path"], job["face_hint"]
    )
    arrays = {"frames": track.crops, "audio": to_pcm16(wave), "detected": track.detected}
    if track.landmarks is not None:
        arrays["landmarks"] = track.landmarks
    if job["mfcc"] is not None:
        arrays["mfcc"] = mfcc(wave, MfccConfig(**job["mfcc"]))
    meta = {
        "key": job["key"],
        "speaker": job["speaker"],
        "split": job["split"],
        "path": job["path"],
        "fps": str(video.fps),
        "frames": len(video.frames),
    }
    return meta, arrays
