"""Metric-against-condition plots for evaluation reports, written as PNG files.

Some papers report only curves (E2E-NR's Fig. 5: PSNR, SSIM and NLMD against SNR), so the plot is the
result to compare, and it must be drawn on machines without a display, from evaluation jobs and tests.
Figures are therefore built as plain `matplotlib.figure.Figure`s on the Agg canvas: pyplot's global
state and its interactive backends are never touched, so nothing opens a window and concurrent calls
do not share figures.

Data layout, shared with `reports.Sweep`: `results[label][x][metric] = value`, one line per label (a
system, a noise type, ...), and optionally `references[label][metric]` drawn as dashed horizontal lines
(e.g. the clean-speech score of a system).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from datamodules.pipeline.files import atomic_path

Curves = Mapping[str, Mapping[float, Mapping[str, float]]]  # label → x → metric → value
References = Mapping[str, Mapping[str, float]]  # label → metric → value

METRIC_LABELS = {
    "psnr": "PSNR (dB) ↑",
    "ssim": "SSIM ↑",
    "nlmd_mouth": "NLMD, mouth (template px) ↓",
    "nlmd_all": "NLMD, 68 points (template px) ↓",
    "landmark_failure_rate": "landmark failure rate ↓",
    "lmd_mouth": "LMD, mouth (template px) ↓",
    "lse_d": "LSE-D (SyncNet distance) ↓",
    "lse_c": "LSE-C (SyncNet confidence) ↑",
}


def _colours(labels: Sequence[str]) -> dict[str, str]:
    """One colour per label from matplotlib's default cycle (tab10), reused when a label repeats."""
    cycle = [f"C{i}" for i in range(10)]
    return {label: cycle[i % len(cycle)] for i, label in enumerate(dict.fromkeys(labels))}


def _line(points: Mapping[float, Mapping[str, float]], metric: str) -> tuple[list[float], list[float]]:
    """xs sorted, and the metric at each (NaN where missing, which leaves a gap in the line)."""
    xs = sorted(points)
    return xs, [float(points[x].get(metric, np.nan)) for x in xs]


def curves_figure(
    results: Curves,
    metrics: Sequence[str],
    xlabel: str,
    references: References | None = None,
    title: str = "",
    highlight: Collection[str] = (),
) -> Figure:
    """A figure with one subplot per metric (side by side), one line per label of `results`, and the
    `references` as dashed horizontal lines; labels in `highlight` are drawn thicker.

    Returns:
        the Figure (on an Agg canvas), `len(metrics)` axes.
    """
    if not metrics:
        raise ValueError("no metric to plot")
    references = references or {}
    colours = _colours([*results, *references])
    figure = Figure(figsize=(4.5 * len(metrics), 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    for axis, metric in zip(axes, metrics):
        for label, points in results.items():
            bold = label in highlight
            axis.plot(
                *_line(points, metric),
                marker="." if len(points) < 15 else None,
                color=colours[label],
                linewidth=2.2 if bold else 1.2,
                alpha=1.0 if bold or not highlight else 0.7,
                label=label,
            )
        for label, values in references.items():
            if metric in values:
                axis.axhline(values[metric], color=colours[label], linestyle="--", linewidth=1.0, label=label)
        axis.set_xlabel(xlabel)
        axis.set_ylabel(METRIC_LABELS.get(metric, metric))
        axis.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="best")
    if title:
        figure.suptitle(title)
    return figure


def save_figure(figure: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write `figure` as PNG to `path` (parent folders created) → the path."""
    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=dpi, format="png")
    return Path(path)


def plot_sweep(sweep, path: str | Path, title: str = "") -> Path:
    """A `reports.Sweep` (variable, metrics, curves, references) as a PNG; lines whose label ends in
    "mean" (averages over conditions) are drawn thicker → the path."""
    highlight = [label for label in sweep.curves if label.endswith("mean")]
    metrics = tuple(sweep.metrics)
    figure = curves_figure(sweep.curves, metrics, sweep.variable, sweep.references, title, highlight)
    return save_figure(figure, path)
