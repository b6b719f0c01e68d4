"""Streaming an export back: its index (`StreamedShards`), the training stream (`StreamingLoader`, see the
package doc) and the in-order evaluation stream (`OrderedStream`)."""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import fsspec
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..errors import DatasetError
from ..resumable import EpochCounter, mixed_seed, no_consumer_epoch, seeded_collate
from .layout import EXPORT_HINT, FORMAT, INDEX, filesystem

Sample = tuple[int, dict[str, bytes], str]  # (row in the cache, {member suffix: bytes}, url of its shard)
Transform = Callable[[dict, dict[str, np.ndarray]], Any]  # (meta, arrays) → dataset item


@dataclass(frozen=True)
class Shard:
    """One tar shard: its full URL, its split and how many samples the index says it holds."""

    url: str
    split: str | None
    samples: int


class StreamedShards:
    """An export's index, read from a folder or URL: its shards per split and the cache parameters."""

    def __init__(self, url: str):
        self.url = url
        fs, root = filesystem(url)
        try:
            index = json.loads(fs.cat_file(posixpath.join(root, INDEX)))
        except FileNotFoundError:
            raise DatasetError(
                f"{url}: no {INDEX} (missing folder, or not an export). Create it with "
                f"`{EXPORT_HINT.format(url=url)}`."
            ) from None
        except (OSError, ValueError) as error:
            raise DatasetError(f"{url}/{INDEX}: unreadable ({error}). Export again to another URL.") from None
        if index.get("format") != FORMAT:
            raise DatasetError(
                f"{url}/{INDEX}: format {index.get('format')!r}, expected {FORMAT!r}. Export again."
            )
        if not index["complete"]:
            raise DatasetError(
                f"{url}: the export was interrupted. Finish it by rerunning "
                f"`{EXPORT_HINT.format(url=url)}` with the same cache and --shard-mb."
            )
        self.index, self.params = index, index["params"]
        self._all = [
            Shard(fs.unstrip_protocol(posixpath.join(root, s["name"])), s["split"], s["samples"])
            for s in index["shards"]
        ]

    def shards(self, split: str | None = None) -> list[Shard]:
        """The shards of `split` (all with None), in export order."""
        chosen = [s for s in self._all if split is None or s.split == split]
        if not chosen:
            raise DatasetError(
                f"{self.url}: no shard of split {split!r} (splits: {sorted(self.index['splits'])})."
            )
        return chosen

    def speakers(self, split: str) -> list[str]:
        return self.index["splits"].get(split, {}).get("speakers", [])


def read_shard(shard: Shard) -> Iterator[Sample]:
    """The shard's samples as raw member bytes, in order; a missing or damaged shard is a `DatasetError`."""
    fix = "Delete it and rerun the export (it rewrites missing shards), or restore it from a copy."
    count, row, members = 0, None, {}
    try:
        with fsspec.open(shard.url, "rb") as handle, tarfile.open(fileobj=handle, mode="r|") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, _, suffix = posixpath.basename(info.name).partition(".")
                if key != row and members:
                    count += 1
                    yield int(row), members, shard.url
                    members = {}
                row, members[suffix] = key, tar.extractfile(info).read()
    except FileNotFoundError:
        raise DatasetError(f"{shard.url}: shard missing. {fix}") from None
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        raise DatasetError(f"{shard.url}: damaged shard ({error}). {fix}") from None
    if members:
        count += 1
        yield int(row), members, shard.url
    if count != shard.samples:
        raise DatasetError(
            f"{shard.url}: {count} samples, the index says {shard.samples} (truncated shard). {fix}"
        )


def decode(sample: Sample) -> tuple[dict, dict[str, np.ndarray]]:
    """Raw members → `(meta, {array name: array})`, as `CachedItems[i]` gives them."""
    row, members, url = sample
    try:
        meta = json.loads(members["json"])
        arrays = {
            suffix[: -len(".npy")]: np.load(io.BytesIO(data), allow_pickle=False)
            for suffix, data in members.items()
            if suffix.endswith(".npy")
        }
    except (KeyError, ValueError) as error:
        raise DatasetError(
            f"{url}: sample {row:09d} is damaged ({error!r}). Export the cache again."
        ) from None
    return meta, arrays


def shuffled(samples: Iterator[Sample], size: int, rng: np.random.Generator) -> Iterator[Sample]:
    """A shuffle buffer of `size` samples: each arriving sample replaces a random one, which leaves."""
    buffer: list[Sample] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        slot = int(rng.integers(size))
        yield buffer[slot]
        buffer[slot] = sample
    yield from (buffer[i] for i in rng.permutation(len(buffer)))


# ----------------------------------------------------------------------------- training stream


