"""Where a run's stages live: `runs/<experiment>/<launch>/<stage>/`, resumed by `CKPT=last|auto|<file>`.

A launch's folder is named by the second it started (`%Y%m%d-%H%M%S`), with `-2`, `-3`… when a launch of the
same experiment took that name in the same second; each is created once, atomically, so two launches never
share one. While a launch trains a run, the run's `RUNNING` file names it and is locked by it; the lock ends
with the process however it ends, so a `RUNNING` left by a killed launch reads as not running. A launch that
fails before the run holds any checkpoint leaves `FAILED` with its error. `CKPT=last` passes over the runs it
cannot use, naming each: for training, failed launches and runs another launch is training; for evaluation,
inference and export, runs without a checkpoint (a run still training is used with the checkpoint it holds).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import yaml

from experiments.configs import ExperimentError, runs_root, stage_chain

RUN_NAME_FORMAT = "%Y%m%d-%H%M%S"
RUN_NAME = re.compile(r"(?P<second>\d{8}-\d{6})(?:-(?P<number>\d+))?")
RUNNING_FILE = "RUNNING"
FAILED_FILE = "FAILED"
FAILED_LAUNCH = "failed launch, no checkpoint"
# A launch finding a run's RUNNING lock taken retries this long: a command checking whether the run is being
# trained holds the lock for an instant.
LOCK_RETRY_S = 1.0

# LightningCLI arguments that would move where Lightning writes checkpoints or logs. The driver keeps each
# stage in runs/<experiment>/<timestamp>/<stage>/ (COMPLETED.json, the chain's hand-over, CKPT=last), so such
# an override would leave the chain looking for checkpoints where none were written.
OUTPUT_LOCATION_KEYS = ("default_root_dir", "save_dir", "root_dir", "dirpath", "log_dir")


def refuse_output_moves(overrides: list[str]) -> None:
    """An `ExperimentError` for any override that moves Lightning's outputs, naming `TF_RUNS_DIR` instead."""
    for argument in overrides:
        key = argument.split("=", 1)[0]
        if key.startswith("--") and key.rsplit(".", 1)[-1] in OUTPUT_LOCATION_KEYS:
            raise ExperimentError(
                f"{key}: runs are written to $TF_RUNS_DIR/<experiment>/<timestamp>/<stage>/ "
                f"(now {runs_root()}), which the stage chain and CKPT=last follow. Drop {key} "
                "and set TF_RUNS_DIR=<folder> instead (make train … TF_RUNS_DIR=<folder>)."
            )


def resolve_run_dir(experiment: str, resume: str | None) -> Path:
    """The run folder a training launch works in: a new one (`resume` None, or `auto` with nothing to
    continue), the newest run `CKPT=last` takes (`last`; `auto` when that run is unfinished), or the run of a
    given run folder or checkpoint."""
    if resume == "auto":  # a (re)queued cluster job: continue the newest run unless it finished
        newest = newest_run(experiment, to_resume=True)
        unfinished = newest is not None and not all(
            (newest / s / "COMPLETED.json").exists() for s in stage_chain(experiment)
        )
        return newest if unfinished else new_run_dir(experiment)
    if resume is None:
        return new_run_dir(experiment)
    if resume == "last":
        newest = newest_run(experiment, to_resume=True)
        if newest is None:
            raise ExperimentError(
                f"{runs_root() / experiment}: no earlier run to resume. Drop CKPT=last to start one."
            )
        return newest
    checkpoint = Path(resume)
    if checkpoint.is_dir():
        return checkpoint
    if not checkpoint.is_file():
        raise ExperimentError(
            f"{checkpoint}: checkpoint not found. Pass CKPT=last or an existing .ckpt file."
        )
    stage_dir = stage_of(checkpoint)
    if stage_dir.name not in stage_chain(experiment):
        raise ExperimentError(
            f"{checkpoint} was written by stage {stage_dir.name!r} (run {stage_dir.parent}), which is not "
            f"part of {experiment} (stages {stage_chain(experiment)}). Resume it with "
            f"EXP={stage_identity(stage_dir)[0]}."
        )
    return stage_dir.parent


