"""Reproducible, resumable training batches (`datamodules/resumable.py`)."""

import lightning as L
import pytest
import torch
from torch.utils.data import Dataset

from datamodules.base import CachedDataModule, randint, stack_items
from datamodules.errors import DatasetError
from datamodules.resumable import ResumableLoader
from tests.checkpoint_helpers import SaveAtStep


class RandomCrops(Dataset):
    """Item i: its index and a random "crop start" drawn as the real datasets draw it."""

    def __len__(self):
        return 21

    def __getitem__(self, index):
        return {"index": index, "start": randint(1000)}


def batches(loader, count=None):
    out = []
    for batch in loader:
        out.append((batch["index"].tolist(), batch["start"].tolist()))
        if count is not None and len(out) == count:
            break
    return out


def test_the_stream_is_a_function_of_the_seed_and_changes_every_epoch():
    first, again = (
        ResumableLoader(RandomCrops(), 4, stack_items, seed=3),
        ResumableLoader(RandomCrops(), 4, stack_items, seed=3),
    )
    epoch0, epoch1 = batches(first), batches(first)
    assert epoch0 == batches(again) and epoch1 == batches(again)
    # 21 items: 5 full batches, a new order each epoch
    assert len(epoch0) == len(first) == 5 and epoch0 != epoch1
    assert batches(ResumableLoader(RandomCrops(), 4, stack_items, seed=4)) != epoch0
    torch.manual_seed(0)
    # the model's RNG plays no part
    assert batches(ResumableLoader(RandomCrops(), 4, stack_items, seed=3)) == epoch0


def test_resuming_mid_epoch_continues_with_the_same_batches_and_workers_change_nothing():
    uninterrupted = batches(ResumableLoader(RandomCrops(), 4, stack_items, seed=9))
    interrupted = ResumableLoader(RandomCrops(), 4, stack_items, seed=9)
    seen = batches(interrupted, count=2)
    state = interrupted.state_dict()
    assert state == {"seed": 9, "epoch": 0, "consumed": 2}
    # seed comes from the state
    resumed = ResumableLoader(RandomCrops(), 4, stack_items, seed=123, num_workers=2)
    resumed.load_state_dict(state)
    assert seen + batches(resumed) == uninterrupted
    assert resumed.state_dict() == {"seed": 9, "epoch": 1, "consumed": 0}


def test_ranks_split_each_global_batch_of_the_single_process_stream():
    single = batches(ResumableLoader(RandomCrops(), 8, stack_items, seed=5))
    ranks = [
        batches(ResumableLoader(RandomCrops(), 4, stack_items, seed=5, world=lambda r=r: (r, 2)))
        for r in (0, 1)
    ]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 2
    for whole, part0, part1 in zip(single, *ranks):
        assert part0[0] + part1[0] == whole[0] and part0[1] + part1[1] == whole[1]  # same items, same crops


class BatchedCrops(Dataset):
    """RandomCrops made a whole batch at a time, as the cached datasets make theirs (`load_batch`)."""

    def __len__(self):
        return 21

    def load_batch(self, indices, draws):
        return {"index": torch.tensor(indices), "start": torch.from_numpy(draws.integers(1000, 0))}


def test_batched_draws_do_not_depend_on_ranks_workers_or_resumption():
    """`BatchDraws` gives an item the same numbers whichever rank, worker or resumed run loads it."""
    single = batches(ResumableLoader(BatchedCrops(), 8, None, seed=5))
    ranks = [
        batches(ResumableLoader(BatchedCrops(), 4, None, seed=5, world=lambda r=r: (r, 2), num_workers=r))
        for r in (0, 1)
    ]
    for whole, part0, part1 in zip(single, *ranks):
        assert part0[0] + part1[0] == whole[0] and part0[1] + part1[1] == whole[1]
    loader = ResumableLoader(BatchedCrops(), 8, None, seed=5)
    first = batches(loader, count=1)
    resumed = ResumableLoader(BatchedCrops(), 8, None, seed=0)
    resumed.load_state_dict(loader.state_dict())
    assert first + batches(resumed) == single
    assert batches(ResumableLoader(BatchedCrops(), 8, None, seed=6)) != single
    starts = [start for _, crop in single for start in crop]
    assert len(set(starts)) > len(starts) // 2 and 0 <= min(starts) and max(starts) < 1000


class Indices(Dataset):
    def __len__(self):
        return 21

    def __getitem__(self, index):
        return {"index": index}


class IndexData(CachedDataModule):
    """21 items in batches of 4: 5 batches per epoch, through the project's training loader."""

    def __init__(self):
        super().__init__()
        self.save_hyperparameters({"num_workers": 0})

    def train_dataloader(self):
        return self.loader(Indices(), 4, shuffle=True, collate=stack_items)

    def val_dataloader(self):
        return self.loader(Indices(), 21, shuffle=False, collate=stack_items)


class TwoPlayers(L.LightningModule):
    """Two optimiser steps per batch, as the GAN systems take; records (Lightning's epoch, items) per
    batch."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = torch.nn.Parameter(torch.zeros(())), torch.nn.Parameter(torch.zeros(()))
        self.seen, self.validated_at = [], []

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, batch["index"].tolist()))
        for optimizer, weight in zip(self.optimizers(), (self.a, self.b)):
            optimizer.zero_grad()
            self.manual_backward((weight - batch["index"].float().mean()) ** 2)
            optimizer.step()

    def validation_step(self, batch, batch_idx):
        if not self.trainer.sanity_checking:
            self.validated_at.append(self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.SGD([self.a], lr=0.01), torch.optim.SGD([self.b], lr=0.01)


def _fit_batches(batches, checkpoint=None, callbacks=()):
    L.seed_everything(11)
    model = TwoPlayers()
    trainer = L.Trainer(
        max_steps=2 * batches,
        check_val_every_n_epoch=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    trainer.fit(model, datamodule=IndexData(), ckpt_path=checkpoint, weights_only=False)
    return model


def test_lightning_epochs_count_passes_over_the_data_with_and_without_a_mid_epoch_resume(tmp_path):
    """Epoch N is the N-th pass: Lightning's counter after k batches is k // 5 (it used to run twice as fast,
    every other epoch empty, so `check_val_every_n_epoch=2` never validated), every epoch holds 5 batches of
    20 distinct items, and validation runs after each second epoch, also in a resumed run."""
    uninterrupted = _fit_batches(13, callbacks=[SaveAtStep(2 * 7, tmp_path / "mid.ckpt")])
    assert [epoch for epoch, _ in uninterrupted.seen] == [k // 5 for k in range(13)]
    for epoch in (0, 1):
        items = [i for e, batch in uninterrupted.seen if e == epoch for i in batch]
        assert len(items) == len(set(items)) == 20
    assert uninterrupted.validated_at == [1]  # after epoch 1; 13 batches do not complete epoch 3

    resumed = _fit_batches(13, checkpoint=tmp_path / "mid.ckpt")  # saved after batch 7: epoch 1, 2 batches in
    assert resumed.seen == uninterrupted.seen[7:]
    assert resumed.validated_at == [1]


def test_a_split_smaller_than_one_batch_is_an_error_not_an_empty_epoch():
    with pytest.raises(DatasetError, match="21 item.*fewer than one batch of 32"):
        len(ResumableLoader(RandomCrops(), 32, stack_items))
