"""Shared fixtures: generated data and runs go under one temporary folder per test session."""

import os

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

    return generate_dataset("hq_voxceleb", isolated_data_and_runs / "fixtures" / "hq_voxceleb", size="tiny", broken=True)
