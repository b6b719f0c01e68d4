"""Face detection and 68-point landmarks behind one interface: dlib (HOG) or MTCNN (facenet-pytorch).

Both run offline with the models their packages ship. Detectors return every face found, largest first;
choosing one (largest, single-face rule, ...) is the caller's decision, because the systems differ there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
from PIL import Image

Box = np.ndarray  # (4,) float: x1, y1, x2, y2 in pixels

# 68-point landmark groups (iBUG indices), named for the losses and metrics that use them.
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
NOSE = slice(27, 36)
MOUTH = slice(48, 68)


@dataclass(frozen=True)
class Face:
    """One detection: box `(4,)` x1, y1, x2, y2 and a confidence (dlib's HOG score or MTCNN's probability)."""

    box: Box
    score: float

    @property
    def side(self) -> float:
        """The shorter side of the box in pixels."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


class FaceDetector(Protocol):
    def __call__(self, image: np.ndarray) -> list[Face]:
        """`(H, W, 3)` uint8 RGB → faces, largest first."""


def _largest_first(faces: list[Face]) -> list[Face]:
    return sorted(faces, key=lambda face: -face.area)


class DlibDetector:
    """dlib's HOG frontal-face detector.

    Args:
        upsample: image pyramid upsampling (1 finds faces down to ~40 px, as E2E-NR and TCSAN use).
        max_side: frames larger than this are downscaled before detection and boxes scaled back
            (TCSAN detects 1080p TCD-TIMIT at 0.25×); None never downscales.
    """

    def __init__(self, upsample: int = 1, max_side: int | None = 640):
        self.upsample, self.max_side = upsample, max_side

    @cached_property
    def _detector(self):
        import dlib

        return dlib.get_frontal_face_detector()

    def __call__(self, image: np.ndarray) -> list[Face]:
        scale = 1.0
        if self.max_side is not None and max(image.shape[:2]) > self.max_side:
            scale = self.max_side / max(image.shape[:2])
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        boxes, scores, _ = self._detector.run(np.ascontiguousarray(image), self.upsample, 0.0)
        return _largest_first(
            [
                Face(np.array([b.left(), b.top(), b.right(), b.bottom()], dtype=np.float64) / scale, float(s))
                for b, s in zip(boxes, scores)
            ]
        )


class MtcnnDetector:
    """MTCNN (facenet-pytorch, shipped weights); faces below `min_probability` are dropped.

    Args:
        device: where the networks run; None = "cuda" when a GPU is available, else "cpu".
        batch_size: on a GPU, `detect_batch` (which `detect_many` uses for a clip's detection frames) runs
            this many frames through the networks at once; on the CPU frames go one by one.
    """

    def __init__(self, min_probability: float = 0.90, device: str | None = None, batch_size: int = 32):
        import torch

        self.min_probability, self.batch_size = min_probability, batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    @property
    def batched(self) -> bool:
        """Whether a clip's frames are detected in batches (on a GPU), not one by one."""
        return not self.device.startswith("cpu")

    @cached_property
    def _mtcnn(self):
        from facenet_pytorch import MTCNN

        return MTCNN(keep_all=True, device=self.device, thresholds=[0.6, 0.7, 0.7], factor=0.709)

    def __call__(self, image: np.ndarray) -> list[Face]:
        boxes, probabilities = self._mtcnn.detect(np.ascontiguousarray(image))
        return self._faces(boxes, probabilities)

    def detect_batch(self, images: np.ndarray) -> list[list[Face]]:
        """`(N, H, W, 3)` uint8 RGB frames of one size → each frame's faces, largest first, the networks
        run on `batch_size` frames at a time."""
        faces = []
        for start in range(0, len(images), self.batch_size):
            chunk = np.ascontiguousarray(images[start : start + self.batch_size])
            boxes, probabilities = self._mtcnn.detect(chunk)
            faces += [self._faces(b, p) for b, p in zip(boxes, probabilities)]
        return faces

    def _faces(self, boxes, probabilities) -> list[Face]:
        if boxes is None:
            return []
        return _largest_first(
            [
                Face(np.asarray(box, dtype=np.float64), float(p))
                for box, p in zip(boxes, probabilities)
                if p is not None and p >= self.min_probability
            ]
        )


DETECTORS = {"dlib": DlibDetector, "mtcnn": MtcnnDetector}


def build_detector(name: str, **kwargs) -> FaceDetector:
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose one of {sorted(DETECTORS)}")
    return DETECTORS[name](**kwargs)


def detect_many(detector: FaceDetector, images: np.ndarray) -> list[list[Face]]:
    """`(N, H, W, 3)` frames of one size → each frame's faces: in batches when the detector runs batched
    (MTCNN on a GPU), otherwise frame by frame, exactly as `detector(image)`."""
    if getattr(detector, "batched", False):
        return detector.detect_batch(images)
    return [detector(image) for image in images]


class LandmarkPredictor:
    """dlib's 68-point shape predictor (the model shipped in face-recognition-models)."""

    @cached_property
    def _predictor(self):
        import dlib
        import face_recognition_models

        return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def __call__(self, image: np.ndarray, box: Box) -> np.ndarray:
        """`(H, W, 3)` uint8 and a face box → `(68, 2)` float32 (x, y) pixel coordinates."""
        import dlib

        x1, y1, x2, y2 = (int(round(v)) for v in box)
        shape = self._predictor(np.ascontiguousarray(image), dlib.rectangle(x1, y1, x2, y2))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def mouth_centre(landmarks: np.ndarray) -> np.ndarray:
    """`(..., 68, 2)` → `(..., 2)` mean of the 20 mouth points (E2E-NR's mask centre)."""
    return landmarks[..., MOUTH, :].mean(axis=-2)
