"""Identity metrics on known inputs (docs/sf2f.md)."""

import pytest
import torch
import torch.nn.functional as F

from lightning_modules.common.metrics.identity_metrics import (
    chance_recall,
    embedding_cosine,
    embedding_l1,
    identity_embedding,
    recall_at_k,
    recall_hits,
)


def unit(n: int, d: int = 64, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_perfect_generation_scores_perfectly():
    u = unit(250)
    assert torch.allclose(embedding_cosine(u, u), torch.ones(250))
    assert torch.allclose(embedding_l1(u, u), torch.zeros(250))
    assert recall_at_k(u, u) == {1: 1.0, 2: 1.0, 5: 1.0, 10: 1.0}


def test_random_embeddings_sit_at_chance_within_100_blocks():
    recalls = [recall_at_k(unit(300, seed=s), unit(300, seed=100 + s)) for s in range(5)]
    for k in (1, 5, 10):
        mean = sum(r[k] for r in recalls) / len(recalls)
        assert mean == pytest.approx(k / 100, abs=0.025)
    assert chance_recall(378) == {1: 0.01, 2: 0.02, 5: 0.05, 10: 0.1}


def test_small_sets_are_one_block_with_matching_chance():
    assert chance_recall(10) == {1: 0.1, 2: 0.2, 5: 0.5, 10: 1.0}
    u = unit(10)
    swapped = u[[1, 0, *range(2, 10)]]
    assert recall_at_k(swapped, u)[1] == pytest.approx(0.8)


def test_per_identity_hits_name_the_missed_identities_and_skip_the_partial_block():
    u = unit(250)
    swapped = u[[1, 0, *range(2, 250)]]
    hits = recall_hits(swapped, u, k=1)
    assert hits[:2].tolist() == [0.0, 0.0] and bool((hits[2:200] == 1).all())
    assert bool(hits[200:].isnan().all())  # after the last full block of 100, as recall_at_k leaves them out


def test_l1_of_random_512d_pairs_matches_the_papers_scale():
    assert embedding_l1(unit(2000, 512), unit(2000, 512, seed=1)).mean() == pytest.approx(25.5, abs=0.3)


def test_identity_embedding_ignores_padding():
    faces = torch.zeros(1, 3, 4)
    faces[0, 0, 0] = faces[0, 1, 0] = 1.0
    faces[0, 2, 1] = 100.0  # padding row: must not count
    mask = torch.tensor([[True, True, False]])
    assert torch.allclose(identity_embedding(faces, mask), torch.tensor([[1.0, 0, 0, 0]]))


def test_thumbnail_embedder_separates_tints_and_ignores_nothing_else():
    from lightning_modules.common.pretrained.face_embedding import build_face_embedder

    embed = build_face_embedder("thumbnail")
    base = torch.rand(1, 3, 64, 64)
    tinted = base.clone()
    tinted[:, 0] += 0.5
    out = embed(torch.cat([base, base, tinted]))
    assert out.shape == (3, 768) and torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(out[0], out[1]) and (out[0] - out[2]).abs().sum() > 0.1
    with pytest.raises(ValueError, match="'vgg'"):
        build_face_embedder("vgg")


def test_binary_label_scores_pool_frames_and_average_labels():
    from lightning_modules.common.metrics.label_scores import BinaryLabelScores

    scores = BinaryLabelScores(2)
    scores.update(torch.tensor([[1, 0], [1, 0]]), torch.tensor([[1, 0], [0, 0]]))
    scores.update(torch.tensor([[0, 0]]), torch.tensor([[1, 0]]))
    result = scores.compute(("a", "b"))
    assert result["a"] == {"f1": 0.5, "accuracy": pytest.approx(1 / 3)}  # tp 1, fp 1, fn 1, tn 0
    assert result["b"]["accuracy"] == 1.0 and result["b"]["f1"] != result["b"]["f1"]  # F1 undefined: NaN
    assert result["mean"] == {"f1": 0.5, "accuracy": pytest.approx(2 / 3)}  # NaN F1 left out of the mean
