"""Prepared caches exported as WebDataset tar shards and streamed back (`datamodules/streaming/`): round
trip, resumable export, per-rank sharding with equal batch counts, determinism, mid-epoch resumption,
worker independence, error messages, and training the LRW datamodule from streamed shards."""

import importlib.util
import os
import tarfile

import lightning as L
import numpy as np
import pytest
import torch

from datamodules.base import randint, stack_items
from datamodules.errors import DatasetError
from datamodules.pipeline.cache import ShardedCache
from datamodules.streaming import export
from datamodules.streaming.export import export_cache
from datamodules.streaming.reading import StreamedShards, StreamingLoader, decode, read_shard
from tests.checkpoint_helpers import SaveAtStep

SPLIT_SIZES = {"train": 30, "val": 6, "test": 4}
THREE_PER_SHARD_MB = 4000 / 2**20  # an item is 128 + 8 array bytes + 1024 estimated overhead: 3 fit


def make_cache(directory) -> ShardedCache:
    """40 items (30 train, 6 val, 4 test) in cache shards of 7, each with a distinct `x (4, 8)` float32
    and `row (1,)` int64 array."""
    cache = ShardedCache(directory, {"kind": "test"})
    items = [
        (
            {"key": f"clip{row}", "split": split, "speaker": f"s{row % 3}"},
            {"x": np.full((4, 8), row, np.float32) + np.arange(8, dtype=np.float32), "row": np.array([row])},
        )
        for row, split in enumerate(s for s, n in SPLIT_SIZES.items() for _ in range(n))
    ]
    for shard, start in enumerate(range(0, len(items), 7)):
        cache.write_shard(shard, items[start : start + 7], rejected=[])
    return cache


@pytest.fixture()
def exported(tmp_path):
    cache = make_cache(tmp_path / "cache")
    export_cache(str(cache.directory), str(tmp_path / "stream"), shard_mb=THREE_PER_SHARD_MB, progress=False)
    return cache, StreamedShards(str(tmp_path / "stream"))


def row_and_crop(meta, arrays):
    """An item as the real datasets make one: its row and a random draw (like a window start)."""
    return {"row": int(arrays["row"][0]), "start": randint(1000)}


def stream(shards, batch_size=5, **kwargs):
    return StreamingLoader(shards, batch_size, row_and_crop, stack_items, **kwargs)


def batches(loader, count=None):
    out = []
    for batch in loader:
        out.append((batch["row"].tolist(), batch["start"].tolist()))
        if len(out) == count:
            break
    return out


def rows_of(batch_list):
    return [row for rows, _ in batch_list for row in rows]


def test_export_round_trip_gives_back_every_cached_item_in_single_split_shards(exported):
    cache, shards = exported
    items = cache.read()
    assert shards.index["samples"] == len(items) == 40
    assert {s: shards.index["splits"][s]["samples"] for s in SPLIT_SIZES} == SPLIT_SIZES
    assert shards.speakers("val") == ["s0", "s1", "s2"]
    assert [s.samples for s in shards.shards("train")] == [3] * 10
    assert [s.samples for s in shards.shards("test")] == [3, 1]
    seen = {}
    for shard in shards.shards():
        for sample in read_shard(shard):
            meta, arrays = decode(sample)
            assert meta["split"] == shard.split
            seen[sample[0]] = (meta, arrays)
    assert sorted(seen) == list(range(40))
    for row in range(40):
        meta, arrays = items[row]
        assert seen[row][0] == meta and set(seen[row][1]) == {"x", "row"}
        for name, array in arrays.items():
            assert seen[row][1][name].dtype == array.dtype and np.array_equal(seen[row][1][name], array)
    with tarfile.open(shards.shards()[0].url.removeprefix("file://")) as tar:  # WebDataset member naming
        assert tar.getnames()[:3] == ["000000000.json", "000000000.row.npy", "000000000.x.npy"]


