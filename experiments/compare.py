"""Compare runs side by side without a W&B server: `python -m experiments.compare RUN [RUN ...] [--out DIR]`.

What `make compare RUN_LIST=runs.txt` runs (the file lists run folders, one per line). A RUN is a run folder
(every stage in it is compared) or one stage folder. From each stage it reads what training and `make eval`
leave there:

- `metrics.csv`, the logged curves (every run logs to W&B and to this CSV);
- `COMPLETED.json`, the test metrics at the end of training;
- `eval/metrics.json`, `make eval`'s results (the shared metrics carry the same names for all systems);
- `samples/*.png`, the newest sample grid.

It writes to `--out` (default `runs/compare/<timestamp>/`): `curves.png` (each logged metric, one line
per run), `metrics.md` (final numbers, one row per run) and `report.html` (both, with the sample grids).
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from datamodules.errors import command_errors
from datamodules.pipeline.files import atomic_path, atomic_write_text
from experiments.configs import ExperimentError
from experiments.path_lists import read_path_list
from experiments.run_folders import FAILED_LAUNCH, failed_launch, new_run_dir, stage_label
from lightning_modules.common.metrics.shared_evaluation import SHARED_SETTING

MAX_CURVES = 12


@dataclass
class StageSummary:
    label: str
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)  # key → (steps, values)
    final: dict[str, float] = field(default_factory=dict)
    sample: Path | None = None


def stage_folders(path: Path) -> list[Path]:
    """`path` itself when it is a stage (it holds `config.yaml`), else the stages inside it."""
    if (path / "config.yaml").exists():
        return [path]
    stages = sorted(p.parent for p in path.glob("*/config.yaml"))
    if not stages:
        raise ExperimentError(
            f"{path}: neither a run folder nor a stage folder (no config.yaml in it or below it)."
        )
    return stages


def read_curves(metrics_csv: Path) -> dict[str, tuple[list[float], list[float]]]:
    """Lightning's CSV log (sparse rows: step, epoch and whichever keys were logged then) → curves."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    if not metrics_csv.exists():
        return curves
    with metrics_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            step = float(row.get("step") or "nan")
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None):
                    continue
                steps, values = curves.setdefault(key, ([], []))
                steps.append(step)
                values.append(float(value))
    return curves


def summarise(stage: Path) -> StageSummary:
    summary = StageSummary(label=stage_label(stage.resolve()), curves=read_curves(stage / "metrics.csv"))
    for key, (_, values) in summary.curves.items():
        if key.startswith("val/"):
            summary.final[key] = values[-1]
    completed = stage / "COMPLETED.json"
    if completed.exists():
        summary.final.update(
            {k: float(v) for k, v in (json.loads(completed.read_text()).get("test") or {}).items()}
        )
    evaluation = stage / "eval" / "metrics.json"
    if evaluation.exists():
        for row in json.loads(evaluation.read_text()).get("rows", []):
            value = row["ours"]
            if (
                row["setting"].startswith(SHARED_SETTING)
                and isinstance(value, (int, float))
                and math.isfinite(value)
            ):
                summary.final[f"eval/{row['metric']}"] = float(value)
    samples = sorted((stage / "samples").glob("*.png"), key=lambda p: (p.stat().st_mtime, p.name))
    summary.sample = samples[-1] if samples else None
    return summary


