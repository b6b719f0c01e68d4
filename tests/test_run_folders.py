"""Run folders: every launch gets its own (`<second>`, `<second>-2`, …, created atomically), and `CKPT=last`
passes over, naming them, the runs it cannot use: launches that failed before their first checkpoint (all
commands), runs another launch is still training (training; evaluation uses the checkpoint such a run holds).

The run folders here are built as training leaves them, with tiny checkpoint files, except in the test of two
real launches started together."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from datamodules.errors import DatasetError
from experiments.checkpoints import resolve_checkpoint
from experiments.compare import compare
from experiments.configs import ExperimentError, config_value, experiment_names, stage_chain
from experiments.run_folders import (
    FAILED_LAUNCH,
    launch_order,
    new_run_dir,
    resolve_run_dir,
    running_launch,
    training_run,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_RUNS_DIR", str(tmp_path))
    return tmp_path


def finished_run(run_dir: Path, experiment: str) -> Path:
    """`run_dir` as a finished run of `experiment` leaves it (each stage's config, tiny checkpoint and
    COMPLETED.json); returns the checkpoint its last stage hands on."""
    for stage in stage_chain(experiment):
        stage_dir = run_dir / stage
        (stage_dir / "checkpoints").mkdir(parents=True)
        (stage_dir / "config.yaml").write_text("{}\n")
        handed_on = None
        if config_value(stage, "job") != "prepare":  # a data-preparation stage hands on no checkpoint
            handed_on = stage_dir / "checkpoints" / "best-4.ckpt"
            torch.save({"state_dict": {}}, handed_on)
        (stage_dir / "COMPLETED.json").write_text(json.dumps({"best": handed_on and str(handed_on)}))
    return handed_on


def failed_launch(run_dir: Path, experiment: str) -> Path:
    """`run_dir` as a launch leaves it that fails before its first step (`make train DATA=<missing folder>`):
    its first stage holds only the W&B run id."""
    stage_dir = run_dir / stage_chain(experiment)[0]
    with pytest.raises(DatasetError), training_run(run_dir):
        stage_dir.mkdir(parents=True)
        (stage_dir / "wandb_run_id").write_text("0123abcd")
        raise DatasetError("/data/missing: no dataset found. Pass DATA=<the dataset folder>.")
    return run_dir


def test_launches_in_one_second_get_numbered_folders_in_launch_order(runs, monkeypatch):
    from experiments import run_folders

    monkeypatch.setattr(run_folders, "RUN_NAME_FORMAT", "20260101-120000")  # every launch reads this second
    folders = [new_run_dir("sf2f") for _ in range(11)]
    assert [folder.name for folder in folders[:3]] == [
        "20260101-120000",
        "20260101-120000-2",
        "20260101-120000-3",
    ]
    assert len(set(folders)) == 11 and all(folder.is_dir() for folder in folders)
    later = runs / "sf2f" / "20260101-120001"
    assert sorted([later, *reversed(folders)], key=launch_order) == [*folders, later]  # -10 after -9


@pytest.mark.parametrize("experiment", experiment_names("entry"))
def test_ckpt_last_passes_over_a_failed_launch_and_names_it(experiment, runs, capsys):
    handed_on = finished_run(runs / experiment / "20260101-120000", experiment)
    failed = failed_launch(runs / experiment / "20260101-130000", experiment)
    assert (failed / "FAILED").read_text().startswith("DatasetError: /data/missing")
    assert not (failed / "RUNNING").exists()

    assert resolve_checkpoint(experiment, "last") == handed_on  # make eval / infer / export CKPT=last
    assert resolve_run_dir(experiment, "last") == handed_on.parents[2]  # make train CKPT=last
    skipped = [line for line in capsys.readouterr().err.splitlines() if line.startswith("skipping")]
    assert skipped == [f"skipping {failed} ({FAILED_LAUNCH})"] * 2


def test_ckpt_last_with_only_failed_launches_says_there_is_no_run(runs):
    failed_launch(runs / "sf2f" / "20260101-130000", "sf2f")
    with pytest.raises(ExperimentError, match="no run of sf2f with a checkpoint yet"):
        resolve_checkpoint("sf2f", "last")
    with pytest.raises(ExperimentError, match="no earlier run to resume"):
        resolve_run_dir("sf2f", "last")


def test_compare_leaves_out_a_listed_failed_launch_and_names_it(runs, capsys):
    finished = runs / "sf2f" / "20260101-120000"
    finished_run(finished, "sf2f")
    failed = failed_launch(runs / "sf2f" / "20260101-130000", "sf2f")
    table = compare([str(finished), str(failed)], str(runs / "compare"))[1]
    assert f"skipping {failed} ({FAILED_LAUNCH})" in capsys.readouterr().err
    rows = table.read_text().splitlines()[2:]
    assert [row.strip("| ").split(" | ")[0] for row in rows] == [
        f"{finished.parent.name}/{finished.name}/{stage}" for stage in stage_chain("sf2f")
    ]
    with pytest.raises(ExperimentError, match="no run to compare"):
        compare([str(failed)], str(runs / "compare"))


def test_ckpt_last_while_another_launch_trains(runs, capsys):
    """Training resumes the newest run no launch is training; evaluation takes the newest checkpoint there is,
    from a run still training too; a second launch into a run being trained is refused."""
    older = finished_run(runs / "sf2f" / "20260101-120000", "sf2f").parents[2]
    training = runs / "sf2f" / "20260101-130000"
    last = training / "sf2f" / "checkpoints" / "last.ckpt"
    with training_run(training):
        assert resolve_checkpoint("sf2f", "last") == older / "sf2f_fuser" / "checkpoints" / "best-4.ckpt"
        assert f"skipping {training} (still training (pid {os.getpid()} on " in capsys.readouterr().err

        last.parent.mkdir(parents=True)
        torch.save({"state_dict": {}}, last)
        assert resolve_run_dir("sf2f", "last") == older
        assert f"skipping {training} (still training: pid {os.getpid()} on " in capsys.readouterr().err
        assert resolve_checkpoint("sf2f", "last") == last
        assert f"{training} is still training" in capsys.readouterr().err
        with pytest.raises(ExperimentError, match=f"{training}: another launch is training this run"):
            with training_run(training):
                pass
    assert not (training / "RUNNING").exists() and not (training / "FAILED").exists()
    assert resolve_run_dir("sf2f", "last") == training


def test_a_killed_launch_leaves_its_run_free(runs):
    """SIGKILL runs no cleanup: the RUNNING file stays, but its lock died with the process."""
    run_dir = runs / "wav2pix" / "20260101-120000"
    killed_while_training = (
        "import os, signal, sys; from pathlib import Path; from experiments.run_folders import training_run\n"
        "with training_run(Path(sys.argv[1])): os.kill(os.getpid(), signal.SIGKILL)"
    )
    killed = subprocess.run([sys.executable, "-c", killed_while_training, str(run_dir)], cwd=REPO)
    assert killed.returncode == -signal.SIGKILL
    assert (run_dir / "RUNNING").read_text().startswith("pid ") and running_launch(run_dir) is None
    with pytest.raises(ExperimentError, match="no earlier run to resume"):  # no checkpoint: a failed launch
        resolve_run_dir("wav2pix", "last")
    with training_run(run_dir):  # and a new launch may take the run
        assert running_launch(run_dir).startswith(f"pid {os.getpid()} ")


def test_two_launches_started_together_train_in_their_own_folders(runs, capsys):
    """Two `make train EXP=wav2pix` in the same second end in two runs, each with its own checkpoints, curves
    and W&B run; then, after a launch that fails, `make export CKPT=last` takes the newest finished run."""
    in_one_second = (
        "import sys; from experiments import run_folders, train\n"
        "run_folders.RUN_NAME_FORMAT = '20260101-120000'\n"  # both launches read the same second
        "train.main(sys.argv[1:])"
    )
    command = [sys.executable, "-c", in_one_second, "wav2pix", "--smoke", "--trainer.max_steps=2"]
    command += [
        "--trainer.logger=lightning.pytorch.loggers.WandbLogger",
        "--trainer.logger.init_args.offline=true",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the runs fixture set TF_RUNS_DIR
    logs = [runs / f"launch-{number}.log" for number in (1, 2)]
    launches = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        for log in logs
    ]
    for launch, log in zip(launches, logs):
        assert launch.wait(timeout=600) == 0, log.read_text()[-3000:]
    launched = sorted((runs / "wav2pix").iterdir(), key=launch_order)
    assert [run.name for run in launched] == ["20260101-120000", "20260101-120000-2"]
    wandb_ids = set()
    for stage in (run / "wav2pix" for run in launched):
        assert (stage / "checkpoints" / "last.ckpt").exists() and (stage / "metrics.csv").exists()
        wandb_id = (stage / "wandb_run_id").read_text()
        assert [p.name.rsplit("-", 1)[1] for p in (stage / "wandb").glob("offline-run-*")] == [wandb_id]
        wandb_ids.add(wandb_id)
        assert not (stage.parent / "RUNNING").exists()
    assert len(wandb_ids) == 2

    from experiments import export, train

    with pytest.raises(DatasetError):
        train.train("wav2pix", data=str(runs / "missing"), smoke=True)
    (failed,) = [run for run in (runs / "wav2pix").iterdir() if (run / "FAILED").exists()]
    capsys.readouterr()
    export.main(["wav2pix", "--out", str(runs / "model.ckpt")])
    streams = capsys.readouterr()
    assert f"skipping {failed} ({FAILED_LAUNCH})" in streams.err
    assert streams.out.startswith(f"[export] {launched[1] / 'wav2pix' / 'checkpoints' / 'last.ckpt'} → ")
