"""Distributed data parallel training: what DDP computes, and how the entry point behaves under launchers.

- Two CPU processes (gloo) started by
  `python -m experiments.train … --trainer.devices=2 --trainer.strategy=ddp` compute, on a global batch of 4
  (2 items each), the gradients one process computes on those 4 items.
- Under torchrun or SLURM's srun every rank runs the entry point: the ranks agree on one run folder, and
  stage chains continue in the same processes instead of restarting (unit tests of `experiments.train`;
  an end-to-end torchrun run is marked slow).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from experiments import launch as launch_entry
from experiments import run_folders
from experiments import train as train_entry

REPO = Path(__file__).resolve().parents[1]
GLOBAL_BATCH = 4
# One Wav2Pix batch at smoke size: D's optimiser step, then G's (the probe records both). Mean feature
# matching compares batch means of D's features, so it is not a per-item mean: under DDP each rank matches
# its own shard's means, a different loss from the global batch's. It is switched off for the comparison,
# as are MC dropout and, inside the probe, BatchNorm batch statistics (see tests/ddp_gradients.py).
# Double precision: in float32 G's spectrally normalised weights differ by ~5e-4 of their largest gradient,
# because the backward of W/σ(W) subtracts two nearly equal terms, and summing per rank then averaging
# rounds differently from summing once. In float64 the two runs agree to ~1e-14, so the check can be tight.
GRADIENT_RUN = [
    "--seed_everything=7",
    "--trainer.precision=64-true",
    "--trainer.max_steps=2",
    "--trainer.limit_val_batches=0",
    "--trainer.limit_test_batches=0",
    "--trainer.enable_progress_bar=false",
    "--model.init_args.mc_dropout=false",
    "--model.init_args.feature_matching_weight=0.0",
    "--data.init_args.audio_samples=4800",  # the paper's 300 ms variant: a lighter encoder
    "--trainer.callbacks+=tests.ddp_gradients.GradientProbe",
]


def probe_overrides(gradients: Path, batch_size: int) -> list[str]:
    """Overrides of a `wav2pix --smoke` run whose probe writes to `gradients`; `batch_size` is global."""
    return [
        *GRADIENT_RUN,
        f"--trainer.callbacks.path={gradients}",
        f"--data.init_args.batch_size={batch_size}",
    ]


def single_process_gradients(folder: Path, batch_size: int, monkeypatch) -> list[dict[str, torch.Tensor]]:
    """The probe's record of a one-process run with `batch_size` items per batch (in this process)."""
    monkeypatch.setenv("TF_RUNS_DIR", str(folder / "runs"))  # each run its own folder: names are seconds
    train_entry.train("wav2pix", smoke=True, overrides=probe_overrides(folder / "gradients.pt", batch_size))
    return torch.load(folder / "gradients.pt")


