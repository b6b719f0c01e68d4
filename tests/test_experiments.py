"""Every experiment config parses and instantiates; each trains end to end through the real entry point."""

import json
from pathlib import Path

import pytest

from experiments import train as train_entry
from experiments.cli import ProjectCLI

EXPERIMENTS = sorted(p.stem for p in Path(train_entry.EXPERIMENTS).glob("*.yaml") if p.stem != "smoke")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_config_instantiates(experiment):
    configs = train_entry.stage_configs(experiment, demo=True, smoke=True)
    args = [a for c in configs for a in ("--config", c)]
    cli = ProjectCLI(args=args, run=False)
    assert cli.model is not None and cli.datamodule is not None


def test_stage_chains():
    assert train_entry.stage_chain("sf2f") == ["sf2f", "sf2f_fuser"]


def test_unknown_experiment_is_named():
    with pytest.raises(train_entry.ExperimentError, match="no such experiment"):
        train_entry.stage_chain("nope")


def test_sf2f_trains_both_stages_and_resumes(isolated_data_and_runs):
    run_dir = train_entry.train("sf2f", smoke=True)
    for stage in ("sf2f", "sf2f_fuser"):
        stage_dir = run_dir / stage
        completed = json.loads((stage_dir / "COMPLETED.json").read_text())
        assert Path(completed["best"]).exists() and completed["global_step"] == 4
        assert (stage_dir / "checkpoints" / "last.ckpt").exists()
        assert (stage_dir / "config.yaml").exists()
        assert list((stage_dir / "samples").glob("val_samples-*.png"))
    # A rerun with --resume last finds both stages completed and trains nothing more.
    (run_dir / "sf2f_fuser" / "COMPLETED.json").unlink()
    resumed = train_entry.train("sf2f", smoke=True, resume="last",
                                overrides=["--trainer.max_steps=6"])
    assert resumed == run_dir
    assert json.loads((run_dir / "sf2f_fuser" / "COMPLETED.json").read_text())["global_step"] == 6