def test_an_interrupted_export_is_refused_then_finished_rewriting_only_missing_shards(tmp_path, monkeypatch):
    cache, out = make_cache(tmp_path / "cache"), tmp_path / "stream"
    real_write, written = export.write_tar, []

    def crash_on_the_third_shard(handle, samples):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(1)
        real_write(handle, samples)

    monkeypatch.setattr(export, "write_tar", crash_on_the_third_shard)
    with pytest.raises(KeyboardInterrupt):
        export_cache(str(cache.directory), str(out), shard_mb=THREE_PER_SHARD_MB, progress=False)
    with pytest.raises(DatasetError, match="interrupted.*rerunning"):
        StreamedShards(str(out))
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.tar")}
    assert sorted(finished) == ["shard-000000.tar", "shard-000001.tar"]
    monkeypatch.setattr(export, "write_tar", real_write)
    export_cache(str(cache.directory), str(out), shard_mb=THREE_PER_SHARD_MB, progress=False)
    assert {name: (out / name).stat().st_mtime_ns for name in finished} == finished  # kept, not rewritten
    assert sum(s.samples for s in StreamedShards(str(out)).shards()) == 40
    with pytest.raises(DatasetError, match="another export"):
        export_cache(str(cache.directory), str(out), shard_mb=1.0, progress=False)