def ddp_gradients(folder: Path) -> list[dict[str, torch.Tensor]]:
    """The probe's record (rank 0, after the all-reduce) of a 2-process gloo run with the global batch."""
    command = [
        sys.executable,
        "-m",
        "experiments.train",
        "wav2pix",
        "--smoke",
        *probe_overrides(folder / "gradients.pt", GLOBAL_BATCH),
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
    ]
    # One thread per process: the two ranks share the machine's cores with each other.
    env = {**os.environ, "TF_RUNS_DIR": str(folder / "runs"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Starting with 2 processes" in result.stderr + result.stdout
    return torch.load(folder / "gradients.pt")


def flat(gradients: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.flatten() for _, g in sorted(gradients.items())])


def test_two_ddp_processes_give_the_gradients_of_one_process_on_the_global_batch(tmp_path, monkeypatch):
    # The single-process runs come first: they also generate the demo data the DDP ranks then share.
    whole = single_process_gradients(tmp_path / "whole", GLOBAL_BATCH, monkeypatch)
    half = single_process_gradients(tmp_path / "half", GLOBAL_BATCH // 2, monkeypatch)  # rank 0's shard alone
    ddp = ddp_gradients(tmp_path / "ddp")

    assert len(ddp) == len(whole) == len(half) == 2
    assert all(g.dtype == torch.float64 for record in ddp for g in record.values())
    discriminator, generator = whole
    assert discriminator and all(name.startswith("discriminator.") for name in discriminator)
    assert generator and not any(name.startswith("discriminator.") for name in generator)
    for step, (distributed, reference, shard) in enumerate(zip(ddp, whole, half)):
        assert distributed.keys() == reference.keys()
        for name, expected in reference.items():
            assert expected.abs().max() > 0, (step, name)  # every parameter takes part
            scale = float(expected.abs().max())
            torch.testing.assert_close(
                distributed[name], expected, rtol=1e-9, atol=1e-9 * scale, msg=f"{step} {name}"
            )
        # Teeth: rank 0's own half-batch gradient is far from it, so DDP did average over the two ranks.
        difference = (flat(shard) - flat(reference)).norm() / flat(reference).norm()
        assert difference > 0.1, (step, float(difference))


# --- launch logic: torchrun and SLURM -----------------------------------------------------------------------

LAUNCH_VARIABLES = (
    "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_RESTART_COUNT",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
    "SLURM_RESTART_COUNT",
    "SLURM_JOB_NAME",
    "SLURM_NTASKS_PER_NODE",
    "SLURM_LOCALID",
    "SLURM_NODEID",
)


@pytest.fixture
def launch_environment(monkeypatch):
    """A clean launch environment; returns a function that sets variables."""
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return lambda **variables: [monkeypatch.setenv(k, str(v)) for k, v in variables.items()]


def test_cluster_launches_are_recognised_with_a_key_per_launch(launch_environment):
    assert launch_entry.cluster_launch() is None  # a plain process (or Lightning's own launcher)

    launch_environment(
        TORCHELASTIC_RUN_ID="job7",
        TORCHELASTIC_RESTART_COUNT=1,
        RANK=3,
        WORLD_SIZE=8,
        LOCAL_RANK=1,
        LOCAL_WORLD_SIZE=4,
        GROUP_RANK=0,
    )
    assert launch_entry.cluster_launch() == launch_entry.ClusterLaunch(3, 8, "torchrun-job7-r1")

    launch_environment(TORCHELASTIC_RUN_ID="none")  # plain `torchrun` has no run id: not enough across nodes
    with pytest.raises(train_entry.ExperimentError, match="--rdzv-id"):
        launch_entry.cluster_launch()
    launch_environment(LOCAL_WORLD_SIZE=8)  # one node: the torchrun agent (our parent) names the launch
    assert launch_entry.cluster_launch().key.endswith(f"-{os.getppid()}-r1")

    launch_environment(TORCHELASTIC_RUN_ID="x", WORLD_SIZE=1, LOCAL_WORLD_SIZE=1)
    assert launch_entry.cluster_launch() is None  # one process: nothing to agree on


def test_slurm_tasks_are_a_cluster_launch(launch_environment):
    launch_environment(
        SLURM_NTASKS=8,
        SLURM_PROCID=5,
        SLURM_JOB_ID=4242,
        SLURM_STEP_ID=0,
        SLURM_RESTART_COUNT=2,
        SLURM_JOB_NAME="sf2f",
        SLURM_NTASKS_PER_NODE=4,
        SLURM_LOCALID=1,
        SLURM_NODEID=1,
    )
    launch = launch_entry.cluster_launch()
    assert launch == launch_entry.ClusterLaunch(5, 8, "slurm-4242.0-r2") and not launch.leader
    # an interactive allocation: Lightning does not use SLURM either
    launch_environment(SLURM_JOB_NAME="bash")
    assert launch_entry.cluster_launch() is None


def test_ranks_agree_on_the_run_folder_chosen_by_rank_0(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_RUNS_DIR", str(tmp_path))
    seconds = iter(["20260101-120000", "20260101-120001"])  # the two ranks' clocks read different seconds
    monkeypatch.setattr(run_folders.time, "strftime", lambda _: next(seconds))
    follower, chosen = {}, None

    def rank_1():
        follower["run"] = launch_entry.shared_run_dir("wav2pix", None, launch_entry.ClusterLaunch(1, 2, "k"))

    thread = threading.Thread(target=rank_1)
    thread.start()  # rank 1 starts first and waits for rank 0's choice
    chosen = launch_entry.shared_run_dir("wav2pix", None, launch_entry.ClusterLaunch(0, 2, "k"))
    thread.join(timeout=30)
    assert follower["run"] == chosen == tmp_path / "wav2pix" / "20260101-120000"

    monkeypatch.setattr(launch_entry, "LAUNCH_TIMEOUT_S", 0.5)  # another launch's marker is never taken
    with pytest.raises(train_entry.ExperimentError, match="rank 0 to choose the run folder"):
        launch_entry.shared_run_dir("wav2pix", None, launch_entry.ClusterLaunch(1, 2, "another"))


class FakeStages:
    """Stands in for the training of each stage: records which ran, and any restart of the entry point."""

    def __init__(self, monkeypatch, world_size: int):
        self.ran, self.restarts = [], []
        self.trainer = SimpleNamespace(world_size=world_size, interrupted=False, global_step=4)
        monkeypatch.setattr(train_entry, "run_stage", self.run_stage)
        monkeypatch.setattr(train_entry, "_stage_checkpoint", lambda _: ("best.ckpt", "val/l1 (min)"))
        monkeypatch.setattr(train_entry, "_test", lambda *_: {})
        monkeypatch.setattr(train_entry, "restart_for_next_stage", self.restarts.append)

    def run_stage(self, stage: str, stage_dir: Path, *_) -> SimpleNamespace:
        stage_dir.mkdir(parents=True, exist_ok=True)  # as the stage's Trainer does on every rank
        self.ran.append(stage)
        return SimpleNamespace(trainer=self.trainer)


@pytest.mark.parametrize("rank", [0, 1])
def test_a_cluster_launch_runs_the_whole_chain_in_its_processes(rank, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_RUNS_DIR", str(tmp_path))
    launch = launch_entry.ClusterLaunch(rank, 2, "k")
    monkeypatch.setattr(train_entry, "cluster_launch", lambda: launch)
    monkeypatch.delenv(launch_entry.ACTIVE_STAGE_VARIABLE, raising=False)
    if rank:  # what rank 0 would have written
        marker = launch_entry.launch_marker("sf2f", launch)
        marker.parent.mkdir(parents=True)
        marker.write_text(str(tmp_path / "sf2f" / "chosen"))
    stages = FakeStages(monkeypatch, world_size=2)

    run_dir = train_entry.train("sf2f", smoke=True)
    assert stages.ran == ["sf2f", "sf2f_fuser"] and stages.restarts == []  # no re-execution between stages
    summaries = sorted(p.parent.name for p in run_dir.glob("*/COMPLETED.json"))
    assert summaries == ([] if rank else ["sf2f", "sf2f_fuser"])  # rank 0 alone writes them
    if rank:
        assert run_dir == tmp_path / "sf2f" / "chosen"
    else:
        assert not launch_entry.launch_marker(
            "sf2f", launch
        ).exists()  # read by all once the stage ran: removed


def test_lightnings_own_launcher_still_restarts_between_stages(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(train_entry, "cluster_launch", lambda: None)
    monkeypatch.delenv(launch_entry.ACTIVE_STAGE_VARIABLE, raising=False)
    stages = FakeStages(monkeypatch, world_size=2)
    train_entry.train("sf2f", smoke=True)
    assert stages.restarts and stages.ran[0] == "sf2f"


@pytest.mark.slow
def test_torchrun_trains_a_two_stage_chain_on_two_processes(tmp_path):
    """`torchrun --nproc_per_node=2 -m experiments.train sf2f --smoke …` end to end (CPU, gloo): both stages,
    one run folder, the second stage in the first one's process group."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "experiments.train",
        "sf2f",
        "--smoke",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
    ]
    env = {**os.environ, "TF_RUNS_DIR": str(tmp_path)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "sf2f").iterdir()
    for stage in ("sf2f", "sf2f_fuser"):
        assert json.loads((run_dir / stage / "COMPLETED.json").read_text())["global_step"] == 4
    assert result.stdout.count("[train] sf2f_fuser: starting") == 2  # both ranks, in the same processes
    assert "restarting" not in result.stdout
