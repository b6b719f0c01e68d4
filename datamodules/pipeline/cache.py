"""An atomic, sharded, memory-mappable cache of preprocessed items.

Layout of a cache folder::

    manifest.json            {"format": 1, "params": {...}}   parameters the cache was made with
    shard-00003.json         items' metadata, array offsets and the jobs rejected in this shard
    shard-00003.<key>.npy    every item's `key` array, concatenated along axis 0
    rejected.csv, scan.json  side files: every rejected job with its reason; what the dataset's scan listed

A shard's json is written last, by an atomic rename, so a shard is either complete or absent: a crash in
the middle of preprocessing loses at most the shard being written, and a rerun redoes only that one.
Arrays are opened with `mmap_mode="r"`, so a cache larger than memory still loads instantly.

A cache opened read-only (one in a prepared folder given as DATA, maybe on a read-only mount) is never
written: reading a complete one writes nothing, and a side file that differs from its copy there goes to the
cache's `derived_dir`, a folder of the project's own cache.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CacheMismatchError, DatasetError
from .files import atomic_write_bytes, atomic_write_json, atomic_write_text

CACHE_FORMAT = 1
MANIFEST = "manifest.json"
REJECTED_LIST = "rejected.csv"


def parameter_differences(stored: dict, asked: dict, keys, stored_as: str) -> str:
    """ "key: <stored_as> value vs asked value, …" for those of `keys` whose values differ; "" if none do."""
    return ", ".join(
        f"{k}: {stored_as} {stored.get(k)!r} vs asked {asked.get(k)!r}"
        for k in sorted(keys)
        if stored.get(k) != asked.get(k)
    )


class CachedItems:
    """Read-only view of every complete shard: `items[i]` → `(meta, {key: array})`; `metas[i]` is item i's
    metadata.

    A shard's arrays are memory-mapped on first use, through `torch.from_file`, which keeps no file
    descriptor open (numpy's memmap keeps one per array, and a cache of many thousand shards would exhaust
    the process's limit). At most `MAX_MAPPED_ARRAYS` arrays stay mapped, least recently used first out, a
    quarter of Linux's default limit on a process's maps; each array's npy header is parsed once, so
    mapping a shard again costs one mmap. Arrays already handed out stay valid.
    """

    MAX_MAPPED_ARRAYS = 16384

    def __init__(
        self,
        directory: Path,
        stems: list[str],
        counts: list[int],
        offsets: list[dict[str, np.ndarray]],
        metas: list[dict],
    ):
        """`stems[k]` names shard k's files, which hold `counts[k]` items with array `offsets[k]`;
        `metas`: every item's metadata, shard after shard."""
        self.directory = Path(directory)
        self.metas = metas
        self._stems, self._offsets = stems, offsets
        counts = np.asarray(counts, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)])
        # Item i is row `_row[i]` of shard `_slot[i]`.
        self._slot = np.repeat(np.arange(len(stems), dtype=np.int32), counts)
        self._row = (np.arange(starts[-1]) - np.repeat(starts[:-1], counts)).astype(np.int32)
        self._open: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._mapped = 0
        self._headers: dict[tuple[int, str], tuple[np.dtype, tuple[int, ...], int]] = {}

    def __len__(self) -> int:
        return len(self.metas)

    def __getitem__(self, index: int) -> tuple[dict, dict[str, np.ndarray]]:
        slot, row = int(self._slot[index]), int(self._row[index])
        offsets = self._offsets[slot]
        arrays = {
            key: array[offsets[key][row] : offsets[key][row + 1]] for key, array in self._arrays(slot).items()
        }
        return self.metas[index], arrays

    def _arrays(self, slot: int) -> dict[str, np.ndarray]:
        if slot in self._open:
            self._open.move_to_end(slot)
            return self._open[slot]
        arrays = {key: self._map(slot, key) for key in self._offsets[slot]}
        self._open[slot] = arrays
        self._mapped += len(arrays)
        while self._mapped > self.MAX_MAPPED_ARRAYS and len(self._open) > 1:
            self._mapped -= len(self._open.popitem(last=False)[1])
        return arrays

    def _map(self, slot: int, key: str) -> np.ndarray:
        """Shard `slot`'s `key` array, mapped read-only (private: nothing is ever written back)."""
        path = self.directory / f"{self._stems[slot]}.{key}.npy"
        if (slot, key) not in self._headers:
            self._headers[slot, key] = npy_header(path)
        dtype, shape, offset = self._headers[slot, key]
        size = offset + int(np.prod(shape)) * dtype.itemsize
        raw = torch.from_file(str(path), shared=False, size=size, dtype=torch.uint8).numpy()
        array = raw[offset:].view(dtype).reshape(shape)
        array.flags.writeable = False
        return array

    def __getstate__(self) -> dict:
        """Pickled (to a spawned worker) without its open maps, which the receiver reopens itself."""
        return {**self.__dict__, "_open": OrderedDict(), "_mapped": 0}


