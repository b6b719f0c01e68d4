"""One unbroken record per stage, across interruptions: `metrics.csv` continued, one W&B run.

Lightning's `CSVLogger` deletes an existing `metrics.csv` when it starts, so a resumed stage used to lose
every row logged before the interruption, and each launch of a stage opened a new W&B run. Here:

- `ContinuedCSVLogger` appends to the stage's `metrics.csv` (keeping its columns), writing each row when
  it is logged (Lightning's holds them for 100 steps) and rewriting the file, when a column appears, by
  an atomic rename, so a killed process leaves every row logged before it and never a truncated file;
- `ContinuedHistory` drops, on resumption, the rows logged after the checkpoint the run resumes from:
  the resumed run logs those steps again, and each step must appear once;
- `stage_wandb_id` gives each stage folder one W&B run id, stored in the folder, so every launch of the
  stage continues the same run (Lightning's `WandbLogger` initialises W&B with `resume="allow"`).
"""

from __future__ import annotations

import csv
import os
import secrets
from pathlib import Path

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from datamodules.pipeline.files import atomic_write_csv

WANDB_ID_FILE = "wandb_run_id"


class ContinuedMetricsWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing an existing `metrics.csv` instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        self._rewrite(fieldnames, self._rows())

    def drop_after(self, step: int) -> None:
        """Remove the rows logged at steps after `step`."""
        self.save()
        if not self._fs.isfile(self.metrics_file_path):
            return
        rows = self._rows()
        kept = [row for row in rows if not row.get("step") or int(float(row["step"])) <= step]
        if len(kept) < len(rows):
            self._rewrite(self.metrics_keys, kept)

    def _rows(self) -> list[dict[str, str]]:
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            return list(csv.DictReader(file))

    def _rewrite(self, fieldnames: list[str], rows: list[dict[str, str]]) -> None:
        atomic_write_csv(self.metrics_file_path, fieldnames, rows)


class ContinuedCSVLogger(CSVLogger):
    """`CSVLogger` continuing the folder's `metrics.csv`, one row at a time (see the module doc)."""

    def __init__(self, save_dir: str | Path, **kwargs):
        super().__init__(save_dir, flush_logs_every_n_steps=1, **kwargs)

    @property
    @rank_zero_experiment
    def experiment(self) -> ContinuedMetricsWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuedMetricsWriter(log_dir=self.log_dir)
        return self._experiment


class ContinuedHistory(Callback):
    """Cut, on resumption, the rows of the continued CSV logs logged after the checkpoint: Lightning logs a
    training batch's metrics (and the validation after it) at the step counter (`_batches_that_stepped`)
    that batch's checkpoint stores, and the resumed run logs from the next step on.

    The one row a crash can lose is its batch's, and that of a checkpointed batch only when the process
    dies in the milliseconds between the checkpoint's rename and the row's write: Lightning saves step
    checkpoints in `on_train_batch_end`, before it hands the batch's metrics to the loggers.
    """

    def __init__(self):
        self._resumed_at: int | None = None

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
        self._resumed_at = loop.get("_batches_that_stepped")

    def on_train_start(self, trainer, pl_module) -> None:
        if self._resumed_at is None or not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if isinstance(logger, ContinuedCSVLogger):
                logger.experiment.drop_after(self._resumed_at)
        self._resumed_at = None


def stage_wandb_id(stage_dir: Path) -> str:
    """The W&B run id of the stage in `stage_dir`: read from the folder, else drawn and stored there. The
    file appears whole (a hard link of a written one), and only once: concurrent ranks of a cluster launch
    all read the first one linked."""
    path = Path(stage_dir) / WANDB_ID_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_name(f".{path.name}.{os.getpid()}")
        candidate.write_text(secrets.token_hex(4))
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()