@dataclass
class EpochStream(IterableDataset):
    """One epoch of one rank: collated batches `from_batch`… of the lanes (lists of shards) given.

    Batch i is lane i % len(lanes)'s batch i // len(lanes); each item is transformed under torch's RNG
    seeded by (seed, epoch, row) and each batch collated under (seed, epoch, rank, i). Worker w of W
    yields batches from_batch + w, + W, …, which the DataLoader's round robin puts back in order.
    """

    lanes: list[list[Shard]]
    per_lane: int  # batches every lane yields
    batch_size: int
    seed: int
    epoch: int
    rank: int
    from_batch: int
    shuffle_buffer: int
    transform: Transform
    collate: Callable[[list], Any]

    def lane_samples(self, lane: int) -> Iterator[Sample]:
        samples = (sample for shard in self.lanes[lane] for sample in read_shard(shard))
        if not self.shuffle_buffer:
            return samples
        rng = np.random.default_rng(mixed_seed(self.seed, self.epoch, self.rank, lane))
        return shuffled(samples, self.shuffle_buffer, rng)

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        count, streams, next_batch = len(self.lanes), {}, {}
        for number in range(self.from_batch + worker, self.per_lane * count, workers):
            lane, wanted = number % count, number // count
            if lane not in streams:
                streams[lane], next_batch[lane] = self.lane_samples(lane), 0
            # resuming: read past consumed batches, never decode them
            for _ in range(wanted - next_batch[lane]):
                for _ in islice(streams[lane], self.batch_size):
                    pass
            next_batch[lane] = wanted + 1
            yield self.collated(number, list(islice(streams[lane], self.batch_size)))

    def collated(self, number: int, samples: list[Sample]) -> Any:
        loads = [
            (mixed_seed(self.seed, self.epoch, sample[0]), lambda s=sample: self.transform(*decode(s)))
            for sample in samples
        ]
        return seeded_collate(
            loads, mixed_seed(self.seed, self.epoch, self.rank, number, 1 << 40), self.collate
        )


class StreamingLoader(EpochCounter):
    """Training batches streamed from shards, reproducible and resumable mid-epoch (see the module doc).

    Args:
        shards: the split's shards (`StreamedShards.shards("train")`); transform: (meta, arrays) → item;
        collate: list of items → batch; batch_size: per process; world: () → (rank, number of processes);
        current_epoch: as for `ResumableLoader`.
        seed: default torch's initial seed (Lightning's `seed_everything`); shuffle: permute shards and
            use the buffer (else shards in order, no buffer); shuffle_buffer: samples held per lane.
        lanes: independent sample streams per rank (default: num_workers, at least 1); the stream depends
            on it, not on num_workers. num_workers, pin_memory: as for `DataLoader` (new workers each epoch).
    """

    def __init__(
        self,
        shards: list[Shard],
        batch_size: int,
        transform: Transform,
        collate: Callable[[list], Any],
        world: Callable[[], tuple[int, int]] = lambda: (0, 1),
        current_epoch: Callable[[], int | None] = no_consumer_epoch,
        seed: int | None = None,
        shuffle: bool = True,
        shuffle_buffer: int = 64,
        lanes: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
    ):
        self.shards, self.batch_size, self.transform, self.collate = shards, batch_size, transform, collate
        self.world, self.current_epoch = world, current_epoch
        self.shuffle, self.shuffle_buffer = shuffle, shuffle_buffer if shuffle else 0
        self.lanes, self.num_workers, self.pin_memory = lanes or max(1, num_workers), num_workers, pin_memory
        self.seed = int(torch.initial_seed() if seed is None else seed)
        self.epoch, self.consumed = 0, 0

    def lanes_of(self, rank: int, world: int, epoch: int) -> list[list[Shard]]:
        """`[lane]` → the shards `rank` of `world` streams in that lane during `epoch`."""
        if self.shuffle:
            order = np.random.default_rng(mixed_seed(self.seed, epoch)).permutation(len(self.shards)).tolist()
        else:
            order = list(range(len(self.shards)))
        lanes: list[list[Shard]] = [[] for _ in range(self.lanes)]
        for position in range(rank, len(order), world):
            lanes[(position // world) % self.lanes].append(self.shards[order[position]])
        return lanes

    def batches_per_lane(self) -> int:
        """The batches the poorest lane of any rank fills under any permutation: each lane's count."""
        _, world = self.world()
        fewest_shards = len(self.shards) // (world * self.lanes)
        per_lane = sum(sorted(s.samples for s in self.shards)[:fewest_shards]) // self.batch_size
        if per_lane == 0:
            raise DatasetError(
                f"{self.shards[0].url}: {len(self.shards)} shards cannot give {world} rank(s) × {self.lanes} "
                f"lane(s) a batch of {self.batch_size} each. Export with a smaller --shard-mb (more shards), "
                "or use fewer workers / lanes / devices."
            )
        return per_lane

    def __len__(self) -> int:
        return self.batches_per_lane() * self.lanes

    def epoch_stream(self, epoch: int, from_batch: int = 0) -> EpochStream:
        rank, world = self.world()
        return EpochStream(
            self.lanes_of(rank, world, epoch),
            self.batches_per_lane(),
            self.batch_size,
            self.seed,
            epoch,
            rank,
            from_batch,
            self.shuffle_buffer,
            self.transform,
            self.collate,
        )

    def __iter__(self) -> Iterator[Any]:
        epoch, skip = self.begin_epoch()
        stream = self.epoch_stream(epoch, from_batch=skip)
        # worker seeds must not draw from the global RNG
        loader = DataLoader(
            stream,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            generator=torch.Generator(),
        )
        batches_in_epoch = len(self)
        for batch in loader:
            self.handed_out(batches_in_epoch)
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {**super().state_dict(), "lanes": self.lanes}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue the checkpoint's stream: its seed, epoch and lanes, after the batches it had consumed."""
        super().load_state_dict(state)
        self.lanes = int(state.get("lanes", self.lanes))


@dataclass
class OrderedStream(IterableDataset):
    """Evaluation: every shard in order, items transformed and collated in batches (the last one short).
    Not split over ranks or workers: use it with `num_workers=0`; each DDP rank evaluates everything."""

    shards: list[Shard]
    batch_size: int
    transform: Transform
    collate: Callable[[list], Any]

    def __iter__(self) -> Iterator[Any]:
        samples = (sample for shard in self.shards for sample in read_shard(shard))
        while batch := list(islice(samples, self.batch_size)):
            yield self.collate([self.transform(*decode(sample)) for sample in batch])
