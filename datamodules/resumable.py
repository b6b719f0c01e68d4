"""Training batches that are a pure function of (seed, epoch, position), so an interrupted run resumes
mid-epoch with exactly the batches, crops and augmentations it would have seen.

`ResumableLoader` wraps a `DataLoader`. Per epoch it shuffles with a generator seeded by (seed, epoch),
cuts the order into global batches of `batch_size × world` and hands this rank its slice of each (DDP
ranks thus see disjoint parts of the same global batches a single process would see). Every item is
loaded with torch's RNG seeded by (seed, epoch, item index), and every batch collated with it seeded by
(seed, epoch, batch number), inside `torch.random.fork_rng`, so the random window starts and crops drawn
by the datasets (`datamodules.base.randint`) depend neither on the worker that loads them, nor on the
number of workers, nor on the model's own use of the RNG. A dataset that loads whole batches
(`load_batch`, the fast path of every cached dataset) gets the same guarantees from `BatchDraws`, whose
numbers are a hash of (seed, epoch, item index) evaluated for the whole batch at once.

It implements `state_dict` / `load_state_dict`, which Lightning saves in every checkpoint and restores on
resumption (its "stateful dataloader" protocol): the epoch and the number of batches already consumed,
which are skipped (never loaded) when the run resumes.

Epoch bookkeeping (`EpochCounter`, shared with the streaming loader): an epoch ends when its last batch is
handed out, not when the consumer asks past it. Lightning knows the length and never asks for batch
`len + 1`; a loader that counted epochs at `StopIteration` stayed in the finished epoch, and Lightning's next
epoch then got an empty iteration, so Lightning's epoch counter ran twice as fast as the passes over the
data and `check_val_every_n_epoch` with an even N never validated. The loader also follows the consumer's
epoch (`current_epoch`, Lightning's `trainer.current_epoch`), so an epoch cut short by
`limit_train_batches` still starts the next one afresh, and epoch N is always the stream's epoch N.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .errors import DatasetError


def mixed_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (e.g. seed, epoch, index)."""
    return int(
        np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0]
        >> 1
    )


class BatchDraws:
    """The random numbers of one batch request, drawn for the whole batch at once.

    Item draws are a function of (seed, epoch, item index, draw number) alone, as the per-item seeds of
    `SeededBatches` are, so they do not depend on how a global batch is cut over DDP ranks or workers.
    Batch draws are a function of (seed, epoch, batch number). Numbers come from a counter-based hash
    (splitmix64) evaluated on numpy arrays: no generator object per item, no Python call per item.
    """

    def __init__(self, seed: int, epoch: int, number: int, indices: list[int]):
        self._items = _splitmix64(np.asarray(indices, dtype=np.uint64) ^ np.uint64(mixed_seed(seed, epoch)))
        self._batch = np.uint64(mixed_seed(seed, epoch, number, 1 << 40))

    def __len__(self) -> int:
        return len(self._items)

    def uniform(self, draw: int) -> np.ndarray:
        """`(B,)` float64 in [0, 1): the items' draw number `draw`."""
        return _unit_interval(_splitmix64(self._items + np.uint64(_GOLDEN * (draw + 1) % 2**64)))

    def integers(self, high, draw: int) -> np.ndarray:
        """`(B,)` int64, item i's uniform in [0, high[i]) (`high` a scalar or `(B,)`, each ≥ 1)."""
        return np.minimum((self.uniform(draw) * high).astype(np.int64), np.asarray(high) - 1)

    def batch_integer(self, high: int, draw: int) -> int:
        """One int uniform in [0, high) shared by the whole batch."""
        word = _splitmix64(np.array([self._batch], dtype=np.uint64) + np.uint64(draw))
        return min(int(_unit_interval(word)[0] * high), high - 1)

    def generator(self, position: int, draw: int) -> np.random.Generator:
        """A numpy generator for the item at `position`, for draws too irregular to vectorise."""
        return np.random.default_rng([int(self._items[position]), draw])


_GOLDEN = 0x9E3779B97F4A7C15


def _splitmix64(words: np.ndarray) -> np.ndarray:
    """Steele et al.'s 64-bit finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = words + np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _unit_interval(words: np.ndarray) -> np.ndarray:
    """The top 53 bits as a float64 in [0, 1)."""
    return (words >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class SeededBatches(Dataset):
    """`dataset` fetched one batch request `(seed, epoch, batch number, indices)` at a time; the
    DataLoader's `collate_fn` then passes the batch through.

    A dataset with `load_batch(indices, draws)` makes the whole batch in one call from its `BatchDraws`.
    Any other is loaded item by item, each item and the collation under its own seed.
    """

    def __init__(self, dataset: Dataset, collate: Callable[[list], Any]):
        self.dataset, self.collate = dataset, collate

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset[index]

    def __getitems__(self, request: tuple[int, int, int, list[int]]):
        seed, epoch, number, indices = request
        if hasattr(self.dataset, "load_batch"):
            return self.dataset.load_batch(indices, BatchDraws(seed, epoch, number, indices))
        loads = [(mixed_seed(seed, epoch, index), lambda i=index: self.dataset[i]) for index in indices]
        return seeded_collate(loads, mixed_seed(seed, epoch, number, 1 << 40), self.collate)


def seeded_collate(
    loads: list[tuple[int, Callable[[], Any]]], batch_seed: int, collate: Callable[[list], Any]
):
    """`collate` of the items `load()` makes, each under torch's RNG seeded with its own seed and the
    collation under `batch_seed`, without touching the caller's RNG state. `loads`: `(seed, load)` pairs."""
    with torch.random.fork_rng(devices=[]):
        items = []
        for seed, load in loads:
            torch.manual_seed(seed)
            items.append(load())
        torch.manual_seed(batch_seed)
        return collate(items)


