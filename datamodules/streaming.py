"""Prepared caches as WebDataset tar shards, streamed from a folder or object storage, for datasets larger
than one disk.

Layout of an export (`python -m datamodules.streaming export CACHE_DIR OUT_URL`)::

    index.json           {"complete", "params" (the cache's), "splits": {split: {"samples", "speakers"}},
                          "shards": [{"name", "split", "samples"}, ...]}
    shard-000000.tar     per sample (key = its row in the cache, 9 digits): <key>.json (meta) and
                         <key>.<array name>.npy (each array), consecutive members: the WebDataset layout

Every shard holds one split only. Shards and the index are written under a temporary name and renamed,
so an interrupted export (rerun the same command) keeps the finished shards and redoes only the others.
`OUT_URL` and reading URLs are local folders, `file://` or any fsspec URL (`s3://`, `gs://`, `https://`…).

Training (`StreamingLoader`) is a pure function of (seed, epoch, position), like `ResumableLoader`:
per epoch a seeded permutation of the split's shards; the shard at position p goes to rank p % world,
and within the rank to lane (p // world) % lanes; each lane streams its shards through a seeded shuffle
buffer; the rank's batch i comes from lane i % lanes. DataLoader workers each serve some lanes, so the
stream depends on `lanes` (default: the number of workers), never on the number of workers.

Equal lengths under DDP: a rank that runs out of batches first leaves the others waiting in a collective
forever. Every lane of every rank therefore yields exactly the batches the poorest possible lane fills:
(samples of the k smallest shards) // batch_size, k = shards // (ranks × lanes), whatever the permutation.
That count comes from the index alone, so ranks agree without talking and every epoch has the same length;
the rest of each lane is dropped (other samples next epoch). Use many more shards than ranks × lanes.
"""

from __future__ import annotations

import argparse
import hashlib
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
from tqdm.auto import tqdm

from .pipeline.cache import ShardedCache
from .pipeline.errors import DatasetError, command_errors
from .resumable import EpochCounter, mixed_seed, no_consumer_epoch, seeded_collate

INDEX = "index.json"
FORMAT = "talking-faces-webdataset/1"
EXPORT_HINT = "python -m datamodules.streaming export CACHE_DIR {url}"

Sample = tuple[int, dict[str, bytes], str]  # (row in the cache, {member suffix: bytes}, url of its shard)
Transform = Callable[[dict, dict[str, np.ndarray]], Any]  # (meta, arrays) → dataset item


# ----------------------------------------------------------------------------- URLs


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """fsspec's filesystem and path for a folder or URL, with the backend's absence explained."""
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as error:  # fsspec knows the scheme, its package is not installed
        raise DatasetError(
            f"{url}: this URL scheme needs an fsspec backend that is not installed ({error}). "
            "Install it (s3:// `pip install s3fs`, gs:// `pip install gcsfs`, "
            "az:// `pip install adlfs`) or copy the shards to a local folder."
        ) from None
    except ValueError as error:
        raise DatasetError(
            f"{url}: unknown URL scheme ({error}). Use a local folder, file://, or an fsspec URL "
            "such as s3://bucket/prefix, gs://bucket/prefix or https://host/prefix."
        ) from None


def _replace(fs: fsspec.AbstractFileSystem, path: str, write: Callable[[Any], None]) -> None:
    """Write `path` through a temporary sibling renamed over it (a reader never sees half a file)."""
    folder, name = posixpath.split(path)
    temporary = posixpath.join(folder, f".{name}.partial")
    with fs.open(temporary, "wb") as handle:
        write(handle)
    fs.mv(temporary, path)


# ----------------------------------------------------------------------------- export


def sample_members(row: int, meta: dict, arrays: dict[str, np.ndarray]) -> list[tuple[str, bytes]]:
    """One cached item as tar members: `<row>.json` then `<row>.<name>.npy` per array (sorted)."""
    key = f"{row:09d}"
    members = [(f"{key}.json", json.dumps(meta, sort_keys=True).encode())]
    for name in sorted(arrays):
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(arrays[name]), allow_pickle=False)
        members.append((f"{key}.{name}.npy", buffer.getvalue()))
    return members


def write_tar(handle, samples: Iterator[list[tuple[str, bytes]]]) -> None:
    """A plain tar of the samples' members, byte-reproducible (no times, owners or modes of our own)."""
    with tarfile.open(fileobj=handle, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        for members in samples:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))


def plan_shards(metas: list[dict], sizes: list[int], shard_bytes: float) -> list[dict]:
    """Rows grouped into single-split shards of about `shard_bytes`, splits in first-seen order."""
    splits = list(dict.fromkeys(meta.get("split") for meta in metas))
    shards: list[dict] = []
    for split in splits:
        current, filled = [], 0
        for row in (r for r, meta in enumerate(metas) if meta.get("split") == split):
            if current and filled + sizes[row] > shard_bytes:
                shards.append({"split": split, "rows": current})
                current, filled = [], 0
            current.append(row)
            filled += sizes[row]
        if current:
            shards.append({"split": split, "rows": current})
    for number, shard in enumerate(shards):
        shard["name"] = f"shard-{number:06d}.tar"
    return shards


