"""HQ-VoxCeleb adapter and the voice → face datamodule on the generated fixture (real layout)."""

import csv
import json

import numpy as np
import pytest
import torch

from datamodules.errors import DatasetError
from datamodules.hq_voxceleb import HQVoxCelebDataModule, scan_hq_voxceleb, split_of_row
from datamodules.pipeline.features import LogMelConfig
from tests.batches import first_training_batch


def make_datamodule(root, tmp_path, **overrides):
    args = dict(
        root=str(root),
        cache_dir=str(tmp_path / "cache"),
        batch_size=4,
        eval_batch_size=3,
        num_workers=0,
        prepare_workers=0,
    )
    datamodule = HQVoxCelebDataModule(**{**args, **overrides})
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def test_split_rule_is_the_authors():
    assert [split_of_row(i) for i in range(10)] == ["train"] * 8 + ["test", "val"]


def test_scan_reads_the_layout_and_splits_by_identity(tiny_hq_voxceleb):
    identities = scan_hq_voxceleb(tiny_hq_voxceleb)
    by_split = {s: {i.name for i in identities if i.split == s} for s in ("train", "val", "test")}
    assert by_split["train"].isdisjoint(by_split["val"]) and by_split["train"].isdisjoint(by_split["test"])
    assert len(by_split["val"]) >= 2 and len(by_split["test"]) >= 2
    assert all(p.suffix == ".jpg" for i in identities for p in i.faces)  # junk files are not faces


def test_split_json_overrides_the_row_rule(tiny_hq_voxceleb, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_hq_voxceleb, root)
    names = [i.name.split("/", 1)[1] for i in scan_hq_voxceleb(root)]
    (root / "split.json").write_text(
        json.dumps({"vox1": {"train": names[:-2], "val": [names[-2]], "test": [names[-1]]}})
    )
    splits = {i.name: i.split for i in scan_hq_voxceleb(root)}
    assert splits[f"vox1/{names[-1]}"] == "test" and list(splits.values()).count("val") == 1


