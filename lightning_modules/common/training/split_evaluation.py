"""Validation and test as one step: every system's LightningModule scores both splits the same way."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from ..errors import NonFiniteLossError
from .checkpoints import check_checkpoint_fits


class SplitEvaluationModule(L.LightningModule):
    """Routes Lightning's validation and test hooks to `evaluation_step(batch, batch_idx, split)` and
    `evaluation_epoch_end(split)`, with `split` "val" or "test" prefixing the logged keys.

    `checkpoint_monitor` (metric, "min" | "max") names the validation metric of `best-<step>.ckpt`;
    `checkpoint_selection` says which checkpoint a finished stage tests and hands on: "best" (that one) or
    "last" (its final state; best-<step>.ckpt is still kept)."""

    checkpoint_monitor: tuple[str, str] | None = None
    checkpoint_selection = "best"

    def evaluation_step(self, batch: Any, batch_idx: int, split: str) -> None:
        """One batch of `split`."""

    def evaluation_epoch_end(self, split: str) -> None:
        """After every validation or test epoch (sample grids, metrics over the whole split)."""

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluation_step(batch, batch_idx, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluation_step(batch, batch_idx, "test")

    def on_validation_epoch_end(self) -> None:
        self.evaluation_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self.evaluation_epoch_end("test")

    def on_before_backward(self, loss: torch.Tensor) -> None:
        """Stop at the first NaN/Inf loss, naming the batch, before it poisons the weights. (Adversarial
        modules check each player's loss themselves and can skip the update instead.)"""
        if not torch.isfinite(loss).all():
            batch = self.trainer.fit_loop.epoch_loop.batch_idx if self._trainer is not None else "?"
            raise NonFiniteLossError(
                f"non-finite training loss {float(loss.detach())} at epoch {self.current_epoch}, "
                f"batch {batch}, global step {self.global_step}. Check that batch's inputs, or "
                "lower the learning rate."
            )

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A checkpoint of another model or configuration fails here with the differences listed, rather
        than deep inside `load_state_dict`."""
        check_checkpoint_fits(self, checkpoint)
