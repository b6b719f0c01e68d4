"""Does a generated image contain a face? Wav2Pix's landmark detection rate (docs/wav2pix.md),
also used to count E2E-NR's frames where landmarks cannot be found.

The rule, exactly: uint8 RGB → resize to 256×256 (bicubic) → zero-pad 64 px on every side (384×384; tight
crops need a border for the HOG detector to fire) → dlib HOG detector with no upsampling → on the
highest-scoring box, the 68-point predictor must place all 68 points inside the image. The full-image box
is never used as a fallback: the predictor always returns 68 points, which would make the rate 100 %.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from datamodules.pipeline.faces import DlibDetector, LandmarkPredictor

RESIZE_TO = 256
BORDER = 64


@lru_cache(maxsize=1)
def _models() -> tuple[DlibDetector, LandmarkPredictor]:
    return DlibDetector(upsample=0, max_side=None), LandmarkPredictor()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """`(B, 3, H, W)` in [0, 1] → `(B, H, W, 3)` uint8."""
    return (images.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def all_landmarks_found(image: np.ndarray) -> bool:
    """`(H, W, 3)` uint8 RGB → whether a face with all 68 landmarks inside the image is found."""
    resized = np.asarray(Image.fromarray(image).resize((RESIZE_TO, RESIZE_TO), Image.BICUBIC))
    padded = np.pad(resized, ((BORDER, BORDER), (BORDER, BORDER), (0, 0)))
    detector, predictor = _models()
    faces = detector(padded)
    if not faces:
        return False
    best = max(faces, key=lambda face: face.score)
    points = predictor(padded, best.box)
    side = padded.shape[0]
    return bool(((points >= 0) & (points < side)).all())


def face_found(images: torch.Tensor) -> torch.Tensor:
    """`(B, 3, H, W)` in [0, 1] → `(B,)` bool, per image, by the rule above."""
    return torch.tensor([all_landmarks_found(image) for image in to_uint8(images)], dtype=torch.bool)
