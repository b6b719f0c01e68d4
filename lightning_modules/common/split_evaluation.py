"""Validation and test as one step: every system's LightningModule scores both splits the same way."""

from __future__ import annotations

from typing import Any

import lightning as L


class SplitEvaluationModule(L.LightningModule):
    """Routes Lightning's validation and test hooks to `evaluation_step(batch, batch_idx, split)` and
    `evaluation_epoch_end(split)`, with `split` "val" or "test" prefixing the logged keys."""

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
