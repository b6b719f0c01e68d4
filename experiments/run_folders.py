"""Where a run's stages live: `runs/<experiment>/<timestamp>/<stage>/`, resumed by `CKPT=last|auto|<file>`."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from experiments.configs import ExperimentError, runs_root, stage_chain

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
    runs = runs_root() / experiment
    if resume == "auto":  # a (re)queued cluster job: continue the newest run unless it finished
        earlier = sorted(p for p in runs.glob("*") if p.is_dir()) if runs.is_dir() else []
        unfinished = earlier and not all(
            (earlier[-1] / s / "COMPLETED.json").exists() for s in stage_chain(experiment)
        )
        return earlier[-1] if unfinished else runs / time.strftime("%Y%m%d-%H%M%S")
    if resume is None:
        return runs / time.strftime("%Y%m%d-%H%M%S")
    if resume == "last":
        earlier = sorted(p for p in runs.glob("*") if p.is_dir()) if runs.is_dir() else []
        if not earlier:
            raise ExperimentError(f"{runs}: no earlier run to resume. Drop CKPT=last to start one.")
        return earlier[-1]
    checkpoint = Path(resume)
    if checkpoint.is_dir():
        return checkpoint
    if not checkpoint.is_file():
        raise ExperimentError(
            f"{checkpoint}: checkpoint not found. Pass CKPT=last or an existing .ckpt file."
        )
    run_dir = checkpoint.resolve().parents[2]  # <run>/<stage>/checkpoints/<file>.ckpt
    stage = checkpoint.resolve().parents[1].name
    if stage not in stage_chain(experiment):
        raise ExperimentError(
            f"{checkpoint} was written by stage {stage!r} (run {run_dir}), which is not part of "
            f"{experiment} (stages {stage_chain(experiment)}). Resume it with EXP={run_dir.parent.name}."
        )
    return run_dir


def resume_checkpoint(stage_dir: Path, resume: str | None) -> str | None:
    """The checkpoint a resumed stage starts from: the one asked for, else the newest of `last.ckpt` and the
    `hpc_ckpt_*.ckpt` Lightning writes when SLURM signals an imminent requeue."""
    if resume is None:
        return None
    if resume.endswith(".ckpt") and Path(resume).resolve().parents[1] == stage_dir.resolve():
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
