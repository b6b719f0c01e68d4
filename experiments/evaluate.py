"""Evaluate checkpoints with their paper's protocol: `python -m experiments.evaluate EXP --ckpt CKPT [...]`.

What `make eval EXP=… CKPT=…` runs. CKPT is a `.ckpt` file, a stage folder (its best checkpoint), or
`last` (the newest run of EXP). The model comes from the checkpoint; the data from the stage's saved
`config.yaml` (`--data DIR` reads another root of the same layout). Several checkpoints give one table
(e.g. Wav2Pix's speech-length sweep: one checkpoint per length; E2E-NR's Proposed vs Proposed-NR). Writes
`metrics.json` and `results.md`, our numbers beside the paper's, plus `sweep.png` for swept protocols
(E2E-NR's metric-vs-SNR curves), to `--out` (default `<stage folder>/eval/`), and logs them to an offline
W&B run there (`wandb sync` uploads it).

System-specific options go through `--option KEY=VALUE` (YAML values), e.g. for E2E-NR
`--option snrs_db=[-10,0,10,20,30] --option max_clips=100 --option landmarks=false`.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

import torch
import yaml

from experiments.train import ExperimentError, runs_root, stage_chain


def resolve_checkpoint(experiment: str, value: str) -> Path:
    """A `.ckpt` path from a file, a stage folder, a run folder, or `last`."""
    if value == "last":
        runs = sorted(p for p in (runs_root() / experiment).glob("*") if p.is_dir())
        if not runs:
            raise ExperimentError(f"{runs_root() / experiment}: no run of {experiment} yet. Train first or pass CKPT=<file>.")
        value = str(runs[-1])
    path = Path(value)
    if path.is_file():
        return path
    # A stage folder, else the run folder's latest stage in chain order (pretraining stages come first).
    folders = [path] + [path / stage for stage in reversed(stage_chain(experiment))] + sorted(path.glob("*/"))[::-1]
    for folder in folders:
        best = json.loads((folder / "COMPLETED.json").read_text())["best"] if (folder / "COMPLETED.json").exists() else None
        if best:  # data-preparation stages complete without a checkpoint
            return Path(best)
        if (folder / "checkpoints" / "last.ckpt").exists():
            return folder / "checkpoints" / "last.ckpt"
    raise ExperimentError(f"{path}: no checkpoint found (not a .ckpt, and no COMPLETED.json or checkpoints/last.ckpt).")


def load_for_evaluation(checkpoint: Path, data: str | None):
    """(model, datamodule) as trained: the model from the checkpoint, the data from the stage's config."""
    from datamodules.prepare import load_class, make_datamodule

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    config_path = checkpoint.resolve().parents[1] / "config.yaml"
    if not config_path.exists():
        raise ExperimentError(f"{config_path}: the stage's config is missing; evaluate a checkpoint inside its run folder.")
    config = yaml.safe_load(config_path.read_text())
    model = load_class(config["model"]["class_path"]).load_from_checkpoint(checkpoint, map_location="cpu")
    data_args = dict(config["data"].get("init_args") or {})
    if data is not None:
        data_args["root"] = data
    datamodule = make_datamodule(config["data"]["class_path"], data_args)
    saved = state.get(type(datamodule).__qualname__)
    if saved:
        datamodule.load_state_dict(saved)
    return model, datamodule


def evaluate(experiment: str, checkpoints: list[str], data: str | None, out: str | None, options: dict,
             use_wandb: bool = True):
    report = None
    folder = Path(out) if out else resolve_checkpoint(experiment, checkpoints[0]).resolve().parents[1] / "eval"
    for value in checkpoints:
        checkpoint = resolve_checkpoint(experiment, value)
        model, datamodule = load_for_evaluation(checkpoint, data)
        if not hasattr(model, "paper_evaluation"):
            raise ExperimentError(f"{type(model).__name__} has no paper evaluation yet.")
        check_options(model.paper_evaluation, options)
        datamodule.prepare_data()
        datamodule.setup("test")
        print(f"[eval] {checkpoint}", file=sys.stderr)
        extra = {"out_dir": str(folder)} if "out_dir" in inspect.signature(model.paper_evaluation).parameters else {}
        part = model.paper_evaluation(datamodule, **{**extra, **options})
        part.details = {str(checkpoint): part.details}
        if report is None:
            report = part
        else:
            report.extend(part)
    written = report.write(folder)
    if use_wandb:
        log_to_wandb(report, written, folder, experiment)
    print(report.markdown())
    print(f"[eval] wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return report


def check_options(method, options: dict) -> None:
    accepted = [name for name in inspect.signature(method).parameters if name not in ("datamodule", "out_dir")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ExperimentError(f"unknown evaluation option(s) {unknown}; this system accepts {accepted}")


def log_to_wandb(report, written: list[Path], folder: Path, experiment: str) -> None:
    """The table and plots as an offline W&B run grouped with the experiment's training runs."""
    import wandb

    from experiments.cli import WANDB_PROJECT

    run = wandb.init(project=WANDB_PROJECT, dir=str(folder), mode="offline", group=experiment, job_type="eval",
                     name=f"{experiment}/eval", config={"dataset": report.dataset})
    columns = ["metric", "setting", "paper", "ours", "note"]
    rows = [[r.metric, r.setting, r.paper, r.ours, r.note] for r in report.rows]
    run.log({"eval/results": wandb.Table(columns=columns, data=rows)})
    for path in written:
        if path.suffix == ".png":
            run.log({f"eval/{path.stem}": wandb.Image(str(path))})
    run.finish()


def parse_options(settings: list[str]) -> dict:
    options = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise ExperimentError(f"--option expects KEY=VALUE, got {setting!r}")
        options[key] = yaml.safe_load(value)
    return options


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="experiment name (experiments/<name>.yaml)")
    parser.add_argument("--ckpt", action="append", required=True, help="checkpoint, stage/run folder or 'last'; repeatable")
    parser.add_argument("--data", help="dataset root of the same layout (default: the data the run used)")
    parser.add_argument("--out", help="output folder (default: <stage folder>/eval)")
    parser.add_argument("--probe", choices=["cnn", "dlib"],
                        help="Wav2Pix: identity classifier fitted on real faces (VGG-Face substitute); default cnn")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a keyword of the system's evaluation (YAML value); repeatable")
    parser.add_argument("--no-wandb", action="store_true", help="do not log the results to an offline W&B run")
    args = parser.parse_args(argv)
    from datamodules.pipeline.errors import DatasetError

    try:
        options = parse_options(args.option)
        if args.probe:
            options["probe"] = args.probe
        evaluate(args.experiment, args.ckpt, args.data, args.out, options, use_wandb=not args.no_wandb)
    except (ExperimentError, DatasetError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
