"""Training callbacks shared by every experiment."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback


class LastCheckpoint(Callback):
    """Keep `<dirpath>/last.ckpt` current: every `every_n_steps` optimiser steps, at the end of training and
    when training stops on an exception (Ctrl-C, SIGTERM handled by Lightning, a crash).

    Each write goes to a temporary file first and is renamed over `last.ckpt`, so a crash during the save
    leaves the previous complete checkpoint in place, never a truncated one.
    """

    def __init__(self, dirpath: str | Path, every_n_steps: int = 200):
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be positive, got {every_n_steps}")
        self.dirpath, self.every_n_steps = Path(dirpath), every_n_steps
        self._saved_step = -1

    @property
    def path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def save(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self._saved_step:
            return
        temporary = self.dirpath / f".last.ckpt.{os.getpid()}.tmp"
        trainer.save_checkpoint(temporary)  # collective: every rank calls it, rank 0 writes
        if trainer.is_global_zero:
            os.replace(temporary, self.path)
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.save(trainer)
