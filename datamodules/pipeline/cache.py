"""An atomic, sharded, memory-mappable cache of preprocessed items.

Layout of a cache folder::

    manifest.json            {"format": 1, "params": {...}}   parameters the cache was made with
    shard-00003.json         items' metadata, array offsets and the jobs rejected in this shard
    shard-00003.<key>.npy    every item's `key` array, concatenated along axis 0

A shard's json is written last, by an atomic rename, so a shard is either complete or absent: a crash in
the middle of preprocessing loses at most the shard being written, and a rerun redoes only that one.
Arrays are opened with `mmap_mode="r"`, so a cache larger than memory still loads instantly.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CacheMismatchError, DatasetError

CACHE_FORMAT = 1


def atomic_write_bytes(path: Path, write) -> None:
    """Call `write(file)` on a temporary sibling of `path`, fsync it, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, lambda f: f.write(json.dumps(payload, indent=1, sort_keys=True).encode()))


def parameter_differences(stored: dict, asked: dict, keys, stored_as: str) -> str:
    """ "key: <stored_as> value vs asked value, …" for those of `keys` whose values differ; "" if none do."""
    return ", ".join(
        f"{k}: {stored_as} {stored.get(k)!r} vs asked {asked.get(k)!r}"
        for k in sorted(keys)
        if stored.get(k) != asked.get(k)
    )


@dataclass
class CachedItems:
    """Read-only view of every complete shard: `items[i]` → `(meta, {key: array})`."""

    metas: list[dict] = field(default_factory=list)
    _locations: list[tuple[int, int]] = field(default_factory=list)  # (shard slot, index in shard)
    _arrays: list[dict[str, np.ndarray]] = field(default_factory=list)
    _offsets: list[dict[str, list[int]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.metas)

    def __getitem__(self, index: int) -> tuple[dict, dict[str, np.ndarray]]:
        slot, row = self._locations[index]
        arrays = {
            key: array[self._offsets[slot][key][row] : self._offsets[slot][key][row + 1]]
            for key, array in self._arrays[slot].items()
        }
        return self.metas[index], arrays


class ShardedCache:
    """A cache folder bound to the preprocessing parameters it must have been made with."""

    def __init__(self, directory: str | Path, params: dict[str, Any]):
        self.directory = Path(directory)
        self.params = json.loads(json.dumps(params))  # normalise tuples/paths to their json form
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = self.directory / "manifest.json"
        if manifest.exists():
            self._check_manifest(manifest)
        else:
            atomic_write_json(manifest, {"format": CACHE_FORMAT, "params": self.params})

    @classmethod
    def open(cls, directory: str | Path) -> ShardedCache:
        """An existing cache folder, with the parameters its manifest records (for tools that copy it)."""
        manifest = Path(directory) / "manifest.json"
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
            raise CacheMismatchError(
                f"{self.directory} was prepared with other parameters ({details or 'cache format'}). "
                "Delete that folder to rebuild it, or point cache_dir elsewhere."
            )

    def shard_path(self, shard: int, suffix: str) -> Path:
        return self.directory / f"shard-{shard:05d}{suffix}"

    def is_complete(self, shard: int) -> bool:
        return self.shard_path(shard, ".json").exists()

    def write_shard(
        self, shard: int, items: list[tuple[dict, dict[str, np.ndarray]]], rejected: list[dict]
    ) -> None:
        """Write one shard: its arrays first, then its json, which marks it complete."""
        keys = sorted({key for _, arrays in items for key in arrays})
        offsets: dict[str, list[int]] = {}
        for key in keys:
            parts = [arrays[key] for _, arrays in items]
            offsets[key] = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).tolist()
            joined = np.concatenate(parts, axis=0)
            atomic_write_bytes(self.shard_path(shard, f".{key}.npy"), lambda f, a=joined: np.save(f, a))
        index = {"items": [meta for meta, _ in items], "offsets": offsets, "rejected": rejected}
        atomic_write_json(self.shard_path(shard, ".json"), index)

    def shard_indices(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.directory.glob("shard-*.json"))]

    def read(self) -> CachedItems:
        """Memory-map every complete shard."""
        view = CachedItems()
        for slot, json_path in enumerate(sorted(self.directory.glob("shard-*.json"))):
            index = json.loads(json_path.read_text())
            stem = json_path.name[: -len(".json")]
            arrays = {
                key: np.load(self.directory / f"{stem}.{key}.npy", mmap_mode="r") for key in index["offsets"]
            }
            view._arrays.append(arrays)
            view._offsets.append(index["offsets"])
            for row, meta in enumerate(index["items"]):
                view.metas.append(meta)
                view._locations.append((slot, row))
        return view

    def rejected(self) -> list[dict]:
        return [row for index in self.shard_indices() for row in index["rejected"]]


def data_location(data: str | Path) -> dict[str, str]:
    """The datamodule arguments for `DATA`: `{"root": data}` for a dataset in its real layout; for a folder
    written by `make prepare OUT=…` (recognised by its caches' manifest.json), the dataset root it was
    prepared from and `cache_dir`, so training reads that cache instead of preprocessing again."""
    folder = Path(data).expanduser()
    manifests = sorted(folder.glob("*/manifest.json")) if folder.is_dir() else []
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
    return {"root": str(roots.pop()), "cache_dir": str(folder)}