def shard_listing(metas: list[dict], plan: list[dict]) -> dict:
    """The index's "shards" (name, split, samples) and "splits" (samples, named speakers) entries."""
    splits = {}
    for split in dict.fromkeys(shard["split"] for shard in plan):
        chosen = [meta for meta in metas if meta.get("split") == split]
        splits[split] = {
            "samples": len(chosen),
            "speakers": sorted({m["speaker"] for m in chosen if m.get("speaker")}),
        }
    shards = [
        {"name": shard["name"], "split": shard["split"], "samples": len(shard["rows"])} for shard in plan
    ]
    return {"shards": shards, "splits": splits}


def export_cache(cache_dir: str, out_url: str, shard_mb: float = 256, progress: bool = True) -> dict:
    """Write the prepared cache in `cache_dir` as tar shards + `index.json` at `out_url`; returns the index.

    Rerunning after an interruption keeps the shards already renamed into place and writes the rest.
    """
    cache = ShardedCache.open(cache_dir)
    items = cache.read()
    if not len(items):
        raise DatasetError(f"{cache_dir}: the cache holds no items. Run the datamodule's prepare_data first.")
    sizes = [sum(a.nbytes for a in items[row][1].values()) + 1024 for row in range(len(items))]
    plan = plan_shards(items.metas, sizes, shard_mb * 2**20)
    fingerprint = hashlib.sha1(
        json.dumps([cache.params, items.metas, plan], sort_keys=True).encode()
    ).hexdigest()
    fs, root = filesystem(out_url)
    fs.makedirs(root, exist_ok=True)
    index_path = posixpath.join(root, INDEX)
    resuming = fs.exists(index_path)
    if resuming and json.loads(fs.cat_file(index_path)).get("fingerprint") != fingerprint:
        raise DatasetError(
            f"{out_url} already holds another export (other cache or --shard-mb). "
            "Delete it or export to another URL."
        )
    index = {
        "format": FORMAT,
        "complete": False,
        "fingerprint": fingerprint,
        "shard_mb": shard_mb,
        "params": cache.params,
        "samples": len(items),
        **shard_listing(items.metas, plan),
    }
    _replace(fs, index_path, lambda f: f.write(json.dumps(index, indent=1).encode()))  # the plan, incomplete
    with tqdm(total=len(items), desc=f"export to {out_url}", unit="item", disable=not progress) as bar:
        for shard in plan:
            path = posixpath.join(root, shard["name"])
            if not (resuming and fs.exists(path)):
                members = (sample_members(row, *items[row]) for row in shard["rows"])
                _replace(fs, path, lambda f, members=members: write_tar(f, members))
            bar.update(len(shard["rows"]))
    index["complete"] = True
    _replace(fs, index_path, lambda f: f.write(json.dumps(index, indent=1).encode()))
    return index


# ----------------------------------------------------------------------------- reading


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
            for _ in range(
                wanted - next_batch[lane]
            ):  # resuming: read past consumed batches, never decode them
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
        loader = DataLoader(
            stream,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            generator=torch.Generator(),
        )  # worker seeds must not draw from the global RNG
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


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m datamodules.streaming",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser(
        "export",
        help="write a prepared cache as WebDataset tar shards",
        description="Write the prepared cache CACHE_DIR as WebDataset tar shards plus index.json at OUT_URL. "
        "Rerun the same command to finish an interrupted export. Train from it with "
        "--data.init_args.stream_url=OUT_URL.",
    )
    export.add_argument(
        "cache_dir",
        metavar="CACHE_DIR",
        help="a prepared cache folder (holds manifest.json and shard-*.json), e.g. "
        "data/cache/lrw-<hash>/clips-template-128px-8000hz-<hash>",
    )
    export.add_argument(
        "out_url",
        metavar="OUT_URL",
        help="local folder, file://, s3://bucket/prefix, gs://… (remote schemes need their fsspec "
        "package: s3fs, gcsfs, …)",
    )
    export.add_argument(
        "--shard-mb", type=float, default=256, help="approximate shard size in MiB (default 256)"
    )
    args = parser.parse_args(argv)
    with command_errors():
        index = export_cache(args.cache_dir, args.out_url, args.shard_mb)
    splits = ", ".join(f"{split} {info['samples']}" for split, info in index["splits"].items())
    print(f"{args.out_url}: {len(index['shards'])} shards, {index['samples']} samples ({splits})")


if __name__ == "__main__":
    main()
