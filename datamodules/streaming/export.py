"""Writing a prepared cache as tar shards plus `index.json` (the layout in the package doc)."""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
import numpy as np
from tqdm.auto import tqdm

from ..errors import DatasetError
from ..pipeline.cache import ShardedCache
from .layout import FORMAT, INDEX, filesystem


def _replace(fs: fsspec.AbstractFileSystem, path: str, write: Callable[[Any], None]) -> None:
    """Write `path` through a temporary sibling renamed over it (a reader never sees half a file)."""
    folder, name = posixpath.split(path)
    temporary = posixpath.join(folder, f".{name}.partial")
    with fs.open(temporary, "wb") as handle:
        write(handle)
    fs.mv(temporary, path)


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
