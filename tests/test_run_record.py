"""The run record of every entry experiment: validation really runs on the shipped schedules, and each stage
keeps what docs/usage.md promises (`val/` metrics in metrics.csv and W&B, the best checkpoint by the model's
monitor, validation sample grids).

The smoke configuration runs here through the real entry point, long enough for two validations of every
stage; the demo configuration's schedule is checked against the demo data here, and run as shipped in
the slow test."""

import csv
import json
from pathlib import Path

import lightning as L
import pytest
import torch

from experiments import train as train_entry

ENTRY_EXPERIMENTS = ("sf2f", "wav2pix", "e2e_nr", "tcsan", "a2v")
# What each stage hands on: the best checkpoint by its validation metric, or (GAN stages trained for a fixed
# budget, whose pixel losses reward a still, mean face) its final state.
HANDS_ON = {
    "sf2f": "best",
    "sf2f_fuser": "best",
    "wav2pix": "last",
    "e2e_nr": "best",
    "e2e_nr_adv": "last",
    "tcsan_au_classifier": "best",
    "tcsan_audio2au": "best",
    "tcsan": "last",
    "a2v_vae": "best",
    "a2v": "best",
}
# Stages whose outputs are not pictures: the action-unit supervisors, and A2V's latent-residual VAE.
NO_PICTURES = {"tcsan_au_classifier", "tcsan_audio2au", "a2v_vae"}


def validation_steps(stage_dir: Path) -> set[int]:
    """The logged steps at which metrics.csv holds at least one `val/` value."""
    with (stage_dir / "metrics.csv").open(newline="") as handle:
        return {
            int(row["step"])
            for row in csv.DictReader(handle)
            if any(value and key.startswith("val/") for key, value in row.items())
        }


def assert_stage_record(stage_dir: Path, validations: int) -> None:
    completed = json.loads((stage_dir / "COMPLETED.json").read_text())
    if completed.get("prepared") is not None:  # a data-preparation stage trains nothing
        return
    assert len(validation_steps(stage_dir)) >= validations, (
        f"{stage_dir.name}: validation did not run {validations}×"
    )
    assert list((stage_dir / "checkpoints").glob("best-*.ckpt")), f"{stage_dir.name}: no best checkpoint"
    handed_on, selected_by = Path(completed["best"]), completed["selected_by"]
    assert handed_on.exists()
    if selected_by.startswith("val/"):  # the model selects by its monitored metric
        assert handed_on.name.startswith("best-"), selected_by
    else:  # a GAN stage's fixed budget: its final state, never a fallback for a missing validation
        assert handed_on.name == "last.ckpt" and "hands on its last state" in selected_by, selected_by
    if stage_dir.name not in NO_PICTURES:
        assert len(list((stage_dir / "samples").glob("val_samples-*.png"))) >= validations
    launches = list((stage_dir / "wandb").glob("offline-run-*"))  # one per launch of the stage, one run id
    assert launches and {p.name.rsplit("-", 1)[1] for p in launches} == {
        (stage_dir / "wandb_run_id").read_text()
    }


@pytest.mark.parametrize("experiment", ENTRY_EXPERIMENTS)
def test_smoke_chain_validates_twice_and_keeps_its_record(experiment, smoke_run):
    run_dir = smoke_run(experiment)
    for stage in train_entry.stage_chain(experiment):
        assert_stage_record(run_dir / stage, validations=2)
        if stage in HANDS_ON:
            handed_on = Path(json.loads((run_dir / stage / "COMPLETED.json").read_text())["best"]).name
            assert handed_on.startswith({"best": "best-", "last": "last."}[HANDS_ON[stage]]), (
                stage,
                handed_on,
            )


def test_a_run_that_ends_before_its_first_validation_finishes_cleanly(isolated_data_and_runs):
    """A2V's Embed2Lat stops early on `val/mse`. A run shorter than one validation interval used to fail at
    its end ("Early stopping conditioned on metric `val/mse` which is not available"); now early stopping
    waits for a validation, and the stage says that its final state was kept because none ran."""
    run_dir = train_entry.train(
        "a2v", smoke=True, overrides=["--trainer.max_steps=1", "--trainer.val_check_interval=1.0"]
    )
    completed = json.loads((run_dir / "a2v" / "COMPLETED.json").read_text())
    assert completed["selected_by"] == "final state (no validation ran)" and Path(completed["best"]).exists()


