"""Identity classifiers fitted on real faces, then asked who a generated face is (Wav2Pix's evaluation).

The paper fine-tunes VGG-Face on the real faces of its identities. Those weights cannot be loaded offline,
so two substitutes are offered, and reports name the one used:

- `cnn`: a small CNN trained from scratch on the real training faces (works on any face images,
  including the generated demo faces, whose identities differ in colour and geometry);
- `dlib`: dlib's 128-D face descriptor with a nearest-centroid rule (a real face-recognition network,
  but trained to ignore colour, so near chance on the demo's recoloured faces).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..images import unit_to_imagenet
from ..pretrained.face_embedding import DlibFaceEmbedder


def _small_cnn(num_classes: int) -> nn.Module:
    """`(B, 3, S, S)` in [0, 1] → `(B, num_classes)` logits; four conv blocks and global pooling."""
    blocks, width = [], 3
    for out in (32, 64, 128, 128):
        blocks += [
            nn.Conv2d(width, out, 3, padding=1),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        width = out
    return nn.Sequential(
        *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(width, num_classes)
    )


class CnnProbe:
    """A from-scratch CNN classifier; `fit` trains it on real faces with small shifts and flips."""

    name = "small CNN trained on the real training faces"

    def __init__(self, epochs: int = 30, batch_size: int = 64, seed: int = 0):
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed

    def fit(self, faces: torch.Tensor, labels: torch.Tensor) -> CnnProbe:
        """faces `(N, 3, S, S)` in [0, 1], labels `(N,)` int64."""
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.network = _small_cnn(int(labels.max()) + 1)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=1e-3)
        self.network.train()
        for _ in range(self.epochs):
            for index in torch.randperm(len(faces), generator=generator).split(self.batch_size):
                loss = F.cross_entropy(self.network(_augment(faces[index], generator)), labels[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.network.eval()
        return self

    @torch.no_grad()
    def predict(self, faces: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.network(chunk).argmax(1) for chunk in faces.split(256)])


def _augment(faces: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 1/16 of the side and horizontal flips."""
    pad = max(1, faces.shape[-1] // 16)
    padded = F.pad(faces, (pad,) * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    shifted = padded[..., dy : dy + faces.shape[-2], dx : dx + faces.shape[-1]]
    return shifted.flip(-1) if torch.rand((), generator=generator) < 0.5 else shifted


class DlibCentroidProbe:
    """Nearest class centroid of dlib's 128-D face descriptors."""

    name = "dlib ResNet descriptor, nearest centroid"

    def fit(self, faces: torch.Tensor, labels: torch.Tensor) -> DlibCentroidProbe:
        self.embedder = DlibFaceEmbedder()
        embeddings = self._embed(faces)
        self.centroids = torch.stack([embeddings[labels == c].mean(0) for c in range(int(labels.max()) + 1)])
        return self

    def _embed(self, faces: torch.Tensor) -> torch.Tensor:
        return self.embedder(unit_to_imagenet(faces))

    @torch.no_grad()
    def predict(self, faces: torch.Tensor) -> torch.Tensor:
        return torch.cdist(self._embed(faces), self.centroids).argmin(1)


PROBES = {"cnn": CnnProbe, "dlib": DlibCentroidProbe}


def build_probe(kind: str):
    if kind not in PROBES:
        raise ValueError(f"unknown identity probe {kind!r}; choose one of {sorted(PROBES)}")
    return PROBES[kind]()
