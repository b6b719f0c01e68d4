"""A callback for `tests/test_ddp.py`: record the gradients of the first optimiser steps of a training run.

Added to any `experiments.train` command with
`--trainer.callbacks+=tests.ddp_gradients.GradientProbe --trainer.callbacks.path=FILE`, so the run under test
is the real entry point, single-process or DDP. Rank 0 saves, right before each of the first `steps`
optimiser steps, every parameter gradient of that optimiser, by parameter name; under DDP these are the
gradients after the all-reduce, i.e. what every rank applies.

For the gradients of W processes on B/W items each to equal those of one process on the B items, every
item's contribution must be independent of the rest of the batch and of the process it lands in. So the
probe makes the normalisation and noise layers deterministic for the run: BatchNorm in eval mode (running
statistics instead of per-process batch statistics: `nn.SyncBatchNorm`, which would share them, runs on
GPUs only) and dropout off (each process would draw its own masks).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import nn

from lightning_modules.wav2pix.networks import SamplingDropout

BATCH_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd, SamplingDropout)


class GradientProbe(L.Callback):
    """Saves `[{parameter name: gradient}, …]` of the first `steps` optimiser steps to `path` (rank 0).

    Args:
        path: where the list goes (`torch.save`), rewritten after each recorded step.
        steps: how many optimiser steps to record (a GAN batch makes two: D's and G's).
    """

    def __init__(self, path: str, steps: int = 2):
        self.path, self.steps = Path(path), steps
        self.recorded: list[dict[str, torch.Tensor]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # After every batch start, since validation puts the module back in training mode.
        for module in pl_module.modules():
            if isinstance(module, BATCH_DEPENDENT):
                module.eval()
                if isinstance(module, SamplingDropout):
                    module.always_on = False  # Wav2Pix's dropout samples even in eval mode otherwise

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_rank != 0 or len(self.recorded) >= self.steps:
            return
        names = {id(p): name for name, p in pl_module.named_parameters()}
        self.recorded.append(
            {
                names[id(p)]: p.grad.detach().clone()
                for group in optimizer.param_groups
                for p in group["params"]
                if p.grad is not None
            }
        )
        torch.save(self.recorded, self.path)