def new_run_dir(experiment: str) -> Path:
    """A run folder created for this launch alone: named by the second, with `-2`, `-3`… when taken."""
    runs = runs_root() / experiment
    runs.mkdir(parents=True, exist_ok=True)
    second, number = time.strftime(RUN_NAME_FORMAT), 1
    while True:
        run_dir = runs / (second if number == 1 else f"{second}-{number}")
        try:
            run_dir.mkdir()  # atomic: of two launches creating one name, one fails and tries the next
            return run_dir
        except FileExistsError:
            number += 1


def launch_order(run_dir: Path) -> tuple[str, int]:
    """Sorts run folders by when they were launched: `<second>`, `<second>-2`, … `<second>-10`."""
    name = RUN_NAME.fullmatch(run_dir.name)
    return (name["second"], int(name["number"] or 1)) if name else (run_dir.name, 1)


def newest_run(experiment: str, *, to_resume: bool) -> Path | None:
    """The newest run of `experiment` that `CKPT=last` takes, naming each newer one it passes over (see the
    module doc): `to_resume` for training, else for evaluation, inference and export."""
    runs = runs_root() / experiment
    launched = sorted((p for p in runs.iterdir() if p.is_dir()), key=launch_order) if runs.is_dir() else []
    for run_dir in reversed(launched):
        reason = skip_reason(run_dir, experiment, to_resume=to_resume)
        if reason is None:
            if not to_resume and (launch := running_launch(run_dir)):
                print(
                    f"{run_dir} is still training ({launch}): using the checkpoint it holds now",
                    file=sys.stderr,
                )
            return run_dir
        print(f"skipping {run_dir} ({reason})", file=sys.stderr)
    return None


def skip_reason(run_dir: Path, experiment: str, *, to_resume: bool) -> str | None:
    """Why `CKPT=last` passes over `run_dir`, or None when it takes it. Training resumes a run that got
    somewhere (a checkpoint, or a completed data-preparation stage) and that no other launch is training;
    evaluation takes a run holding a checkpoint, even one still training."""
    launch = running_launch(run_dir)
    if launch and to_resume:
        return f"still training: {launch}"
    usable = started(run_dir) if to_resume else run_checkpoint(run_dir, experiment) is not None
    if usable:
        return None
    if launch:
        return f"still training ({launch}), no checkpoint yet"
    return "no checkpoint to load" if started(run_dir) else FAILED_LAUNCH


def failed_launch(run_dir: Path) -> bool:
    """No launch trains `run_dir` and none got anywhere in it: it failed, or was killed, before its first
    checkpoint."""
    return not started(run_dir) and running_launch(run_dir) is None


def started(run_dir: Path) -> bool:
    """Whether a launch got anywhere in `run_dir`: a stage completed (a data-preparation stage hands on no
    checkpoint) or a checkpoint was saved."""
    patterns = ("*/COMPLETED.json", "*/checkpoints/*.ckpt", "*/hpc_ckpt_*.ckpt")
    return any(any(run_dir.glob(pattern)) for pattern in patterns)


def stage_of(checkpoint: Path) -> Path:
    """The stage folder that wrote `checkpoint`: `<run>/<stage>/checkpoints/<file>.ckpt`, or
    `<run>/<stage>/hpc_ckpt_<n>.ckpt` (Lightning's save before a SLURM requeue)."""
    folder = Path(checkpoint).resolve().parent
    return folder.parent if folder.name == "checkpoints" else folder


def stage_identity(stage_dir: Path) -> tuple[str | None, str | None, str | None]:
    """(experiment, launch, stage) of a `runs/<experiment>/<launch>/<stage>` folder; Nones for a folder
    outside that layout (an ad-hoc `default_root_dir`)."""
    parts = Path(stage_dir).parts
    return (parts[-3], parts[-2], parts[-1]) if len(parts) >= 3 else (None, None, None)


