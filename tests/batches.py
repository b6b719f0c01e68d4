"""Training batches as the model sees them, outside a Trainer."""


def first_training_batch(datamodule):
    """The first batch of `datamodule`'s training loader, finished on the CPU as Lightning finishes it on
    the training device (`CachedDataModule.on_after_batch_transfer`)."""
    return datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
