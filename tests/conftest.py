"""Shared fixtures: generated data and runs go under one temporary folder per test session."""

import os
import shutil
import warnings

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_data_and_runs(tmp_path_factory):
    """Point the demo-data, cache and run folders at temporary ones (never the user's data/ and runs/)."""
    root = tmp_path_factory.mktemp("talking-faces")
    old = {k: os.environ.get(k) for k in ("TF_DATA_DIR", "TF_RUNS_DIR", "WANDB_MODE")}
    os.environ.update(TF_DATA_DIR=str(root / "data"), TF_RUNS_DIR=str(root / "runs"), WANDB_MODE="offline")
    yield root
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def tiny_hq_voxceleb(isolated_data_and_runs):
    """The tiny HQ-VoxCeleb fixture in its real layout, with deliberately broken files."""
    from datamodules.synthetic import generate_dataset

    return generate_dataset(
        "hq_voxceleb", isolated_data_and_runs / "fixtures" / "hq_voxceleb", size="tiny", broken=True
    )


@pytest.fixture(scope="session")
def open_set(isolated_data_and_runs):
    """The smallest open-set Youtubers, set up: 4 youtubers, the last 2 held out, each with 2 test pairs;
    64 px, the smallest side Wav2Pix's generator draws."""
    from datamodules.youtubers import YoutubersDataModule

    datamodule = YoutubersDataModule(
        demo_size="tiny_open",
        open_set_speakers=2,
        image_size=64,
        batch_size=4,
        eval_batch_size=4,
        num_workers=0,
        prepare_workers=0,
    )
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule


# Smoke runs as the record tests need them: two validations of every stage (validation runs every 2 batches,
# the GAN stages take 2 optimiser steps per batch) and the W&B logger, offline, as in real runs.
SMOKE_RUN_OVERRIDES = [
    "--trainer.max_steps=8",
    "--trainer.logger=lightning.pytorch.loggers.WandbLogger",
    "--trainer.logger.init_args.offline=true",
]


@pytest.fixture(scope="session")
def smoke_run(isolated_data_and_runs):
    """`smoke_run(EXP)`: the run folder of `python -m experiments.train EXP --smoke` (with
    `SMOKE_RUN_OVERRIDES`), trained once per test session and shared by the tests that read it;
    `smoke_run.warnings[EXP]`: the warnings that run gave, which a user would have seen."""
    from experiments import train

    runs, given = {}, {}

    def run(experiment: str):
        if experiment not in runs:
            with warnings.catch_warnings(record=True) as given[experiment]:
                runs[experiment] = train.train(experiment, smoke=True, overrides=SMOKE_RUN_OVERRIDES)
        return runs[experiment]

    run.warnings = given
    run.folders = runs.values()
    return run


CALL_PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[CALL_PASSED] = report.passed
    return report


@pytest.fixture(autouse=True)
def discard_passed_test_runs(request, isolated_data_and_runs, smoke_run):
    """Delete the run folders a passing test trained into the shared runs folder. A smoke checkpoint weighs
    up to ~460 MB, so a session's runs would otherwise fill a CI disk; the shared smoke runs stay, and so do
    the runs of a failing test (for its report), as pytest's own temporary folders do
    (`tmp_path_retention_policy`)."""
    runs = isolated_data_and_runs / "runs"
    before = {folder.resolve() for folder in runs.glob("*/*")}
    yield
    if not request.node.stash.get(CALL_PASSED, False):
        return
    shared = {folder.resolve() for folder in smoke_run.folders}
    for folder in {folder.resolve() for folder in runs.glob("*/*")} - before - shared:
        shutil.rmtree(folder, ignore_errors=True)