def test_two_ranks_get_disjoint_shards_covering_the_split_with_equal_batch_counts(exported):
    _, shards = exported
    train = shards.shards("train")  # 10 shards of 3: 5 per rank, 15 samples, 3 batches of 5
    ranks = [batches(stream(train, seed=1, world=lambda r=r: (r, 2))) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 3
    assert not set(rows_of(ranks[0])) & set(rows_of(ranks[1]))
    assert sorted(rows_of(ranks[0]) + rows_of(ranks[1])) == list(range(30))
    # 14 shards (13 of 3, one of 1) over 2 ranks × 2 lanes: every lane holds at least 3 shards, so at least
    # 1 + 3 + 3 samples whatever the permutation: every lane yields 2 batches of 3 in every epoch
    for epoch_seed in range(4):
        uneven = [
            stream(shards.shards(), batch_size=3, seed=epoch_seed, lanes=2, world=lambda r=r: (r, 2))
            for r in (0, 1)
        ]
        per_rank = [batches(loader) for loader in uneven]
        assert [len(loader) for loader in uneven] == [len(b) for b in per_rank] == [4, 4]
        assert all(len(rows) == 3 for b in per_rank for rows, _ in b)
        assert not set(rows_of(per_rank[0])) & set(rows_of(per_rank[1]))
    with pytest.raises(DatasetError, match="smaller --shard-mb"):
        len(stream(train, batch_size=16, world=lambda: (0, 2)))


def test_the_stream_is_a_function_of_seed_and_epoch(exported):
    _, shards = exported
    first, again = stream(shards.shards("train"), seed=3), stream(shards.shards("train"), seed=3)
    epoch0, epoch1 = batches(first), batches(first)
    assert epoch0 == batches(again) and epoch1 == batches(again)  # rows and random draws alike
    assert len(epoch0) == 6 and epoch0 != epoch1
    # a new order of the same samples
    assert sorted(rows_of(epoch0)) == sorted(rows_of(epoch1)) == list(range(30))
    assert batches(stream(shards.shards("train"), seed=4)) != epoch0
    ordered = batches(stream(shards.shards("train"), shuffle=False))
    assert rows_of(ordered) == list(range(30))


def test_resuming_mid_epoch_continues_with_the_uninterrupted_batches_whatever_the_workers(exported):
    _, shards = exported
    whole = stream(shards.shards("train"), batch_size=3, seed=9, lanes=2)
    uninterrupted = batches(whole) + batches(whole)  # epochs 0 and 1
    interrupted = stream(shards.shards("train"), batch_size=3, seed=9, lanes=2)
    seen = batches(interrupted, count=3)
    state = interrupted.state_dict()
    assert state == {"seed": 9, "epoch": 0, "consumed": 3, "lanes": 2}
    # seed, lanes from the state
    resumed = stream(shards.shards("train"), batch_size=3, seed=123, num_workers=2)
    resumed.load_state_dict(state)
    assert seen + batches(resumed) + batches(resumed) == uninterrupted
    assert resumed.state_dict() == {"seed": 9, "epoch": 2, "consumed": 0, "lanes": 2}


def test_workers_give_the_stream_of_the_main_process(exported):
    _, shards = exported
    in_process = batches(stream(shards.shards("train"), batch_size=3, seed=5, lanes=2))
    assert len(in_process) == 10
    assert batches(stream(shards.shards("train"), batch_size=3, seed=5, num_workers=2)) == in_process


def test_missing_or_damaged_inputs_name_the_file_and_the_fix(exported, tmp_path):
    cache, shards = exported
    with pytest.raises(DatasetError, match=r"nowhere: no index.json.*streaming export"):
        StreamedShards(str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="unknown URL scheme.*s3://"):
        StreamedShards("nosuchscheme://bucket/prefix")
    with pytest.raises(DatasetError, match="not a prepared cache"):
        export_cache(str(tmp_path / "no_cache"), str(tmp_path / "out"))
    with pytest.raises(DatasetError, match="no shard of split 'dev'"):
        shards.shards("dev")
    first, second = (s.url.removeprefix("file://") for s in shards.shards("train")[:2])
    with open(first, "r+b") as handle:
        handle.truncate(2000)  # inside the second member
    with pytest.raises(DatasetError, match=r"shard-000000.tar: (damaged|\d+ samples, the index says 3)"):
        list(read_shard(shards.shards("train")[0]))
    os.remove(second)
    with pytest.raises(DatasetError, match=r"shard-000001.tar: shard missing.*rerun the export"):
        batches(stream(shards.shards("train")[1:], shuffle=False, batch_size=3), count=2)


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_a_missing_fsspec_backend_says_what_to_install():
    with pytest.raises(DatasetError, match=r"s3://bucket/stream.*pip install s3fs"):
        StreamedShards("s3://bucket/stream")


# ----------------------------------------------------------------------------- LRW from streamed shards


class TinyVideoModel(L.LightningModule):
    """One weight fitted to the batches' mean pixel; remembers a fingerprint of every batch it trained on."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen = []

    def training_step(self, batch, index):
        assert batch["video"].shape == (2, 8, 3, 64, 64)
        self.seen.append((batch["first_frame"].tolist(), round(batch["audio"].sum().item(), 4)))
        return (self.weight - batch["video"].mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.fixture(scope="module")
def lrw_stream(tmp_path_factory, isolated_data_and_runs):
    from datamodules.lrw import LRWDataModule
    from datamodules.synthetic import generate_dataset

    folder = tmp_path_factory.mktemp("lrw_stream")
    root = generate_dataset("lrw", folder / "lrw", size="tiny")
    options = dict(
        image_size=64, sample_rate=8000, window_frames=8, batch_size=2, eval_batch_size=2, num_workers=0
    )
    local = LRWDataModule(root=str(root), cache_dir=str(folder / "cache"), prepare_workers=0, **options)
    local.prepare_data()
    local.setup("fit")
    export_cache(str(local.cache().directory), f"file://{folder / 'stream'}", shard_mb=0.3, progress=False)
    return local, f"file://{folder / 'stream'}", options


def test_lrw_streamed_items_equal_the_local_caches(lrw_stream):
    from datamodules.lrw import LRWDataModule

    local, url, options = lrw_stream
    streamed = LRWDataModule(stream_url=url, **options)  # no root: nothing local is read
    streamed.prepare_data()
    streamed.setup("fit")
    for ours, theirs in zip(streamed.test_dataloader(), local.test_dataloader(), strict=True):
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    with pytest.raises(DatasetError, match="evaluation datasets read the local cache"):
        streamed.evaluation_clips("test")
    with pytest.raises(DatasetError, match="image_size: streamed 64 vs asked 32"):
        LRWDataModule(stream_url=url, **{**options, "image_size": 32}).setup("fit")


def _fit(url, options, max_steps, checkpoint=None, callbacks=()):
    from datamodules.lrw import LRWDataModule

    L.seed_everything(7)
    datamodule, model = LRWDataModule(stream_url=url, **options), TinyVideoModel()
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=list(callbacks),
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=checkpoint, weights_only=False)
    assert isinstance(trainer.train_dataloader, StreamingLoader) and trainer.global_step == max_steps
    return model.seen


def test_lrw_trains_from_streamed_shards_and_resumes_mid_epoch_with_the_same_batches(lrw_stream, tmp_path):
    _, url, options = lrw_stream
    # 6 training clips: epochs of 3 batches; saved mid-way through the second epoch.
    uninterrupted = _fit(url, options, max_steps=6, callbacks=[SaveAtStep(4, tmp_path / "mid.ckpt")])
    assert len(uninterrupted) == 6 and len(set(map(str, uninterrupted[:3]))) == 3
    assert uninterrupted[:3] != uninterrupted[3:]  # a new order in the second epoch, not an empty one
    saved = torch.load(tmp_path / "mid.ckpt", weights_only=False)["loops"]["fit_loop"]["state_dict"][
        "combined_loader"
    ]
    assert saved[0]["consumed"] == 1 and saved[0]["epoch"] == 1
    assert _fit(url, options, max_steps=6, checkpoint=tmp_path / "mid.ckpt") == uninterrupted[4:]