def test_missing_root_and_empty_root_name_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        scan_hq_voxceleb(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no identity"):
        scan_hq_voxceleb(tmp_path / "empty")


def test_broken_files_are_rejected_with_reasons(tiny_hq_voxceleb, tmp_path):
    datamodule = make_datamodule(tiny_hq_voxceleb, tmp_path)
    rejected = []
    for path in (tmp_path / "cache").glob("*/rejected.csv"):
        rejected += list(csv.DictReader(open(path)))
    reasons = {row["path"].rsplit("/", 1)[-1]: row["reason"] for row in rejected}
    broken = json.loads((tiny_hq_voxceleb / ".synthetic.json").read_text())["broken"]
    for entry in broken:
        name = entry["path"].rsplit("/", 1)[-1]
        if entry["defect"] == "junk_file":
            assert name not in reasons  # never even read: not a face image
        elif entry["defect"] != "no_face_image":  # aligned crops are not face-detected for SF2F
            assert name in reasons, f"{entry} was not rejected"
    assert any("speech" in r for r in reasons.values())
    assert len(datamodule.corpora["train"].usable) == datamodule.num_identities


def test_training_batches(tiny_hq_voxceleb, tmp_path):
    datamodule = make_datamodule(tiny_hq_voxceleb, tmp_path)
    batch = first_training_batch(datamodule)
    assert batch["face"].shape == (4, 3, 64, 64) and batch["face"].dtype == torch.float32
    assert batch["mel"].shape[:2] == (4, 40) and 100 <= batch["mel"].shape[2] <= 150
    assert batch["identity"].dtype == torch.int64
    assert int(batch["identity"].max()) < datamodule.num_identities
    # ImageNet-normalised faces: a white background maps to about (1 - 0.45) / 0.225 ≈ 2.2
    assert -2.2 < float(batch["face"].min()) and float(batch["face"].max()) < 2.7
    assert np.isfinite(batch["mel"].numpy()).all()


def test_fuser_windows(tiny_hq_voxceleb, tmp_path):
    datamodule = make_datamodule(tiny_hq_voxceleb, tmp_path, segments=5)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["mels"].shape == (4, 5, 40, 125) and "mel" not in batch


def test_training_draws_follow_the_loader_seed_not_numpy_global_state(tiny_hq_voxceleb, tmp_path):
    """Loader batches are a function of the loader's seed (torch's initial seed by default): numpy's global
    RNG, which DataLoader workers do not reseed and the resumable loader does not control, plays no part."""
    datamodule = make_datamodule(tiny_hq_voxceleb, tmp_path, segments=5, window_frames=20)
    corpus = datamodule.train_dataloader().dataset.corpus
    assert max(len(rows) for rows in corpus.mel_rows) > 1  # the utterance order matters

    def first_batches(numpy_seed):
        np.random.seed(numpy_seed)
        np.random.rand(numpy_seed)
        torch.manual_seed(0)  # the loader's seed defaults to torch's initial seed
        return [batch["mels"] for batch, _ in zip(datamodule.train_dataloader(), range(2))]

    assert all(torch.equal(a, b) for a, b in zip(first_batches(0), first_batches(1)))
    torch.manual_seed(1)
    other = [batch["mels"] for batch, _ in zip(datamodule.train_dataloader(), range(2))]
    assert not all(torch.equal(a, b) for a, b in zip(first_batches(0), other))


def test_evaluation_batches_are_deterministic(tiny_hq_voxceleb, tmp_path):
    datamodule = make_datamodule(tiny_hq_voxceleb, tmp_path, eval_frames=300)
    first, second = (next(iter(datamodule.val_dataloader())) for _ in range(2))
    assert torch.equal(first["mel"], second["mel"]) and first["mel"].shape[1:] == (40, 300)
    assert first["faces"].shape[:2] == first["face_mask"].shape
    assert first["face_mask"].sum(1).min() >= 1


def test_evaluation_runs_draw_one_random_clip_per_identity_and_run(tiny_hq_voxceleb, tmp_path):
    """The paper's protocol: each evaluation run scores one random clip of each test identity."""
    datamodule = make_datamodule(tiny_hq_voxceleb, tmp_path, eval_frames=50)
    runs = [next(iter(datamodule.random_clip_test_loader(run)))["mel"] for run in (0, 0, 1)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])  # seeded per run
    assert runs[0].shape[1:] == (40, 50)
    fixed = next(iter(datamodule.test_dataloader()))["mel"]  # validation/test steps keep the first frames
    assert torch.equal(fixed, next(iter(datamodule.test_dataloader()))["mel"]) and not torch.equal(
        fixed, runs[2]
    )


def test_cache_is_reused_and_guarded(tiny_hq_voxceleb, tmp_path):
    make_datamodule(tiny_hq_voxceleb, tmp_path)
    shard = next((tmp_path / "cache").glob("logmel-*/shard-00000.json"))
    stamp = shard.stat().st_mtime_ns
    make_datamodule(tiny_hq_voxceleb, tmp_path)
    assert shard.stat().st_mtime_ns == stamp  # second preparation skipped finished shards
    assert (tmp_path / "cache" / "faces-128px").exists() is False
    make_datamodule(tiny_hq_voxceleb, tmp_path, image_size=128)
    assert (tmp_path / "cache" / "faces-128px").exists()


def test_batch_larger_than_identities_is_a_clear_error(tiny_hq_voxceleb, tmp_path):
    with pytest.raises(DatasetError, match="batch_size"):
        make_datamodule(tiny_hq_voxceleb, tmp_path, batch_size=512)


def test_log_mel_cache_matches_direct_features(tiny_hq_voxceleb, tmp_path):
    from datamodules.pipeline.audio import read_audio, voiced_audio
    from datamodules.pipeline.features import log_mel

    datamodule = make_datamodule(tiny_hq_voxceleb, tmp_path)
    corpus = datamodule.corpora["train"]
    row = corpus.mel_rows[corpus.usable[0]][0]
    path = corpus._mels.metas[row]["path"]
    direct = log_mel(voiced_audio(read_audio(path, 16000), 16000), LogMelConfig())
    np.testing.assert_allclose(corpus.mel(row), direct, atol=5e-3)  # float16 storage