def npy_header(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, byte offset of the data) of a C-ordered `.npy` file."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, fortran_order, dtype = read(handle)
        if fortran_order:
            raise DatasetError(
                f"{path}: a Fortran-ordered array, which this cache never writes. Prepare again."
            )
        return dtype, shape, handle.tell()


class ShardedCache:
    """A cache folder bound to the preprocessing parameters it must have been made with.

    With `derived_dir`, the cache is read-only: `directory` must hold a manifest already, no shard is ever
    written, and side files that must change are written to `derived_dir` instead.
    """

    def __init__(self, directory: str | Path, params: dict[str, Any], derived_dir: str | Path | None = None):
        self.directory = Path(directory)
        self.derived_dir = None if derived_dir is None else Path(derived_dir)
        self.params = json.loads(json.dumps(params))  # normalise tuples/paths to their json form
        manifest = self.directory / MANIFEST
        if manifest.exists() or self.read_only:
            self._check_manifest(manifest)
        else:
            atomic_write_json(manifest, {"format": CACHE_FORMAT, "params": self.params})

    @property
    def read_only(self) -> bool:
        return self.derived_dir is not None

    @classmethod
    def open(cls, directory: str | Path) -> ShardedCache:
        """An existing cache folder, with the parameters its manifest records (for tools that copy it)."""
        manifest = Path(directory) / MANIFEST
        if not manifest.is_file():
            raise DatasetError(
                f"{directory}: not a prepared cache (no manifest.json). Pass the folder that holds "
                "manifest.json and shard-*.json, e.g. data/cache/<layout>-<hash>/<cache name>."
            )
        try:
            params = json.loads(manifest.read_text())["params"]
        except (OSError, ValueError, KeyError) as error:
            raise DatasetError(
                f"{manifest}: unreadable cache manifest ({error}). Prepare the cache again."
            ) from None
        return cls(directory, params)

    def _check_manifest(self, manifest: Path) -> None:
        try:
            stored = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise DatasetError(
                f"{manifest}: unreadable cache manifest ({error}). Delete {self.directory}."
            ) from None
        old = stored.get("params", {})
        details = parameter_differences(old, self.params, set(old) | set(self.params), "cached")
        if details or stored.get("format") != CACHE_FORMAT:
            remedy = (
                "Prepare that data again with these parameters, or pass the dataset root as DATA."
                if self.read_only
                else "Delete that folder to rebuild it, or point cache_dir elsewhere."
            )
            raise CacheMismatchError(
                f"{self.directory} was prepared with other parameters ({details or 'cache format'}). {remedy}"
            )

    def incomplete_error(self, shard: int) -> DatasetError:
        """What to do about a read-only cache that lacks `shard`."""
        return DatasetError(
            f"{self.shard_path(shard, '.json')}: missing, so the prepared cache is incomplete, and a "
            "prepared folder given as DATA is only read. Finish it with `make prepare … OUT=<that folder>` "
            "where it is writable, or pass the dataset root as DATA to preprocess into the project's cache."
        )

    def side_file(self, name: str) -> Path:
        """Where the side file `name` (`REJECTED_LIST`, …) is read: for a read-only cache, the copy written
        to `derived_dir` when there is one, else the cache's own."""
        derived = None if self.derived_dir is None else self.derived_dir / name
        return derived if derived is not None and derived.is_file() else self.directory / name

    def write_side_file(self, name: str, text: str) -> None:
        """Make `text` the side file `name`; nothing is written when it holds that already, and a read-only
        cache's goes to `derived_dir`."""
        current = self.side_file(name)
        if current.is_file() and current.read_text() == text:
            return
        atomic_write_text((self.derived_dir or self.directory) / name, text)

    def shard_path(self, shard: int, suffix: str) -> Path:
        return self.directory / f"shard-{shard:05d}{suffix}"

    def is_complete(self, shard: int) -> bool:
        return self.shard_path(shard, ".json").exists()

    def shards_to_write(self, count: int) -> list[int]:
        """Which of shards 0 … `count` - 1 are not complete yet; for a read-only cache, none may be."""
        todo = [shard for shard in range(count) if not self.is_complete(shard)]
        if todo and self.read_only:
            raise self.incomplete_error(todo[0])
        return todo

    def write_shard(
        self, shard: int, items: list[tuple[dict, dict[str, np.ndarray]]], rejected: list[dict]
    ) -> None:
        """Write one shard: its arrays first, then its json, which marks it complete."""
        if self.read_only:
            raise self.incomplete_error(shard)
        keys = sorted({key for _, arrays in items for key in arrays})
        offsets: dict[str, list[int]] = {}
        for key in keys:
            parts = [arrays[key] for _, arrays in items]
            offsets[key] = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).tolist()
            joined = np.concatenate(parts, axis=0)
            atomic_write_bytes(self.shard_path(shard, f".{key}.npy"), lambda f, a=joined: np.save(f, a))
        index = {"items": [meta for meta, _ in items], "offsets": offsets, "rejected": rejected}
        atomic_write_json(self.shard_path(shard, ".json"), index)

    def _shard_jsons(self) -> list[Path]:
        """Every complete shard's json, in shard order (sorted by name: comparing Path objects is slow)."""
        return sorted(self.directory.glob("shard-*.json"), key=lambda path: path.name)

    def shard_indices(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in self._shard_jsons()]

    def read(self) -> CachedItems:
        """Every complete shard's items; their arrays are memory-mapped when first read."""
        stems, counts, offsets, metas = [], [], [], []
        for json_path in self._shard_jsons():
            index = json.loads(json_path.read_text())
            stems.append(json_path.name[: -len(".json")])
            counts.append(len(index["items"]))
            offsets.append({key: np.asarray(o, dtype=np.int64) for key, o in index["offsets"].items()})
            metas.extend(index["items"])
        return CachedItems(self.directory, stems, counts, offsets, metas)

    def rejected(self) -> list[dict]:
        return [row for index in self.shard_indices() for row in index["rejected"]]


def data_location(data: str | Path) -> dict[str, str]:
    """The datamodule arguments for `DATA`: `{"root": data}` for a dataset in its real layout; for a folder
    written by `make prepare OUT=…` (recognised by its caches' manifest.json), the dataset root it was
    prepared from and `prepared_dir`, so training reads that cache, read-only, instead of preprocessing
    again."""
    folder = Path(data).expanduser()
    manifests = sorted(folder.glob(f"*/{MANIFEST}")) if folder.is_dir() else []
    if not manifests:
        return {"root": str(data)}
    roots = set()
    for manifest in manifests:
        try:
            roots.add(json.loads(manifest.read_text())["params"]["root"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DatasetError(
                f"{manifest}: unreadable cache manifest ({error}). Prepare {folder} again."
            ) from None
    if len(roots) != 1 or None in roots:
        raise DatasetError(
            f"{folder}: caches prepared from several or unknown dataset roots ({sorted(map(str, roots))}). "
            "Prepare one dataset per OUT folder."
        )
    return {"root": str(roots.pop()), "prepared_dir": str(folder)}
