"""Fault injection: a training process killed mid-run (SIGTERM as on pre-emption, SIGKILL as on a lost
node) resumes from last.ckpt at the saved step, with the optimiser and GAN state it had, and logs the
same losses, step for step, as a run that was never interrupted; its record stays whole: metrics.csv holds
every step once, from step 0, and W&B continues the one run."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

MAX_STEPS = 20  # optimiser steps: 10 Wav2Pix batches (D then G), across epochs of the tiny fixture
COMMAND = [
    sys.executable,
    "-m",
    "experiments.train",
    "wav2pix",
    "--smoke",
    f"--trainer.max_steps={MAX_STEPS}",
    "--seed_everything=7",
    "--trainer.log_every_n_steps=1",
    "--checkpoint_every_n_steps=2",
    "--trainer.val_check_interval=3",
    "--data.init_args.num_workers=1",
    "--trainer.logger=lightning.pytorch.loggers.WandbLogger",
    "--trainer.logger.init_args.offline=true",
]
LOSSES = ("train/g_loss", "train/d_loss")
# One intra-op thread: with two, how a reduction is split between threads can change the last bits of a sum,
# and Adam magnifies such bits into visible loss differences within a few steps.
# A resume that loses state moves the losses far more than LOSS_TOLERANCE. Measured with the optimisers'
# moments dropped at step 6: 0.15 % on the next G loss, then 8 % to 47 %.
# A CI run once saw 2e-5 between two processes of identical inputs.
LOSS_TOLERANCE = 1e-4
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def logged_losses(stage: Path) -> dict[int, dict[str, float]]:
    """step → losses from the stage's metrics.csv, each training step's row read once (a second row for
    the same step fails: the record must not hold a step twice)."""
    losses: dict[int, dict[str, float]] = {}
    with (stage / "metrics.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            values = {k: float(row[k]) for k in LOSSES if row.get(k)}
            if values:
                assert int(row["step"]) not in losses, f"step {row['step']} logged twice"
                losses[int(row["step"])] = values
    return losses


def wandb_run_ids(stage: Path) -> list[str]:
    """The run id of every W&B offline run folder the stage's launches wrote (`offline-run-<time>-<id>`)."""
    return [folder.name.rsplit("-", 1)[1] for folder in sorted((stage / "wandb").glob("offline-run-*"))]


def saved_step(checkpoint: Path) -> int:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]


def checkpointed_batch_logged(checkpoint: Path) -> bool:
    """Whether `checkpoint` is at optimiser step ≥ 6 and its batch's row is in metrics.csv.

    Lightning writes a step checkpoint before it hands that batch's metrics to the loggers, and the row
    reaches the disk a few milliseconds later; a process killed in between loses that one row, which no
    resumption can log again (see `ContinuedHistory`). The kill waits for the row so that it tests what
    the record promises: every row written before the kill is kept, and the resumed run goes on from there.
    """
    step = saved_step(checkpoint)
    return step >= 6 and step // 2 - 1 in logged_losses(checkpoint.parents[1])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    runs = tmp_path_factory.mktemp("uninterrupted")
    result = subprocess.run(
        COMMAND,
        env={**os.environ, **SINGLE_THREADED, "TF_RUNS_DIR": str(runs)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (stage,) = runs.glob("wav2pix/*/wav2pix")
    return logged_losses(stage)


@pytest.mark.parametrize("fault", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killed_training_resumes_with_the_losses_of_an_uninterrupted_run(fault, uninterrupted, tmp_path):
    env = {**os.environ, **SINGLE_THREADED, "TF_RUNS_DIR": str(tmp_path)}
    process = subprocess.Popen(COMMAND, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last, deadline = None, time.time() + 300
    while time.time() < deadline and process.poll() is None:
        found = list(tmp_path.glob("wav2pix/*/wav2pix/checkpoints/last.ckpt"))
        if found and checkpointed_batch_logged(found[0]):
            last = found[0]
            break
        time.sleep(0.05)
    assert last is not None, "no last.ckpt at step ≥ 6 appeared while the run was going"
    process.send_signal(fault)
    stdout, stderr = process.communicate(timeout=300)
    if fault == signal.SIGTERM:  # Lightning stops after the batch; last.ckpt is written there
        assert process.returncode == 143 and "stopped by SIGTERM" in stdout, stderr[-2000:]
    else:
        assert process.returncode == -signal.SIGKILL
    step = saved_step(last)  # a complete checkpoint: atomic writes never leave a truncated last.ckpt
    assert 6 <= step < MAX_STEPS and not (last.parents[1] / "COMPLETED.json").exists()
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["consumed"] >= 0
    # Adam's moments, G and D
    assert len(state["optimizer_states"]) == 2 and state["optimizer_states"][0]["state"]

    resumed = subprocess.run(
        [*COMMAND, "--resume", "last"], env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {last}" in resumed.stdout
    history = logged_losses(last.parents[1])  # steps are batches here
    assert set(history) == set(uninterrupted) == set(range(MAX_STEPS // 2))  # every step from 0, once
    for batch, losses in history.items():
        for key, value in losses.items():
            assert value == pytest.approx(uninterrupted[batch][key], rel=LOSS_TOLERANCE), (fault, batch, key)
    launches = wandb_run_ids(last.parents[1])
    assert len(launches) == 2 and set(launches) == {(last.parents[1] / "wandb_run_id").read_text()}


def test_resume_auto_continues_an_unfinished_run_and_otherwise_starts_one(tmp_path, monkeypatch):
    from experiments import run_folders as train

    monkeypatch.setenv("TF_RUNS_DIR", str(tmp_path))
    first = train.resolve_run_dir("wav2pix", "auto")
    assert first.parent == tmp_path / "wav2pix" and not any(first.iterdir())  # nothing yet: a new run
    stage = first / "wav2pix"
    (stage / "checkpoints").mkdir(parents=True)
    (stage / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert train.resolve_run_dir("wav2pix", "auto") == first  # unfinished: continue it
    (stage / "COMPLETED.json").write_text("{}")
    monkeypatch.setattr(train.time, "strftime", lambda _: "20991231-235959")
    assert train.resolve_run_dir("wav2pix", "auto") == tmp_path / "wav2pix" / "20991231-235959"
    # That launch failed before its first checkpoint: the next one passes over it and starts beside it.
    assert train.resolve_run_dir("wav2pix", "auto") == tmp_path / "wav2pix" / "20991231-235959-2"

    hpc = stage / "hpc_ckpt_1.ckpt"
    hpc.write_bytes(b"")
    os.utime(hpc, (time.time() + 10, time.time() + 10))  # SLURM's pre-emption save came after last.ckpt
    assert train.resume_checkpoint(stage, "auto") == str(hpc)


def test_a_checkpoint_of_another_experiment_is_refused_by_name(tmp_path):
    from experiments import run_folders as train

    checkpoint = tmp_path / "sf2f" / "20260101-000000" / "sf2f" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    with pytest.raises(train.ExperimentError, match="written by stage 'sf2f'.*EXP=sf2f"):
        train.resolve_run_dir("wav2pix", str(checkpoint))
