"""Evaluation reports: our numbers beside the paper's, as JSON and as a markdown table, and a metric swept
over a condition (E2E-NR's SNR curves) as a PNG plot."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datamodules.pipeline.files import atomic_write_text


@dataclass
class ResultRow:
    """One reported number. `paper` is None where the paper gives none; values are percentages or raw."""

    metric: str
    setting: str
    ours: float
    paper: float | None = None
    note: str = ""


@dataclass
class Sweep:
    """Metrics measured along a swept condition: `curves[line][x][metric]`, one line per system or noise;
    `references[line][metric]` are drawn flat (e.g. clean speech)."""

    variable: str
    metrics: tuple[str, ...]
    curves: dict[str, dict[float, dict[str, float]]] = field(default_factory=dict)
    references: dict[str, dict[str, float]] = field(default_factory=dict)

    def extend(self, other: Sweep) -> None:
        self.curves.update(other.curves)
        self.references.update(other.references)


@dataclass
class EvaluationReport:
    system: str
    dataset: str  # e.g. "demo youtubers (synthetic)": what *our* numbers were measured on
    paper_dataset: str  # e.g. "real Youtubers, 10 identities"
    rows: list[ResultRow] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    sweep: Sweep | None = None
    noise_sweep: Sweep | None = None  # the shared metrics against SNR (`make eval … NOISE_SWEEP=1`)
    # Rows of a table laid out as the paper's (one row per method and source, one column per metric):
    # dicts with the same keys, e.g. {"method": …, "measured on": …, "PSNR": …}.
    comparison: list[dict] = field(default_factory=list)

    def extend(self, other: EvaluationReport) -> None:
        self.rows += other.rows
        self.comparison += [row for row in other.comparison if row not in self.comparison]
        self.details.update(other.details)
        self.sweep = _merged(self.sweep, other.sweep)
        self.noise_sweep = _merged(self.noise_sweep, other.noise_sweep)

    def markdown(self) -> str:
        lines = [
            f"# {self.system}: evaluation",
            "",
            f"| metric | setting | paper ({self.paper_dataset}) | ours ({self.dataset}) | note |",
            "|---|---|---|---|---|",
        ]
        for row in self.rows:
            paper = "—" if row.paper is None else f"{row.paper:g}"
            ours = "—" if row.ours != row.ours else f"{row.ours:.3f}"  # NaN: not computed, the note says why
            lines.append(f"| {row.metric} | {row.setting} | {paper} | {ours} | {row.note} |")
        if self.comparison:
            columns = list(self.comparison[0])
            lines += [
                "",
                "As laid out in the paper:",
                "",
                "| " + " | ".join(columns) + " |",
                "|" + "---|" * len(columns),
            ]
            lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in self.comparison]
        lines += [
            "",
            "Paper numbers were measured on the paper's data and models; ours on the dataset named in the "
            "header. They are comparable only when that dataset is the paper's.",
        ]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> list[Path]:
        """`metrics.json`, `results.md` and, with sweeps, `sweep.png` / `noise_sweep.png`; returns the paths
        written."""
        metrics, table = folder / "metrics.json", folder / "results.md"
        atomic_write_text(metrics, json.dumps(asdict(self), indent=1, default=str) + "\n")
        atomic_write_text(table, self.markdown())
        written = [metrics, table]
        from .plots import plot_sweep

        for name, sweep in (("sweep", self.sweep), ("noise_sweep", self.noise_sweep)):
            if sweep is not None:
                written.append(plot_sweep(sweep, folder / f"{name}.png", title=self.system))
        return written


def _merged(mine: Sweep | None, other: Sweep | None) -> Sweep | None:
    if mine is None or other is None:
        return mine or other
    mine.extend(other)
    return mine


def _cell(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
