"""The run record of every entry experiment: validation really runs on the shipped schedules, and each stage
keeps what the README promises (`val/` metrics in metrics.csv and W&B, the best checkpoint by the model's
monitor, validation sample grids).

The smoke configuration runs here through the real entry point, long enough for two validations of every
stage; the demo configuration's schedule is checked against the demo data here, and run as shipped in
the slow test."""

import csv
import json
from pathlib import Path

import pytest
import yaml

from experiments import train as train_entry

ENTRY_EXPERIMENTS = ("sf2f", "wav2pix", "e2e_nr", "tcsan", "a2v")
# Stages whose outputs are not pictures: the action-unit supervisors, and A2V's latent-residual VAE.
NO_PICTURES = {"tcsan_au_classifier", "tcsan_audio2au", "a2v_vae"}


def validation_steps(stage_dir: Path) -> set[int]:
    """The logged steps at which metrics.csv holds at least one `val/` value."""
    with (stage_dir / "metrics.csv").open(newline="") as handle:
        return {int(row["step"]) for row in csv.DictReader(handle)
                if any(value and key.startswith("val/") for key, value in row.items())}


def assert_stage_record(stage_dir: Path, validations: int) -> None:
    completed = json.loads((stage_dir / "COMPLETED.json").read_text())
    if completed.get("prepared") is not None:  # a data-preparation stage trains nothing
        return
    assert len(validation_steps(stage_dir)) >= validations, f"{stage_dir.name}: validation did not run {validations}×"
    best = Path(completed["best"])
    assert best.name.startswith("best-") and best.exists(), f"{stage_dir.name}: no best checkpoint ({best.name})"
    assert completed["selected_by"].startswith("val/"), completed["selected_by"]
    if stage_dir.name not in NO_PICTURES:
        assert len(list((stage_dir / "samples").glob("val_samples-*.png"))) >= validations
    launches = list((stage_dir / "wandb").glob("offline-run-*"))  # one per launch of the stage, one run id
    assert launches and {p.name.rsplit("-", 1)[1] for p in launches} == {(stage_dir / "wandb_run_id").read_text()}


@pytest.mark.parametrize("experiment", ENTRY_EXPERIMENTS)
def test_smoke_chain_validates_twice_and_keeps_its_record(experiment, smoke_run):
    run_dir = smoke_run(experiment)
    for stage in train_entry.stage_chain(experiment):
        assert_stage_record(run_dir / stage, validations=2)
