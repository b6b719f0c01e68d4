"""Compare runs side by side without a W&B server: `python -m experiments.compare RUN [RUN ...] [--out DIR]`.

What `make compare RUN_LIST=runs.txt OUT=DIR` runs (the file lists run folders, one per line). A RUN is a run
folder (every stage in it is compared) or one stage folder. From each stage it reads what training and
`make eval` leave there:

- `metrics.csv`, the logged curves (every run logs to W&B and to this CSV);
- `COMPLETED.json`, the test metrics at the end of training;
- `eval/metrics.json`, `make eval`'s results (the shared metrics carry the same names for all systems);
- `eval/clips/<launch>_<stage>/`, the first test clips `make eval` wrote with their speech
  (`lightning_modules/common/metrics/report_clips.py`), and `eval/speech_dependence_<launch>_<stage>.png`;
- `samples/*.png`, the newest sample grid.

It writes one self-contained folder, `--out` (default `runs/compare/<timestamp>/`): `report.html`, which links
only files copied into that folder, by relative paths, so the folder opens offline wherever it is copied;
`curves.png` (each logged metric, one line per run); `metrics.md` (final numbers, one row per run);
`sample-<i>.png`; and `run-<i>/` with run i's clips and speech-dependence picture. The page shows per test
clip the real clip, each run's generated clip and each run's control (generated from another clip's speech),
all playable with their speech; the metrics (speech-dependence rows first), curves, pictures and grids. A run
without clips keeps its metrics, and the page says which `make eval` makes them.
"""

from __future__ import annotations

import argparse
import csv
import filecmp
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
from lightning_modules.common.metrics.report_clips import INDEX as CLIP_INDEX
from lightning_modules.common.metrics.shared_evaluation import NOT_COMPUTED, SHARED_SETTING

MAX_CURVES = 12


@dataclass
class ClipSet:
    """The test clips `make eval` left in a stage's eval folder (`metrics/report_clips.py`)."""

    kind: str  # "video" or "face"
    folder: Path
    clips: list[dict]  # item, identity, seconds and file names (generated, real, control | speech)


@dataclass
class StageSummary:
    label: str
    stage: Path
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)  # key → (steps, values)
    final: dict[str, float] = field(default_factory=dict)
    not_computed: dict[str, str] = field(default_factory=dict)  # eval key → why
    sample: Path | None = None
    speech_picture: Path | None = None
    clips: ClipSet | None = None


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
    summary = StageSummary(stage_label(stage.resolve()), stage, curves=read_curves(stage / "metrics.csv"))
    for key, (_, values) in summary.curves.items():
        if key.startswith("val/"):
            summary.final[key] = values[-1]
    completed = stage / "COMPLETED.json"
    if completed.exists():
        summary.final.update(
            {k: float(v) for k, v in (json.loads(completed.read_text()).get("test") or {}).items()}
        )
    read_evaluation(stage / "eval" / "metrics.json", summary)
    samples = sorted((stage / "samples").glob("*.png"), key=lambda p: (p.stat().st_mtime, p.name))
    summary.sample = samples[-1] if samples else None
    summary.speech_picture = own_or_first(stage, stage / "eval", "speech_dependence_{}.png")
    summary.clips = read_clips(stage)
    return summary


def read_evaluation(metrics_json: Path, summary: StageSummary) -> None:
    """`make eval`'s shared metrics: values into `final`, "not computed" notes kept for the page."""
    if not metrics_json.exists():
        return
    for row in json.loads(metrics_json.read_text()).get("rows", []):
        value, key = row["ours"], f"eval/{row['metric']}"
        if not row["setting"].startswith(SHARED_SETTING):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            summary.final[key] = float(value)
        elif str(row.get("note", "")).startswith(NOT_COMPUTED):
            summary.not_computed[key] = row["note"]


def own_or_first(stage: Path, folder: Path, pattern: str) -> Path | None:
    """`folder/pattern` named after this stage (`<launch>_<stage>`, as `make eval` names it), else the first
    such file there (an evaluation written under another name)."""
    own = folder / pattern.format(f"{stage.resolve().parent.name}_{stage.resolve().name}")
    if own.exists():
        return own
    found = sorted(folder.glob(pattern.format("*")))
    return found[0] if found else None


def read_clips(stage: Path) -> ClipSet | None:
    index = own_or_first(stage, stage / "eval" / "clips", "{}/" + CLIP_INDEX)
    if index is None:
        return None
    listed = json.loads(index.read_text())
    return ClipSet(listed["kind"], index.parent, listed["clips"])


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