@pytest.mark.parametrize("experiment", [e for e in ENTRY_EXPERIMENTS if e != "a2v"])
def test_every_chain_cut_to_two_steps_finishes_and_hands_on_a_checkpoint(experiment, isolated_data_and_runs):
    """`ARGS="--trainer.max_steps=2"`, the first thing a user tries: every stage ends cleanly, whether or not
    a validation ran, and hands the next stage an existing checkpoint."""
    run_dir = train_entry.train(experiment, smoke=True, overrides=["--trainer.max_steps=2"])
    for stage in train_entry.stage_chain(experiment):
        completed = json.loads((run_dir / stage / "COMPLETED.json").read_text())
        assert completed.get("prepared") is not None or Path(completed["best"]).exists(), (stage, completed)


class LogsOnlyLoss(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def training_step(self, batch, batch_idx):
        return (self.weight - batch[0].mean()) ** 2

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", (self.weight - batch[0].mean()) ** 2)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_selection_metric_that_validation_never_logs_is_an_error_at_the_first_validation(tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from experiments.cli import _decide_after_validation
    from lightning_modules.common.errors import SelectionMetricError

    data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2)
    for watching in (ModelCheckpoint(dirpath=tmp_path, monitor="val/l1"), EarlyStopping(monitor="val/psnr")):
        trainer = L.Trainer(
            max_epochs=3,
            callbacks=[watching],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        _decide_after_validation(trainer.callbacks)
        with pytest.raises(SelectionMetricError, match=f"watches {watching.monitor}.*it logged: val/loss"):
            trainer.fit(LogsOnlyLoss(), train_dataloaders=data, val_dataloaders=data)
        assert trainer.current_epoch == 0  # stopped at the end of the first validation


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ENTRY_EXPERIMENTS)
def test_demo_chain_validates_and_keeps_its_record(experiment, isolated_data_and_runs):
    """`make train EXP=…` on the demo data, with the demo schedules as shipped (W&B offline, as by default):
    every stage validates at least twice and keeps its record. Minutes to tens of minutes per system."""
    run_dir = train_entry.train(experiment)
    for stage in train_entry.stage_chain(experiment):
        assert_stage_record(run_dir / stage, validations=2)


def test_saving_checkpoints_says_nothing_about_weights_only(tmp_path, caplog):
    """Lightning logs "`weights_only` was not set, defaulting to `False`" for a save that does not say what it
    stores, which users read as an unsafe checkpoint load; the project's saves say it."""
    import logging

    from torch.utils.data import DataLoader, TensorDataset

    from lightning_modules.common.training.callbacks import LastCheckpoint

    data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2)
    trainer = L.Trainer(
        max_epochs=1,
        callbacks=[LastCheckpoint(tmp_path, every_n_steps=1)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    with caplog.at_level(logging.INFO, logger="lightning.pytorch"):
        trainer.fit(LogsOnlyLoss(), train_dataloaders=data, val_dataloaders=data)
    assert (tmp_path / "last.ckpt").exists() and "weights_only" not in caplog.text


def test_the_continued_csv_log_writes_each_row_when_logged_and_keeps_earlier_rows(tmp_path):
    from lightning_modules.common.training.run_history import ContinuedCSVLogger

    logger = ContinuedCSVLogger(tmp_path, name="", version="")
    logger.log_metrics({"train/loss": 1.0}, step=0)
    logger.log_metrics({"train/loss": 0.5}, step=1)
    metrics_csv = tmp_path / "metrics.csv"
    # on disk without a save(): a process killed now keeps both rows
    assert [row["step"] for row in csv.DictReader(metrics_csv.open())] == ["0", "1"]

    logger.log_metrics({"val/loss": 0.7}, step=1)  # a new column: the file is rewritten with it
    continued = ContinuedCSVLogger(tmp_path, name="", version="")  # a resumed launch appends
    continued.log_metrics({"train/loss": 0.25}, step=2)
    rows = list(csv.DictReader(metrics_csv.open()))
    assert [(row["step"], row["train/loss"], row["val/loss"]) for row in rows] == [
        ("0", "1.0", ""),
        ("1", "0.5", ""),
        ("1", "", "0.7"),
        ("2", "0.25", ""),
    ]
    continued.experiment.drop_after(1)
    assert [row["step"] for row in csv.DictReader(metrics_csv.open())] == ["0", "1", "1"]
    assert not list(tmp_path.glob(".*.tmp"))  # rewrites went through a renamed temporary file
