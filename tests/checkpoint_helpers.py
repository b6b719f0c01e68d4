"""Callbacks the resumption tests share."""

import lightning as L


class SaveAtStep(L.Callback):
    """Save a checkpoint at the end of the batch that reaches optimiser step `step`, as `LastCheckpoint`
    does mid-run (not after `fit` ends, when Lightning has already counted the epoch as finished)."""

    def __init__(self, step, path):
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path, weights_only=False)