SPEECH_DEPENDENCE = ("speech_", "mouth_swap", "silence_", "lip_")  # the metric names of the speech checks


@dataclass
class RunMedia:
    """One run's files as copied into the report folder, as links relative to it."""

    label: str
    sample: str | None = None
    speech_picture: str | None = None
    kind: str | None = None  # "video" or "face" when the run's clips were found
    clips: list[dict] = field(default_factory=list)  # index entries, file names replaced by links


def copy_file(source: Path, out: Path, relative: str) -> str:
    """`source` copied to `out/relative` (atomically); returns the link."""
    with atomic_path(out / relative) as partial:
        shutil.copyfile(source, partial)
    return relative


def copy_media(summary: StageSummary, index: int, out: Path) -> RunMedia:
    """Everything of one run the page shows, under `run-<index>/` (the sample grid stays `sample-<index>.png`,
    where earlier reports put it)."""
    media = RunMedia(label=summary.label)
    if summary.sample is not None:
        media.sample = copy_file(summary.sample, out, f"sample-{index}.png")
    if summary.speech_picture is not None:
        media.speech_picture = copy_file(summary.speech_picture, out, f"run-{index}/speech_dependence.png")
    if summary.clips is not None:
        media.kind = summary.clips.kind
        # the index too, so the folder says what each clip is without the runs it came from
        copy_file(summary.clips.folder / CLIP_INDEX, out, f"run-{index}/clips/{CLIP_INDEX}")
        for clip in summary.clips.clips:
            links = {
                side: copy_file(summary.clips.folder / clip[side], out, f"run-{index}/clips/{clip[side]}")
                for side in CLIP_SIDES
                if clip.get(side)
            }
            media.clips.append(clip | links)
    return media


