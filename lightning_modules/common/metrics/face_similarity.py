"""CSIM: how close generated faces are to the speaker's real face, by cosine of ArcFace embeddings.

Every sampled generated frame is compared with its speaker's reference: the mean of the unit embeddings of
that speaker's sampled real frames, renormalised (the pairing `identity_cosine` uses, at the level of single
frames: each generated frame counts, not a clip's mean). CSIM is the mean cosine over all generated frames.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows (or a vector) scaled to length 1, in float64."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


class ArcFaceSimilarity:
    """CSIM fed sample by sample.

    Args:
        embedder: `(N, H, W, 3)` uint8 RGB faces → `(N, D)` embeddings (`pretrained/arcface.load_arcface`).
    """

    def __init__(self, embedder: Callable[[np.ndarray], np.ndarray]):
        self.embedder = embedder
        self.generated: dict[str, list[np.ndarray]] = {}
        self.real: dict[str, list[np.ndarray]] = {}

    def update(self, generated: np.ndarray, real: np.ndarray, identity: str) -> None:
        """`generated`, `real`: `(K, H, W, 3)` uint8 RGB face crops of `identity`'s sample."""
        self.generated.setdefault(identity, []).append(unit(self.embedder(generated)))
        self.real.setdefault(identity, []).append(unit(self.embedder(real)))

    def compute(self) -> tuple[dict[str, float], dict[str, str]]:
        """({"csim": mean cosine} or nothing, {"csim": why not})."""
        if not self.generated:
            return {}, {"csim": "no sample was scored"}
        cosines = [
            np.concatenate(frames) @ unit(np.concatenate(self.real[identity]).mean(0))
            for identity, frames in self.generated.items()
        ]
        return {"csim": float(np.concatenate(cosines).mean())}, {}
