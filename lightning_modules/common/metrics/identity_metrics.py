"""Identity metrics on face embeddings, shared by every system that generates faces of a speaker.

Embeddings are `(N, D)` and unit-norm; row n of `generated` is the face made from identity n's speech and
row n of `reference` is identity n's ground-truth embedding (mean over its real faces, renormalised).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.retrieval import retrieval_recall

RECALL_KS = (1, 2, 5, 10)


def identity_embedding(face_embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Ground-truth embedding u_n = norm(mean_j FaceNet(img_nj)) over an identity's faces (SF2F's protocol).

    Args:
        face_embeddings: `(B, K, D)`; mask: `(B, K)` bool, True where a face exists.
    Returns:
        `(B, D)` unit-norm.
    """
    weights = mask.unsqueeze(-1).to(face_embeddings.dtype)
    mean = (face_embeddings * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    return F.normalize(mean, dim=-1)


def embedding_l1(generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-identity L1 distance summed over dimensions (SF2F's "L1"; ≈ 25.5 for random 512-d pairs).
    `(N,)`."""
    return (generated - reference).abs().sum(-1)


def embedding_cosine(generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-identity cosine similarity. `(N,)`."""
    return F.cosine_similarity(generated, reference, dim=-1)


def recall_at_k(
    generated: torch.Tensor, reference: torch.Tensor, ks: tuple[int, ...] = RECALL_KS, block_size: int = 100
) -> dict[int, float]:
    """Retrieval Recall@K: is identity n among the K gallery identities most cosine-similar to query n?

    SF2F's protocol (docs/sf2f.md): the gallery is split into consecutive blocks of `block_size` identities,
    recall is computed inside each block and averaged over blocks, and identities after the last full
    block are left out. With fewer than `block_size` identities the whole set is one block, so chance
    level is K / N rather than K %; `chance_recall` gives it.
    """
    # Every block has the same size, so the mean over blocks is the mean over the identities they hold.
    return {k: float(recall_hits(generated, reference, k, block_size).nanmean()) for k in ks}


def recall_hits(
    generated: torch.Tensor, reference: torch.Tensor, k: int, block_size: int = 100
) -> torch.Tensor:
    """Per identity, 1.0 where it is among the K gallery identities of its block most cosine-similar to its
    query, else 0.0; NaN after the last full block (`recall_at_k`'s blocking). `(N,)`; what a learning proof
    resamples identities from."""
    hits = torch.full((len(generated),), float("nan"))
    for start, stop in _blocks(len(generated), block_size):
        similarity = generated[start:stop] @ reference[start:stop].T  # (n, n); unit vectors → cosine
        target = torch.eye(stop - start, dtype=torch.bool, device=similarity.device)
        for i in range(stop - start):
            hits[start + i] = retrieval_recall(similarity[i], target[i], top_k=k).float().cpu()
    return hits


def chance_recall(
    num_identities: int, ks: tuple[int, ...] = RECALL_KS, block_size: int = 100
) -> dict[int, float]:
    """Recall@K of random embeddings under the same blocking."""
    size = block_size if num_identities >= block_size else num_identities
    return {k: min(1.0, k / size) for k in ks}


def _blocks(count: int, block_size: int) -> list[tuple[int, int]]:
    if count < 2:
        raise ValueError(f"retrieval needs at least 2 identities, got {count}")
    if count < block_size:
        return [(0, count)]
    return [(start, start + block_size) for start in range(0, count - block_size + 1, block_size)]
