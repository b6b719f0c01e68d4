"""Upload a run's offline W&B runs: `make wandb-sync RUN=runs/<EXP>/<timestamp>` (or `EXP=…` alone for the
experiment's newest run).

Every offline run the folder holds goes up in one `wandb sync`: each stage's training run
(`<stage>/wandb/offline-run-*`) and each evaluation (`…/eval/wandb/offline-run-*`). A stage resumed after an
interruption wrote one folder per launch under one run id, and W&B joins them into that run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from datamodules.errors import command_errors
from experiments.configs import ExperimentError, require_experiment, runs_root
from experiments.run_folders import newest_run


def offline_runs(folder: Path) -> list[Path]:
    """The offline W&B run folders under `folder`, oldest launch first within each stage."""
    return sorted(path for path in folder.rglob("offline-run-*") if path.is_dir())


def run_folder(run: str | None, experiment: str | None) -> Path:
    """`run`, or the newest run of `experiment` when no run is given."""
    if run:
        folder = Path(run)
        if not folder.is_dir():
            raise ExperimentError(f"{folder}: no such run folder. Pass RUN=runs/<EXP>/<timestamp>.")
        return folder
    if not experiment:
        raise ExperimentError("name the run: RUN=runs/<EXP>/<timestamp>, or EXP=<experiment> for its newest")
    require_experiment(experiment)
    newest = newest_run(experiment, to_resume=False)
    if newest is None:
        raise ExperimentError(f"{runs_root() / experiment}: no run of {experiment} yet.")
    return newest


def sync_command(folder: Path) -> list[str]:
    """The `wandb sync` command uploading every offline run under `folder`."""
    runs = offline_runs(folder)
    if not runs:
        raise ExperimentError(
            f"{folder}: holds no offline W&B run (…/wandb/offline-run-*); a live run is on W&B already."
        )
    return [sys.executable, "-m", "wandb", "sync", *map(str, runs)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.wandb_sync",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", help="run folder, runs/<EXP>/<timestamp>")
    parser.add_argument("--experiment", help="without a run folder: this experiment's newest run")
    parser.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    args = parser.parse_args(argv)
    with command_errors():
        command = sync_command(run_folder(args.run, args.experiment))
    print(" ".join(command), flush=True)
    if not args.dry_run:
        sys.exit(subprocess.run(command).returncode)


if __name__ == "__main__":
    main()