def plot_curves(summaries: list[StageSummary], path: Path) -> Path | None:
    """One panel per training/validation curve, one line per run: losses first, then the metrics most runs
    logged. (Test metrics are single numbers: they are in the table.)"""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lightning_modules.common.metrics.plots import save_figure

    def worth_plotting(key: str) -> bool:
        values = [v for s in summaries if key in s.curves for v in s.curves[key][1]]
        return (
            key.startswith(("train/", "val/"))
            and not key.endswith("_step")
            and any(math.isfinite(v) for v in values)
        )

    keys = sorted(
        (k for k in {k for s in summaries for k in s.curves} if worth_plotting(k)),
        key=lambda k: ("loss" not in k, -sum(k in s.curves for s in summaries), k),
    )[:MAX_CURVES]
    if not keys:
        return None
    columns = min(3, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure = Figure(figsize=(5 * columns, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    for index, key in enumerate(keys):
        axis = figure.add_subplot(rows, columns, index + 1)
        for colour, summary in enumerate(summaries):
            if key in summary.curves:
                steps, values = summary.curves[key]
                axis.plot(
                    steps,
                    values,
                    color=f"C{colour % 10}",
                    label=summary.label,
                    marker="." if len(values) < 20 else None,
                )
        axis.set_title(key, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=f"C{i % 10}", label=s.label) for i, s in enumerate(summaries)]
    figure.legend(handles=handles, loc="outside upper center", ncols=min(3, len(handles)), fontsize=8)
    return save_figure(figure, path, dpi=110)


def metrics_table(summaries: list[StageSummary]) -> tuple[list[str], list[list[str]]]:
    keys = sorted({k for s in summaries for k in s.final})
    rows = [[s.label] + [f"{s.final[k]:.4g}" if k in s.final else "—" for k in keys] for s in summaries]
    return ["run"] + keys, rows


def write_report(summaries: list[StageSummary], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    header, rows = metrics_table(summaries)
    markdown = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]
    table_path = out / "metrics.md"
    atomic_write_text(table_path, "\n".join(markdown) + "\n")
    curves = plot_curves(summaries, out / "curves.png")
    samples = []
    for index, summary in enumerate(summaries):
        if summary.sample is not None:
            copy = out / f"sample-{index}.png"
            with atomic_path(copy) as partial:
                shutil.copyfile(summary.sample, partial)
            samples.append((summary.label, copy.name))
    page = [
        "<!doctype html><meta charset='utf-8'><title>Run comparison</title>",
        "<style>body{font-family:sans-serif} td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px}"
        " table{border-collapse:collapse} img{max-width:100%}</style>",
        f"<h1>Run comparison</h1><p>{len(summaries)} stage(s), written {time.strftime('%Y-%m-%d %H:%M')}</p>",
        "<h2>Final metrics</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>",
    ]
    page += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
    page.append("</table>")
    if curves is not None:
        page.append("<h2>Curves</h2><img src='curves.png'>")
    page.append("<h2>Samples (newest grid of each run)</h2>")
    page += [f"<h3>{html.escape(label)}</h3><img src='{name}'>" for label, name in samples]
    report = out / "report.html"
    atomic_write_text(report, "\n".join(page) + "\n")
    return [report, table_path] + ([curves] if curves else [])


def comparable(path: Path) -> bool:
    """False, with a line naming it, for a run folder whose launch failed before its first checkpoint."""
    if not path.is_dir() or (path / "config.yaml").exists() or not failed_launch(path):
        return True
    print(f"skipping {path} ({FAILED_LAUNCH})", file=sys.stderr)
    return False


def compare(runs: list[str], out: str | None = None) -> list[Path]:
    kept = [Path(run) for run in runs if comparable(Path(run))]
    if not kept:
        raise ExperimentError(f"{', '.join(runs)}: no run to compare ({FAILED_LAUNCH}). List finished runs.")
    stages = [stage for run in kept for stage in stage_folders(run)]
    folder = Path(out) if out else new_run_dir("compare")  # runs/compare/<second>[-<n>]
    written = write_report([summarise(stage) for stage in stages], folder)
    print(f"[compare] {len(stages)} stage(s) → {', '.join(str(p) for p in written)}", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "runs", nargs="*", help="run folders (runs/<experiment>/<timestamp>) or stage folders"
    )
    parser.add_argument("--run-list", help="a text file listing run or stage folders, one per line")
    parser.add_argument("--out", help="output folder (default: runs/compare/<timestamp>)")
    args = parser.parse_args(argv)
    with command_errors():
        runs = args.runs + (read_path_list(args.run_list) if args.run_list else [])
        if not runs:
            parser.error("give run folders or --run-list")
        compare(runs, args.out)


if __name__ == "__main__":
    main()
