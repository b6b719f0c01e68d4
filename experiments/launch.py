"""Multi-process training: which process this is, and how the processes of one launch agree.

Lightning's own launcher starts ranks > 0 itself, re-running this command with `TF_ACTIVE_STAGE` naming the
stage (`launched_stage`); a second stage needs a fresh process (`restart_for_next_stage`). Cluster
launchers (torchrun, SLURM's srun) start every process: rank 0 then chooses the run folder and the others
read it (`shared_run_dir`).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.configs import ExperimentError, runs_root
from experiments.run_folders import resolve_run_dir

ACTIVE_STAGE_VARIABLE = "TF_ACTIVE_STAGE"
INITIAL_ENVIRONMENT = frozenset(os.environ)
# How long ranks > 0 of a cluster launch wait for rank 0's decisions (run folder, data).
LAUNCH_TIMEOUT_S = 600


@dataclass(frozen=True)
class ClusterLaunch:
    """This process's place in a job whose processes a cluster launcher started, each running this entry
    point."""

    rank: int  # global rank
    world: int
    key: str  # shared by every process of this launch, and by no other launch

    @property
    def leader(self) -> bool:
        return self.rank == 0


def cluster_launch() -> ClusterLaunch | None:
    """The launch when torchrun or SLURM's srun started all the processes of a multi-process job, detected as
    Lightning detects them (torchrun first); None for one process or for Lightning's own launcher, which
    starts ranks > 0 itself (see `launched_stage`)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if TorchElasticEnvironment.detect():
        rank, world, key = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), _torchrun_key()
    elif SLURMEnvironment.detect():
        rank, world = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
        # A requeued job keeps its id and numbers its steps afresh: the restart count tells the launches
        # apart.
        key = (
            f"slurm-{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', '0')}"
            f"-r{os.environ.get('SLURM_RESTART_COUNT', '0')}"
        )
    else:
        return None
    return ClusterLaunch(rank, world, key) if world > 1 else None


def _torchrun_key() -> str:
    """torchrun's run id (`--rdzv-id`; a fresh uuid with `--standalone`) and restart count. Without an id it
    is "none"; on one node the workers' parent, the torchrun agent, then identifies the launch."""
    run_id, restart = os.environ["TORCHELASTIC_RUN_ID"], os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if run_id != "none":
        return f"torchrun-{run_id}-r{restart}"
    if os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]) != os.environ["WORLD_SIZE"]:
        raise ExperimentError(
            "torchrun across several nodes needs --rdzv-id=<a job id shared by all nodes> (e.g. "
            "with --rdzv-backend=c10d), so that every node's processes find the same run folder."
        )
    return f"torchrun-{socket.gethostname()}-{os.getppid()}-r{restart}"


def launch_marker(experiment: str, launch: ClusterLaunch) -> Path:
    """Where rank 0 of a cluster launch writes the run folder it chose, for the other ranks to read."""
    return runs_root() / ".launches" / f"{experiment}-{launch.key}"


def shared_run_dir(experiment: str, resume: str | None, launch: ClusterLaunch) -> Path:
    """`resolve_run_dir` as rank 0 of the launch decides it. Each rank deciding alone could disagree: a new
    run's name is the launch second, and `--resume auto` looks at folders rank 0 may be creating. Rank 0
    writes its answer to `launch_marker`; the others wait for it (runs/ must be on a filesystem all nodes
    share, as checkpoints and resumption also require)."""
    marker = launch_marker(experiment, launch)
    if launch.leader:
        run_dir = resolve_run_dir(experiment, resume)
        marker.parent.mkdir(parents=True, exist_ok=True)
        partial = marker.with_name(marker.name + ".partial")
        partial.write_text(str(run_dir))
        partial.replace(marker)  # atomic: a reader never sees half a path
        return run_dir
    wait_for(marker, f"rank 0 to choose the run folder of {experiment}")
    return Path(marker.read_text())


def wait_for(path: Path, what: str, timeout_s: float | None = None) -> None:
    """Poll the (shared) filesystem until `path` exists (at most `timeout_s`, default `LAUNCH_TIMEOUT_S`)."""
    timeout_s = LAUNCH_TIMEOUT_S if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise ExperimentError(
                f"waited {timeout_s:.0f} s for {what} ({path}); is runs/ on a filesystem shared "
                "by all nodes, and did rank 0 start?"
            )
        time.sleep(0.2)


def launched_stage() -> tuple[str, str] | None:
    """(run dir, stage) when this process is a DDP worker started by rank 0 for one stage."""
    value = os.environ.get(ACTIVE_STAGE_VARIABLE)
    if value is None or int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0"))) == 0:
        return None
    run_dir, stage = value.rsplit(os.pathsep, 1)
    return run_dir, stage


def restart_for_next_stage(run_dir: Path) -> None:
    """Continue the chain in a fresh process: a second DDP launch cannot reuse this one's process group.

    The command line is the same plus `--resume <run dir>`, so completed stages are skipped; the variables
    Lightning's launcher added to this process's environment are dropped so the next stage launches anew.
    """
    for name in set(os.environ) - INITIAL_ENVIRONMENT:
        os.environ.pop(name)
    argv = [a for a in sys.argv[1:] if not a.startswith("--resume")]
    print(f"[train] restarting for the next stage of {run_dir}")
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "experiments.train", *argv, "--resume", str(run_dir)])
