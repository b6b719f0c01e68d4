"""Face-identity embedders for evaluation: FaceNet (paper protocol) or dlib's ResNet (offline proxy).

Both take ImageNet-normalised `(B, 3, H, W)` images and return unit-norm `(B, D)` embeddings.

- `facenet`: facenet-pytorch InceptionResnetV1 with VGGFace2 weights from a user path, preprocessed as in
  SF2F's evaluation (VGG-box crop, 140×140). D = 512. This is the embedding the papers' numbers use.
- `dlib`: the ResNet face-recognition model shipped in `face-recognition-models` (D = 128), on a 5-point
  alignment of the whole image. Works offline with no user weights, but its cosine/L1/recall values are
  NOT comparable with the papers' FaceNet numbers (other network, other dimension: L1 has another scale).
- `thumbnail`: a 16×16 colour thumbnail, mean-centred and L2-normalised (D = 768). Not a face-recognition
  embedding: it is the demo dataset's proxy. Every demo speaker is one real face transformed per speaker
  (tint, scale, pose), which recognition networks are built to ignore, and they also fail on blurry 64 px
  generations; the thumbnail measures exactly the per-speaker appearance the demo voices encode.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..images import imagenet_to_unit

EMBEDDERS = ("facenet", "dlib", "thumbnail")
THUMBNAIL_SIDE = 16


class DlibFaceEmbedder(nn.Module):
    """dlib's 128-d face descriptor; not differentiable, computed on the CPU."""

    dim = 128

    def __init__(self):
        super().__init__()
        import dlib
        import face_recognition_models as models

        self._landmarks = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())
        self._rectangle = dlib.rectangle

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` ImageNet-normalised → `(B, 128)` unit-norm."""
        pixels = (imagenet_to_unit(images.float()) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        descriptors = [self._describe(np.ascontiguousarray(image)) for image in pixels]
        embeddings = torch.from_numpy(np.stack(descriptors)).float().to(images.device)
        return torch.nn.functional.normalize(embeddings, dim=-1)

    def _describe(self, image: np.ndarray) -> np.ndarray:
        # Generated and dataset faces are aligned crops, so the whole image is the face box.
        height, width = image.shape[:2]
        shape = self._landmarks(image, self._rectangle(0, 0, width - 1, height - 1))
        return np.asarray(self._encoder.compute_face_descriptor(image, shape), dtype=np.float32)


class FaceNetEmbedder(nn.Module):
    """FaceNet's final 512-d embedding with SF2F's preprocessing (frozen)."""

    dim = 512

    def __init__(self, weights_path: str | None, allow_random: bool = False):
        super().__init__()
        from .facenet import FaceNetFeatures, load_facenet

        self.features = FaceNetFeatures(load_facenet(weights_path, allow_random=allow_random))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` ImageNet-normalised → `(B, 512)` unit-norm."""
        return self.features.embed(images)


class ThumbnailEmbedder(nn.Module):
    """Appearance proxy for the demo data: `(B, 3, H, W)` ImageNet-normalised → `(B, 768)` unit-norm."""

    dim = 3 * THUMBNAIL_SIDE * THUMBNAIL_SIDE

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        small = torch.nn.functional.interpolate(
            imagenet_to_unit(images.float()), size=THUMBNAIL_SIDE, mode="area"
        )
        flat = small.flatten(1)
        return torch.nn.functional.normalize(flat - flat.mean(dim=1, keepdim=True), dim=-1)


def build_face_embedder(
    kind: str, facenet_weights: str | None = None, allow_random: bool = False
) -> nn.Module:
    if kind == "dlib":
        return DlibFaceEmbedder()
    if kind == "facenet":
        return FaceNetEmbedder(facenet_weights, allow_random=allow_random)
    if kind == "thumbnail":
        return ThumbnailEmbedder()
    raise ValueError(f"face embedder must be one of {EMBEDDERS}, got {kind!r}")