def write_markdown_table(summaries: list[StageSummary], path: Path) -> Path:
    header, rows = metrics_table(summaries)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def write_report(summaries: list[StageSummary], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    table_path = write_markdown_table(summaries, out / "metrics.md")
    curves = plot_curves(summaries, out / "curves.png")
    media = [copy_media(summary, index, out) for index, summary in enumerate(summaries)]
    page = [
        "<!doctype html><meta charset='utf-8'><title>Run comparison</title>",
        f"<style>{STYLE}</style>",
        f"<h1>Run comparison</h1><p>{len(summaries)} stage(s), written {time.strftime('%Y-%m-%d %H:%M')}</p>",
        *clips_section(summaries, media, out),  # first: what the numbers below are about
        *metrics_section(summaries),
    ]
    if curves is not None:
        page.append("<h2>Curves</h2><img src='curves.png'>")
    page += pictures_section(media)
    report = out / "report.html"
    atomic_write_text(report, "\n".join(page) + "\n")
    return [report, table_path] + ([curves] if curves else [])


STYLE = (
    "body{font-family:sans-serif} td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px;"
    "vertical-align:top}"
    " table{border-collapse:collapse} img{max-width:100%} .clip video,.clip img{width:160px;display:block}"
    " .clip audio{width:160px} .missing{color:#a00} .note{color:#555;font-size:12px}"
)


def metric_order(key: str) -> tuple[bool, str]:
    """The speech-dependence rows first: they say whether a model uses its input at all."""
    name = key.removeprefix("eval/")
    return (not name.startswith(SPEECH_DEPENDENCE), key)


def metrics_section(summaries: list[StageSummary]) -> list[str]:
    """Metrics as rows, runs as columns (a long list of metrics reads down the page); a metric `make eval`
    could not compute says why on hover."""
    keys = sorted({k for s in summaries for k in [*s.final, *s.not_computed]}, key=metric_order)
    lines = [
        "<h2>Final metrics</h2><p class='note'>Speech-dependence rows (speech_*, mouth_swap_*, silence_*, "
        "lip_*) first; n/c: not computed (hover for why).</p><table><tr><th>metric</th>"
        + "".join(f"<th>{html.escape(s.label)}</th>" for s in summaries)
        + "</tr>"
    ]
    for key in keys:
        cells = "".join(f"<td>{metric_cell(summary, key)}</td>" for summary in summaries)
        lines.append(f"<tr><th>{html.escape(key)}</th>{cells}</tr>")
    return lines + ["</table>"]


def metric_cell(summary: StageSummary, key: str) -> str:
    if key in summary.final:
        return f"{summary.final[key]:.4g}"
    if key in summary.not_computed:
        return f"<span title='{html.escape(summary.not_computed[key], quote=True)}'>n/c</span>"
    return "—"


def clips_section(summaries: list[StageSummary], media: list[RunMedia], out: Path) -> list[str]:
    """Per test clip one row: the real clip(s), each run's generated clip, each run's control."""
    lines = ["<h2>Test clips</h2>", f"<p class='note'>{html.escape(MATCHING)}</p>"]
    lines += [missing_clips_note(summary) for summary, run in zip(summaries, media) if not run.clips]
    count = max((len(run.clips) for run in media), default=0)
    if not count:
        return lines
    with_clips = [run for run in media if run.clips]
    lines.append(
        "<table><tr><th>clip</th><th>real</th>"
        + "".join(f"<th>generated<br>{html.escape(run.label)}</th>" for run in with_clips)
        + "".join(f"<th>control: other clip's speech<br>{html.escape(run.label)}</th>" for run in with_clips)
        + "</tr>"
    )
    for item in range(count):
        lines.append(clip_row(item, with_clips, out))
    return lines + ["</table>"]


MATCHING = (
    "Row i holds test clip i of each run: the i-th item its `make eval` scored (the first clips of the test "
    "split, in order). Runs of one system on the same data therefore show the same clip; for runs of "
    "different systems or data the row pairs clips by position only, and each cell names its speaker. "
    "Real clips that are the same file content are shown once. Face systems (one face per speech) show the "
    "face with the speech it was made from and have no control."
)
CLIP_SIDES = ("generated", "real", "control", "speech")


def clip_row(item: int, runs: list[RunMedia], out: Path) -> str:
    entries = [(run, run.clips[item]) for run in runs if item < len(run.clips)]
    reals, seen = [], []
    for run, clip in entries:
        # one system on one data set: the same real clip in every run, shown once
        if clip.get("real") and not any(filecmp.cmp(out / clip["real"], out / o, False) for o in seen):
            seen.append(clip["real"])
            reals.append(
                medium(clip["real"], " · ".join(part for part in (run.label, clip["identity"]) if part))
            )
    cells = [f"<td>{item}</td>", "<td class='clip'>" + "".join(reals) + "</td>"]
    for side in ("generated", "control"):
        for run in runs:
            clip = run.clips[item] if item < len(run.clips) else {}
            cells.append(f"<td class='clip'>{clip_cell(run, clip, side)}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def clip_cell(run: RunMedia, clip: dict, side: str) -> str:
    if not clip.get(side):
        return "—"
    caption = " · ".join(part for part in (clip["identity"], f"{clip['seconds']:.2f} s") if part)
    speech = medium(clip["speech"], "") if run.kind == "face" and side == "generated" else ""
    return medium(clip[side], caption) + speech


def medium(link: str, caption: str) -> str:
    """The element that plays or shows `link` (a video with its speech, a face, or speech alone)."""
    source = html.escape(link, quote=True)
    if link.endswith(".mp4"):
        element = f"<video controls preload='auto' src='{source}'></video>"
    elif link.endswith(".wav"):
        element = f"<audio controls preload='auto' src='{source}'></audio>"
    else:
        element = f"<img src='{source}'>"
    return element + (f"<div class='note'>{html.escape(caption)}</div>" if caption else "")


def missing_clips_note(summary: StageSummary) -> str:
    experiment, run = summary.stage.parents[1].name, summary.stage.parent.name
    command = f"make eval EXP={experiment} CKPT={summary.stage}"
    return (
        f"<p class='missing'>{html.escape(summary.label)}: no test clips (evaluated before `make eval` wrote "
        f"them, or never evaluated; launch {html.escape(run)}). Make them with "
        f"<code>{html.escape(command)}</code>, then compare again.</p>"
    )


def pictures_section(media: list[RunMedia]) -> list[str]:
    lines = ["<h2>Does the output follow the speech? (make eval's speech-dependence picture)</h2>"]
    lines += [
        f"<h3>{html.escape(run.label)}</h3><img src='{run.speech_picture}'>"
        for run in media
        if run.speech_picture
    ]
    lines.append("<h2>Samples (newest grid of each run)</h2>")
    lines += [f"<h3>{html.escape(run.label)}</h3><img src='{run.sample}'>" for run in media if run.sample]
    return lines


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
