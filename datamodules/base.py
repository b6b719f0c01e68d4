"""What every dataset's datamodule shares: where the data and its caches live, and how loaders are built.

A subclass names its on-disk `layout` (also the synthetic generator's name for it) and implements the
preprocessing; `root=None` means the embedded demo dataset, generated on first use.
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset

from .pipeline.cache import MANIFEST, REJECTED_LIST, ShardedCache
from .pipeline.prepare import PrepareReport
from .resumable import ResumableLoader
from .streaming.reading import OrderedStream, StreamedShards, StreamingLoader

REPO_ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")


def data_root() -> Path:
    """Where demo datasets and caches go: `$TF_DATA_DIR`, else `data/` in the repository."""
    return Path(os.environ.get("TF_DATA_DIR", REPO_ROOT / "data"))


def demo_folder(size: str, articulation: str, seed: int) -> str:
    """The generated demo data's folder under `data/demo/`: its size, then what differs from the default
    demo (`demo-lips`, `demo-lips-seed1`)."""
    return "-".join(
        [size, *([articulation] if articulation != "jaw" else []), *([f"seed{seed}"] if seed else [])]
    )


class CachedDataModule(L.LightningDataModule):
    """Base of the dataset datamodules. Subclasses set `layout` and call `save_hyperparameters()` with at
    least `root`, `cache_dir`, `prepared_dir`, `demo_size`, `demo_articulation`, `demo_seed`,
    `num_workers` and `batch_size`.

    `prepared_dir` (what `DATA` names when it is a folder written by `make prepare OUT=…`) is only ever
    read: its caches are used where they are, and whatever must be made besides (a cache it lacks, a side
    file that changed) goes to `cache_root`, by default a folder of the project's own cache keyed by it.
    """

    layout = ""

    @cached_property
    def root(self) -> Path:
        if self.hparams.root is not None:
            return Path(self.hparams.root).expanduser()
        from .synthetic import ensure_dataset

        size, articulation, seed = (
            self.hparams.demo_size,
            self.hparams.demo_articulation,
            self.hparams.demo_seed,
        )
        root = data_root() / "demo" / demo_folder(size, articulation, seed) / self.layout
        return ensure_dataset(self.layout, root, size=size, seed=seed, articulation=articulation)

    @cached_property
    def cache_root(self) -> Path:
        """Where this data's caches are made: `cache_dir`, else `data/cache/<layout>-<hash>` of the prepared
        folder or, without one, of the dataset root (two datasets never share one)."""
        if self.hparams.cache_dir is not None:
            return Path(self.hparams.cache_dir).expanduser()
        source = self.prepared_dir or self.root
        digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:8]
        return data_root() / "cache" / f"{self.layout}-{digest}"

    @property
    def prepared_dir(self) -> Path | None:
        prepared = self.hparams.get("prepared_dir")
        return None if prepared is None else Path(prepared).expanduser()

    def sharded_cache(self, name: str, params: dict) -> ShardedCache:
        """The cache `name`, made with `params`: read-only from `prepared_dir` when that folder holds it,
        else under `cache_root` (made there when missing)."""
        prepared = self.prepared_dir
        if prepared is not None and (prepared / name / MANIFEST).is_file():
            return ShardedCache(prepared / name, params, derived_dir=self.cache_root / name)
        return ShardedCache(self.cache_root / name, params)

    @property
    def description(self) -> str:
        """What the data is, for reports: the generated demo or the real folder."""
        if self.hparams.root is None:
            articulation = self.hparams.demo_articulation
            variant = "" if articulation == "jaw" else f", {articulation} articulation"
            variant += f", seed {self.hparams.demo_seed}" if self.hparams.demo_seed else ""
            return f"synthetic {self.layout} ({self.hparams.demo_size} size{variant})"
        return f"{self.layout} at {self.hparams.root}"

    def report(self, report: PrepareReport, cache: ShardedCache, what: str) -> None:
        if report.rejected:
            rank_zero_info(
                f"{self.layout}: {report.rejected} {what} file(s) rejected, {report.items} kept; reasons in "
                f"{cache.side_file(REJECTED_LIST)}"
            )

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Training batches arrive compact (each dataset's `load_batch`: uint8 pixels, unmixed noise) and
        are finished here, on the training device, by `finish_batch`. Call it yourself on a batch taken
        from a training loader outside a Trainer."""
        batch = self.finish_batch(batch)
        if self.trainer is not None:
            # Lightning casts a batch's floats to a true precision (64-true, bf16-true) before moving it;
            # the tensors made here are new, so they are cast here.
            batch = self.trainer.precision_plugin.convert_input(batch)
        return batch

    @staticmethod
    def finish_batch(batch):
        """The batched device transforms of this data (`datamodules/device_transforms.py`); a finished
        batch comes back unchanged."""
        return batch

    def world(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def per_device_batch(self) -> int:
        world = self.world()
        if self.hparams.batch_size % world:
            raise ValueError(f"batch_size {self.hparams.batch_size} is not divisible by the {world} devices")
        return self.hparams.batch_size // world

    def loader(
        self, dataset: Dataset, batch_size: int, shuffle: bool, collate
    ) -> DataLoader | ResumableLoader:
        """Training (`shuffle`): a `ResumableLoader`, reproducible and resumable mid-epoch, sharded over DDP
        ranks itself; evaluation: a plain in-order `DataLoader` (Lightning shards it)."""
        workers = self.hparams.num_workers
        if shuffle:
            return ResumableLoader(
                dataset,
                batch_size,
                collate,
                world=self._rank_and_world,
                current_epoch=self._current_epoch,
                num_workers=workers,
                pin_memory=torch.cuda.is_available(),
            )
        # The workers' seeds come from their own generator: drawn from the global RNG, starting them (at the
        # first validation of a process) would shift training's random stream, and a resumed run would
        # then draw other numbers than the uninterrupted one.
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=False,
            collate_fn=collate,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            generator=torch.Generator(),
        )

    @cached_property
    def stream(self) -> StreamedShards | None:
        """The exported shards at `hparams.stream_url` (`datamodules/streaming/`), or None."""
        url = self.hparams.get("stream_url")
        return StreamedShards(url) if url else None

    def stream_loader(self, split: str, batch_size: int, shuffle: bool, transform, collate):
        """`loader` for `split` of the streamed shards; `transform(meta, arrays)` makes an item. Training:
        a `StreamingLoader` (reproducible, resumable, equal batch counts on every DDP rank); evaluation:
        every shard in order in the main process (each rank evaluates the whole split)."""
        shards = self.stream.shards(split)
        if shuffle:
            return StreamingLoader(
                shards,
                batch_size,
                transform,
                collate,
                world=self._rank_and_world,
                current_epoch=self._current_epoch,
                num_workers=self.hparams.num_workers,
                pin_memory=torch.cuda.is_available(),
            )
        return DataLoader(
            OrderedStream(shards, batch_size, transform, collate),
            batch_size=None,
            pin_memory=torch.cuda.is_available(),
        )

    def _current_epoch(self) -> int | None:
        """The trainer's epoch, which the training loaders follow (`resumable.EpochCounter`)."""
        return self.trainer.current_epoch if self.trainer is not None else None

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)


def randint(high: int) -> int:
    """A random int in [0, high) from torch's generator, which is reseeded per DataLoader worker (numpy's
    global one is not)."""
    return int(torch.randint(high, ()).item())


def stack_items(items: list[dict], exclude: tuple[str, ...] = ()) -> dict:
    """Collate same-shaped tensors (stacked) and scalars (into a tensor), skipping `exclude` keys."""
    return {
        key: torch.stack([i[key] for i in items])
        if torch.is_tensor(items[0][key])
        else torch.tensor([i[key] for i in items])
        for key in items[0]
        if key not in exclude
    }
