"""Turn a clip's frames into a track of face crops, with landmarks in crop coordinates.

Two ways, one per family of systems (the parameters are a `FaceCropConfig`, stored in the cache manifest):

- `template`: every frame is registered on its own to a fixed template by a similarity transform fitted
  to the eye and nose centres (E2E-NR); eyes and nose land on the same pixels in every crop.
- `box`: a square window around the face box (side = `box_scale` × the box's longer side), edge-padded
  where it leaves the frame, resized with area filtering. The box is one per clip (`median`, TCSAN),
  per frame (`per_frame`), or detected every `detect_every` frames and interpolated linearly (A2V).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from skimage.transform import SimilarityTransform, warp

from ..errors import DatasetError
from .faces import (
    LEFT_EYE,
    NOSE,
    RIGHT_EYE,
    Face,
    FaceDetector,
    LandmarkPredictor,
    detect_many,
    mouth_centre,
)

# E2E-NR's template anchors in a 128-px crop: right-eye, left-eye and nose centres.
TEMPLATE_ANCHORS_128 = np.array([[46.49, 39.11], [81.35, 39.11], [63.87, 57.95]])
TEMPLATE_MOUTH_128 = np.array([63.86, 78.48])


@dataclass(frozen=True)
class FaceCropConfig:
    """How frames become face crops.

    The crop side is passed separately (it is the datamodule's `image_size`).

    Args:
        method: "template" (similarity alignment) or "box" (square crop around the face box).
        detector: "dlib" (HOG) or "mtcnn".
        box_track: for "box": "median" (one box per clip), "per_frame" or "interpolate".
        detect_every: detect on frames 0, k, 2k, … and the last one; others take the tracked box.
        box_scale: crop side / the box's longer side (1.0 = tight, TCSAN; 1.3 = loose, A2V).
        min_face_px: faces whose shorter side is smaller do not count as detections (A2V: 200).
        single_face: reject the clip when a detection frame holds more than one face (A2V).
        min_detected: reject the clip when a smaller fraction of detection frames has a face.
        landmarks: also predict dlib's 68 points on every frame (mouth masks, face-part losses, metrics).
        use_face_hint: when the dataset gives the speaker's face centre (AVSpeech's csv), keep the face
            nearest to it instead of the largest, and let other faces be (overrides single_face).
    """

    method: str = "template"
    detector: str = "dlib"
    box_track: str = "median"
    detect_every: int = 1
    box_scale: float = 1.0
    min_face_px: int = 0
    single_face: bool = False
    min_detected: float = 0.5
    landmarks: bool = True
    use_face_hint: bool = False

    def __post_init__(self):
        if self.method not in ("template", "box"):
            raise ValueError(f"method must be 'template' or 'box', got {self.method!r}")
        if self.box_track not in ("median", "per_frame", "interpolate"):
            raise ValueError(f"box_track must be median, per_frame or interpolate, got {self.box_track!r}")
        if self.method == "template" and not self.landmarks:
            raise ValueError("template alignment needs landmarks=True")


@dataclass
class FaceTrack:
    """crops `(T, S, S, 3)` uint8; landmarks `(T, 68, 2)` float32 in crop pixels (frames without a detection
    carry the nearest detected frame's); detected `(T,)` bool; boxes `(T, 4)` in source pixels."""

    crops: np.ndarray
    landmarks: np.ndarray | None
    detected: np.ndarray
    boxes: np.ndarray


def detection_frames(num_frames: int, every: int) -> list[int]:
    frames = list(range(0, num_frames, every))
    return frames if frames[-1] == num_frames - 1 else frames + [num_frames - 1]


def _nearest(index: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """For each position in `index`, the nearest entry of the sorted `valid` positions."""
    right = np.clip(np.searchsorted(valid, index), 0, len(valid) - 1)
    left = np.clip(right - 1, 0, len(valid) - 1)
    return np.where(np.abs(valid[left] - index) <= np.abs(valid[right] - index), valid[left], valid[right])


def _pick_face(
    faces: list[Face], config: FaceCropConfig, path: str, frame: int, hint: np.ndarray | None
) -> Face | None:
    faces = [face for face in faces if face.side >= config.min_face_px]
    if hint is not None and faces:
        return min(faces, key=lambda face: np.hypot(*((face.box[:2] + face.box[2:]) / 2 - hint)))
    if config.single_face and len(faces) > 1:
        raise DatasetError(
            f"{path}: frame {frame} shows {len(faces)} faces; this system keeps single-speaker "
            "clips only (single_face). Remove the clip or crop it to one face."
        )
    return faces[0] if faces else None


def _detect(
    frames: np.ndarray, config: FaceCropConfig, detector: FaceDetector, path: str, hint: np.ndarray | None
) -> dict[int, Face]:
    where = detection_frames(len(frames), config.detect_every)
    detections = detect_many(detector, frames[where])
    found = {
        k: face
        for k, faces in zip(where, detections)
        if (face := _pick_face(faces, config, path, k, hint)) is not None
    }
    share = len(found) / len(where)
    if share < config.min_detected or not found:
        small = f" of at least {config.min_face_px} px" if config.min_face_px else ""
        if len(frames) == 1:  # a still picture (a user's photo), not a clip
            raise DatasetError(
                f"{path}: no face{small} found in the picture. Use a photo that shows one face, "
                "upright and unobstructed."
            )
        raise DatasetError(
            f"{path}: a face{small} was found in {len(found)} of {len(where)} checked frames "
            f"(need {config.min_detected:.0%}). No usable face: remove the clip or check that it "
            "shows one frontal face."
        )
    return found


def track_boxes(found: dict[int, Face], num_frames: int, mode: str) -> np.ndarray:
    """`(T, 4)` boxes for every frame from the detections at some frames."""
    keys = np.array(sorted(found))
    boxes = np.stack([found[k].box for k in keys])
    everywhere = np.arange(num_frames)
    if mode == "median":
        return np.repeat(np.median(boxes, axis=0)[None], num_frames, axis=0)
    if mode == "interpolate":
        return np.stack([np.interp(everywhere, keys, boxes[:, c]) for c in range(4)], axis=1)
    return np.stack([found[k].box for k in _nearest(everywhere, keys)])


def _square_window(box: np.ndarray, scale: float) -> tuple[int, int, int]:
    """Integer (left, top, side) of the square of side scale·max(w, h) centred on the box."""
    side = max(1, int(round(scale * max(box[2] - box[0], box[3] - box[1]))))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_square(image: np.ndarray, box: np.ndarray, scale: float, size: int) -> np.ndarray:
    """`(H, W, 3)` → `(size, size, 3)` uint8: the square around `box`, edge-replicated outside the image."""
    left, top, side = _square_window(box, scale)
    height, width = image.shape[:2]
    pad = max(0, -left, -top, left + side - width, top + side - height)
    if pad:
        image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    window = image[top + pad : top + pad + side, left + pad : left + pad + side]
    return np.asarray(Image.fromarray(window).resize((size, size), Image.BOX))


def box_to_crop(points: np.ndarray, box: np.ndarray, scale: float, size: int) -> np.ndarray:
    """Map `(..., 2)` source pixel coordinates into the crop `crop_square` makes from `box`."""
    left, top, side = _square_window(box, scale)
    return ((points - np.array([left, top])) * (size / side)).astype(np.float32)


def template_transform(landmarks: np.ndarray, size: int) -> SimilarityTransform:
    """Least-squares similarity taking the frame's eye and nose centres onto the template's."""
    anchors = np.stack([landmarks[RIGHT_EYE].mean(0), landmarks[LEFT_EYE].mean(0), landmarks[NOSE].mean(0)])
    return SimilarityTransform.from_estimate(anchors, TEMPLATE_ANCHORS_128 * (size / 128))


def warp_to_template(image: np.ndarray, transform: SimilarityTransform, size: int) -> np.ndarray:
    """Bilinear warp into `(size, size, 3)` uint8, black outside the source frame."""
    out = warp(
        image,
        transform.inverse,
        output_shape=(size, size),
        order=1,
        mode="constant",
        cval=0.0,
        preserve_range=True,
    )
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _template_track(
    frames: np.ndarray, found: dict[int, Face], predictor: LandmarkPredictor, size: int
) -> FaceTrack:
    keys = np.array(sorted(found))
    source_marks = {k: predictor(frames[k], found[k].box) for k in keys}
    transforms = {k: template_transform(source_marks[k], size) for k in keys}
    nearest = _nearest(np.arange(len(frames)), keys)  # undetected frames reuse the nearest good transform
    crops = np.stack([warp_to_template(frame, transforms[k], size) for frame, k in zip(frames, nearest)])
    landmarks = np.stack([transforms[k](source_marks[k]) for k in nearest]).astype(np.float32)
    boxes = np.stack([found[k].box for k in nearest])
    return FaceTrack(crops, landmarks, np.isin(np.arange(len(frames)), keys), boxes)


def _box_track(
    frames: np.ndarray,
    found: dict[int, Face],
    config: FaceCropConfig,
    size: int,
    predictor: LandmarkPredictor | None,
) -> FaceTrack:
    boxes = track_boxes(found, len(frames), config.box_track)
    crops = np.stack([crop_square(f, b, config.box_scale, size) for f, b in zip(frames, boxes)])
    landmarks = None
    if predictor is not None:
        landmarks = np.stack(
            [box_to_crop(predictor(f, b), b, config.box_scale, size) for f, b in zip(frames, boxes)]
        )
    detected = np.isin(np.arange(len(frames)), list(found))
    return FaceTrack(crops, landmarks, detected, boxes)


def track_faces(
    frames: np.ndarray,
    config: FaceCropConfig,
    size: int,
    detector: FaceDetector,
    predictor: LandmarkPredictor | None,
    path: str = "<frames>",
    face_hint: tuple[float, float] | None = None,
) -> FaceTrack:
    """`(T, H, W, 3)` uint8 frames → a `FaceTrack` of `(size, size)` crops.

    `face_hint` is the speaker's face centre as fractions (x, y) of the frame, used when the
    configuration's `use_face_hint` is set.

    Raises:
        DatasetError: naming `path` when too few frames show a usable face, or several faces where the
            configuration demands one.
    """
    every = 1 if config.method == "template" else config.detect_every
    hint = None
    if config.use_face_hint and face_hint is not None:
        hint = np.asarray(face_hint) * (frames.shape[2], frames.shape[1])
    found = _detect(
        frames, FaceCropConfig(**{**config.__dict__, "detect_every": every}), detector, path, hint
    )
    if config.method == "template":
        return _template_track(frames, found, predictor or LandmarkPredictor(), size)
    return _box_track(frames, found, config, size, predictor if config.landmarks else None)


def mouth_centres(landmarks: np.ndarray, detected: np.ndarray, size: int) -> np.ndarray:
    """`(T, 68, 2)` crop landmarks and `(T,)` detected → `(T, 2)` mouth centres for E2E-NR's mask:
    a detected frame's own (mean of points 48–67), others the clip's median, the template's with no
    detection."""
    if not detected.any():
        return np.repeat(TEMPLATE_MOUTH_128[None] * (size / 128), len(detected), axis=0).astype(np.float32)
    centres = mouth_centre(landmarks)
    centres[~detected] = np.median(centres[detected], axis=0)
    return centres.astype(np.float32)
