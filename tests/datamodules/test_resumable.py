"""Reproducible, resumable training batches (`datamodules/resumable.py`)."""

import torch
from torch.utils.data import Dataset

from datamodules.base import randint, stack_items
from datamodules.resumable import ResumableLoader


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
    first, again = ResumableLoader(RandomCrops(), 4, stack_items, seed=3), ResumableLoader(RandomCrops(), 4, stack_items, seed=3)
    epoch0, epoch1 = batches(first), batches(first)
    assert epoch0 == batches(again) and epoch1 == batches(again)
    assert len(epoch0) == len(first) == 5 and epoch0 != epoch1  # 21 items: 5 full batches, a new order each epoch
    assert batches(ResumableLoader(RandomCrops(), 4, stack_items, seed=4)) != epoch0
    torch.manual_seed(0)
    assert batches(ResumableLoader(RandomCrops(), 4, stack_items, seed=3)) == epoch0  # the model's RNG plays no part


def test_resuming_mid_epoch_continues_with_the_same_batches_and_workers_change_nothing():
    uninterrupted = batches(ResumableLoader(RandomCrops(), 4, stack_items, seed=9))
    interrupted = ResumableLoader(RandomCrops(), 4, stack_items, seed=9)
    seen = batches(interrupted, count=2)
    state = interrupted.state_dict()
    assert state == {"seed": 9, "epoch": 0, "consumed": 2}
    resumed = ResumableLoader(RandomCrops(), 4, stack_items, seed=123, num_workers=2)  # seed comes from the state
    resumed.load_state_dict(state)
    assert seen + batches(resumed) == uninterrupted
    assert resumed.state_dict() == {"seed": 9, "epoch": 1, "consumed": 0}


def test_ranks_split_each_global_batch_of_the_single_process_stream():
    single = batches(ResumableLoader(RandomCrops(), 8, stack_items, seed=5))
    ranks = [batches(ResumableLoader(RandomCrops(), 4, stack_items, seed=5, world=lambda r=r: (r, 2))) for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 2
    for whole, part0, part1 in zip(single, *ranks):
        assert part0[0] + part1[0] == whole[0] and part0[1] + part1[1] == whole[1]  # same items, same crops
