"""Scores of per-label binary decisions (TCSAN's action units, its AU classifier and Audio2AU)."""

from __future__ import annotations

import torch


class BinaryLabelScores:
    """Per-label F1 and accuracy of binary decisions pooled over every frame seen (TCSAN's AU metrics).

    `update(predicted, target)` takes `(N, K)` 0/1 (or bool) tensors or arrays of the valid frames only;
    `compute(names)` returns `{name: {"f1", "accuracy"}}` plus `mean` (the arithmetic mean over labels,
    as the paper averages its per-AU columns). F1 of a label with no positive target and no positive
    prediction is NaN (undefined), and is left out of the mean.
    """

    def __init__(self, num_labels: int):
        self.counts = torch.zeros(4, num_labels, dtype=torch.float64)  # tp, fp, fn, tn

    def update(self, predicted, target) -> None:
        predicted = torch.as_tensor(predicted).bool().cpu()
        target = torch.as_tensor(target).bool().cpu()
        self.counts += torch.stack(
            [
                (predicted & target).sum(0),
                (predicted & ~target).sum(0),
                (~predicted & target).sum(0),
                (~predicted & ~target).sum(0),
            ]
        ).double()

    def compute(self, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
        tp, fp, fn, tn = self.counts
        total = self.counts.sum(0)
        f1 = torch.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn).clamp_min(1), torch.nan)
        accuracy = torch.where(total > 0, (tp + tn) / total.clamp_min(1), torch.nan)
        scores = {name: {"f1": float(f1[i]), "accuracy": float(accuracy[i])} for i, name in enumerate(names)}
        scores["mean"] = {"f1": float(torch.nanmean(f1)), "accuracy": float(torch.nanmean(accuracy))}
        return scores