def stage_label(stage_dir: Path) -> str:
    """`<experiment>/<launch>/<stage>`: how W&B and `make compare` name a stage's run."""
    return "/".join(Path(stage_dir).parts[-3:])


def stage_checkpoint(stage_dir: Path) -> Path | None:
    """The checkpoint a stage folder offers: the one its `COMPLETED.json` hands on, else its `last.ckpt`."""
    completed = stage_dir / "COMPLETED.json"
    best = json.loads(completed.read_text())["best"] if completed.exists() else None
    if best:  # data-preparation stages complete without a checkpoint
        return Path(best)
    last = stage_dir / "checkpoints" / "last.ckpt"
    return last if last.exists() else None


def run_checkpoint(folder: Path, experiment: str) -> Path | None:
    """The checkpoint of a stage folder, else of a run folder's latest stage (in chain order: pretraining
    stages come first) that has one."""
    stages = [folder, *(folder / stage for stage in reversed(stage_chain(experiment)))]
    stages += sorted(folder.glob("*/"))[::-1]
    return next((checkpoint for stage in stages if (checkpoint := stage_checkpoint(stage))), None)


@contextmanager
def training_run(run_dir: Path) -> Iterator[None]:
    """Mark `run_dir` as trained by this process while the block runs (`RUNNING`, locked; an
    `ExperimentError` when another launch trains it). A block that fails before the run holds any checkpoint
    leaves `FAILED` with the error, so `CKPT=last` names why it passes over the run."""
    marker = _hold(run_dir / RUNNING_FILE)
    (run_dir / FAILED_FILE).unlink(missing_ok=True)
    try:
        yield
    except BaseException as error:
        if not started(run_dir):
            (run_dir / FAILED_FILE).write_text(f"{type(error).__name__}: {error}\n")
        raise
    finally:
        (run_dir / RUNNING_FILE).unlink(missing_ok=True)
        marker.close()  # ends the lock


def running_launch(run_dir: Path) -> str | None:
    """Who trains `run_dir` now ("pid N on HOST since …"), or None when no live launch holds its lock."""
    try:
        handle = (run_dir / RUNNING_FILE).open()
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another launch"
    return None


def _hold(marker: Path) -> TextIO:
    """`marker`, opened and exclusively locked by this process, naming it."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_RETRY_S
    while True:
        handle = marker.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise ExperimentError(
                f"{marker.parent}: another launch is training this run ({running_launch(marker.parent)}). "
                "Wait for it to end, or drop CKPT to start a new run."
            ) from None
        if _same_file(handle, marker):  # not a marker a launch that just ended has unlinked
            break
        handle.close()
    handle.truncate(0)
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    return handle


def _same_file(handle: TextIO, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), path.stat())
    except FileNotFoundError:
        return False


def resume_checkpoint(stage_dir: Path, resume: str | None) -> str | None:
    """The checkpoint a resumed stage starts from: the one asked for, else the newest of `last.ckpt` and the
    `hpc_ckpt_*.ckpt` Lightning writes when SLURM signals an imminent requeue."""
    if resume is None:
        return None
    if resume.endswith(".ckpt") and stage_of(Path(resume)) == stage_dir.resolve():
        return resume
    candidates = [stage_dir / "checkpoints" / "last.ckpt", *stage_dir.glob("hpc_ckpt_*.ckpt")]
    existing = [p for p in candidates if p.exists()]
    return str(max(existing, key=lambda p: p.stat().st_mtime)) if existing else None


def saved_seed(stage_dir: Path) -> list[str]:
    """A resumed stage keeps the seed its first launch drew (LightningCLI records it in config.yaml), so its
    data stream and random draws continue where they were (`datamodules/resumable.py`)."""
    config = stage_dir / "config.yaml"
    seed = (yaml.safe_load(config.read_text()) or {}).get("seed_everything") if config.exists() else None
    return [f"--seed_everything={seed}"] if isinstance(seed, int) and not isinstance(seed, bool) else []
