"""One unbroken record per stage, across interruptions: `metrics.csv` continued, one W&B run.

Lightning's `CSVLogger` deletes an existing `metrics.csv` when it starts, so a resumed stage used to lose
every row logged before the interruption, and each launch of a stage opened a new W&B run. Here:

- `ContinuedCSVLogger` appends to the stage's `metrics.csv` (keeping its columns);
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

WANDB_ID_FILE = "wandb_run_id"


class ContinuedMetricsWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing an existing `metrics.csv` instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])

    def drop_after(self, step: int) -> None:
        """Remove the rows logged at steps after `step`."""
        self.save()
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            rows = list(csv.DictReader(file))
        kept = [row for row in rows if not row.get("step") or int(float(row["step"])) <= step]
        if len(kept) < len(rows):
            with self._fs.open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)


class ContinuedCSVLogger(CSVLogger):
    """`CSVLogger` whose writer continues the folder's `metrics.csv` (see the module doc)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ContinuedMetricsWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuedMetricsWriter(log_dir=self.log_dir)
        return self._experiment


class ContinuedHistory(Callback):
    """Keep the continued CSV logs whole across a crash and a resumption.

    - Rows reach the disk before each training batch and each validation (Lightning's CSV logger holds
      them for 100 steps), so a killed process loses at most the rows of the batch it was in.
    - On resumption, rows logged after the checkpoint are cut: Lightning logs a training batch's metrics
      (and the validation after it) at the step counter (`_batches_that_stepped`) that batch's checkpoint
      stores, and the resumed run logs from the next step on.
    """

    def __init__(self):
        self._resumed_at: int | None = None

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
        self._resumed_at = loop.get("_batches_that_stepped")

    def on_train_start(self, trainer, pl_module) -> None:
        if self._resumed_at is None or not trainer.is_global_zero:
            return
        for logger in _csv_loggers(trainer):
            logger.experiment.drop_after(self._resumed_at)
        self._resumed_at = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        _flush(trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        _flush(trainer)


def _csv_loggers(trainer) -> list[ContinuedCSVLogger]:
    return [logger for logger in trainer.loggers if isinstance(logger, ContinuedCSVLogger)]


def _flush(trainer) -> None:
    if trainer.is_global_zero:
        for logger in _csv_loggers(trainer):
            logger.save()


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
