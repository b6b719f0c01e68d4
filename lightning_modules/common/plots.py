"""Plots of evaluation results, written as PNG with the Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def plot_sweep(sweep, path: Path, title: str = "") -> Path:
    """One panel per metric of a `reports.Sweep`: a line per curve against the swept variable, and the
    references (e.g. clean speech) as dashed horizontal lines of the same colour family."""
    metrics = list(sweep.metrics)
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for label, points in sweep.curves.items():
            xs = sorted(points)
            values = [points[x].get(metric, float("nan")) for x in xs]
            mean_line = label.endswith("mean")
            axis.plot(xs, values, label=label, linewidth=2.5 if mean_line else 1.0, alpha=1.0 if mean_line else 0.6)
        for label, values in sweep.references.items():
            if metric in values:
                axis.axhline(values[metric], linestyle="--", color="black", linewidth=1, label=label)
        axis.set_xlabel(sweep.variable)
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