def agree_on_seed(seed: int) -> int:
    """Under DDP every rank must cut the same order: rank 0's seed (each rank computed its own from its
    `seed_everything`, which is normally, but not necessarily, the same). Call it on every rank."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        shared = [seed]
        dist.broadcast_object_list(shared, src=0)
        return int(shared[0])
    return seed


def passthrough(batch):
    """`collate_fn` for `SeededBatches`, whose `__getitems__` has collated already."""
    return batch


class _Requests:
    """The batch sampler: this epoch's remaining batch requests, set before each iteration."""

    def __init__(self):
        self.requests: list[tuple[int, int, int, list[int]]] = []

    def __iter__(self):
        return iter(self.requests)

    def __len__(self) -> int:
        return len(self.requests)


class EpochCounter:
    """Where a training stream stands: its `seed`, its `epoch` and the batches of it already handed out
    (`consumed`), kept in step with the consumer's epoch. Subclasses set `seed` and `current_epoch`."""

    seed: int
    current_epoch: Callable[[], int | None]
    epoch: int = 0
    consumed: int = 0

    def begin_epoch(self) -> tuple[int, int]:
        """(epoch, first batch) of the iteration about to start. A consumer now in another epoch than the
        stream (a new Lightning epoch after one cut short by `limit_train_batches`) starts that epoch afresh;
        in the same epoch (a mid-epoch resumption) the stream continues after its consumed batches."""
        # every rank starts every epoch, so the collective call is matched
        self.seed = agree_on_seed(self.seed)
        consumer = self.current_epoch()
        if consumer is not None and consumer != self.epoch:
            self.epoch, self.consumed = int(consumer), 0
        return self.epoch, self.consumed

    def handed_out(self, batches_in_epoch: int) -> None:
        """Count one batch; the one that completes the epoch moves the stream to the next epoch's start."""
        self.consumed += 1
        if self.consumed >= batches_in_epoch:
            self.epoch, self.consumed = self.epoch + 1, 0

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue the checkpoint's stream: its seed, its epoch, after the batches it had consumed."""
        self.seed, self.epoch, self.consumed = int(state["seed"]), int(state["epoch"]), int(state["consumed"])


def no_consumer_epoch() -> None:
    """`current_epoch` of a loader iterated outside a Trainer: each full iteration is the next epoch."""
    return None


class ResumableLoader(EpochCounter):
    """A training loader whose batches are reproducible and whose position survives checkpoints.

    Args:
        dataset: map-style dataset; collate: list of items → batch.
        batch_size: per-process batch; `world()` → (rank, number of processes), read at each epoch.
        current_epoch: () → the consumer's epoch (Lightning's `trainer.current_epoch`), or None to count
            full iterations; see `EpochCounter.begin_epoch`.
        seed: the stream's seed (default: torch's initial seed, i.e. Lightning's `seed_everything`).
        shuffle: a new order every epoch; only full global batches are formed.
        num_workers, pin_memory: as for `DataLoader` (workers are kept alive across epochs).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        collate: Callable[[list], Any],
        world: Callable[[], tuple[int, int]] = lambda: (0, 1),
        current_epoch: Callable[[], int | None] = no_consumer_epoch,
        seed: int | None = None,
        shuffle: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
    ):
        self.dataset, self.batch_size, self.world, self.shuffle = dataset, batch_size, world, shuffle
        self.current_epoch = current_epoch
        self.seed = int(torch.initial_seed() if seed is None else seed)
        self.epoch, self.consumed = 0, 0
        self._requests = _Requests()
        # worker seeds must not draw from the global RNG
        self.loader = DataLoader(
            SeededBatches(dataset, collate),
            batch_sampler=self._requests,
            collate_fn=passthrough,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            pin_memory=pin_memory,
            generator=torch.Generator(),
        )

    def __len__(self) -> int:
        """Batches per epoch. None would be an epoch that trains on nothing (Lightning skips it silently)."""
        rank, world = self.world()
        batches = len(self.dataset) // (self.batch_size * world)
        if batches == 0:
            raise DatasetError(
                f"the training split has {len(self.dataset)} item(s), fewer than one batch of "
                f"{self.batch_size} × {world} process(es): an epoch would train on nothing. Lower "
                "--data.init_args.batch_size or use more training data."
            )
        return batches

    def epoch_requests(self, epoch: int) -> list[tuple[int, int, int, list[int]]]:
        """This rank's batch requests of `epoch`, in order."""
        rank, world = self.world()
        if self.shuffle:
            order = torch.randperm(
                len(self.dataset), generator=torch.Generator().manual_seed(mixed_seed(self.seed, epoch))
            )
        else:
            order = torch.arange(len(self.dataset))
        width = self.batch_size * world
        return [
            (
                self.seed,
                epoch,
                number,
                order[start + rank * self.batch_size : start + (rank + 1) * self.batch_size].tolist(),
            )
            for number, start in enumerate(range(0, len(order) - width + 1, width))
        ]

    def __iter__(self) -> Iterator[Any]:
        epoch, skip = self.begin_epoch()
        requests = self.epoch_requests(epoch)
        self._requests.requests = requests[skip:]
        for batch in self.loader:
            self.handed_out(len(requests))
            yield batch
