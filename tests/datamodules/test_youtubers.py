"""Youtubers (Wav2Pix's release layout) on the generated fixture: pairing, identities, colour order,
speech windows, the rejection of broken pairs, and the youtubers held out whole for the open set."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.errors import DatasetError, error_line
from datamodules.face_speech import emphasise
from datamodules.youtubers import OPEN_SET_SPLITS, YoutubersDataModule, scan_youtubers
from tests.batches import first_training_batch

REASONS = {
    "silent_wav": "silent",
    "truncated_image": "cannot read the image",
    "no_face_image": "no face",
    "missing_pair": "is missing",
}


@pytest.fixture(scope="module")
def youtubers(isolated_data_and_runs):
    from datamodules.synthetic import generate_dataset

    root = generate_dataset(
        "youtubers", isolated_data_and_runs / "fixtures" / "youtubers", size="tiny", broken=True
    )
    datamodule = YoutubersDataModule(
        root=str(root), image_size=32, batch_size=4, eval_batch_size=4, num_workers=0, prepare_workers=0
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    return root, datamodule


def test_pairs_match_by_index_and_identities_are_sorted_names(youtubers):
    root, datamodule = youtubers
    pairs = scan_youtubers(root)
    assert all(p["path"].split("_")[-1][:-4] == p["audio"].split("_")[-1][:-4] for p in pairs)
    names = sorted({p["identity"] for p in pairs if p["split"] == "train"})
    assert datamodule.identities == names and datamodule.num_identities == 3


def test_batches_have_faces_wrong_faces_and_one_second_of_speech(youtubers):
    _, datamodule = youtubers
    batch = first_training_batch(datamodule)
    assert batch["face"].shape == batch["wrong_face"].shape == (4, 3, 32, 32)
    assert -1.0 <= batch["face"].min() and batch["face"].max() <= 1.0
    assert batch["audio"].shape == (4, 16000) and batch["audio"].abs().max() <= 1.0 + 1e-6
    assert not (batch["face"] == batch["wrong_face"]).flatten(1).all(1).any()  # a face of another identity
    dataset = datamodule.datasets["train"]
    for index in range(len(dataset)):
        item = dataset[index]
        assert not torch.equal(item["face"], item["wrong_face"])


def test_red_and_blue_are_swapped_back(youtubers):
    root, datamodule = youtubers
    meta, arrays = datamodule.items[0]
    stored = np.asarray(
        Image.open(meta["path"]).convert("RGB").resize((32, 32), Image.BILINEAR), dtype=np.float32
    )
    loaded = arrays["face"][0].transpose(1, 2, 0).astype(np.float32)
    assert np.abs(loaded - stored[..., ::-1]).mean() < np.abs(loaded - stored).mean()


def test_evaluation_windows_are_deterministic(youtubers):
    _, datamodule = youtubers
    dataset = datamodule.datasets["test"]
    assert torch.equal(dataset[0]["audio"], dataset[0]["audio"]) and len(dataset) > 0


def test_broken_pairs_are_rejected_with_their_reason(youtubers):
    root, datamodule = youtubers
    broken = json.loads((root / ".synthetic.json").read_text())["broken"]
    with open(datamodule.cache().directory / "rejected.csv") as handle:
        reasons = [row["reason"] for row in csv.DictReader(handle)]
    for entry in broken:
        if entry["defect"] in REASONS:
            matching = [r for r in reasons if entry["path"].split("/")[-1] in r]
            assert matching and REASONS[entry["defect"]] in matching[0], (entry, reasons)


def test_emphasis_order_is_a_flag_and_the_default_stays_in_range():
    wave = np.random.default_rng(0).normal(size=16000).astype(np.float32)  # broadband, like fricatives
    first = emphasise(wave, 0.95, emphasis_first=True)
    assert np.abs(first).max() == pytest.approx(1.0, abs=1e-6)
    # the authors' order can exceed 1
    assert np.abs(emphasise(wave, 0.95, emphasis_first=False)).max() > 1.0 - 1e-6
    assert not np.allclose(first, emphasise(wave, 0.95, emphasis_first=False))


def test_validation_is_carved_from_training_pairs_never_the_test_ones(youtubers):
    """Checkpoint selection must never see test data: the release has no validation split, so the last
    pairs of each identity's training frames are held out for it."""
    _, datamodule = youtubers
    rows = datamodule._rows
    assert (
        rows["val"] and not set(rows["val"]) & set(rows["test"]) and not set(rows["val"]) & set(rows["train"])
    )
    metas = datamodule.items.metas
    assert {metas[r]["split"] for r in rows["val"]} == {"train"}
    assert {metas[r]["identity"] for r in rows["val"]} <= {metas[r]["identity"] for r in rows["train"]}
    val_faces = {b for batch in datamodule.val_dataloader() for b in batch["face"].flatten(1).sum(1).tolist()}
    test_faces = {
        b for batch in datamodule.test_dataloader() for b in batch["face"].flatten(1).sum(1).tolist()
    }
    assert val_faces and not val_faces & test_faces


def test_held_out_tail_takes_the_last_pairs_of_each_identity():
    from datamodules.youtubers import held_out_tail

    kept, held = held_out_tail(list(range(12)), ["a"] * 10 + ["b"] * 2, 0.1)
    assert held == [9, 11] and kept == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert held_out_tail([0], ["a"], 0.1) == ([0], [])  # a single pair keeps training


def test_the_open_set_holds_the_last_youtubers_out_whole(open_set):
    names = sorted({pair["identity"] for pair in open_set.pairs})
    assert open_set.identities == names[:2] and open_set.open_set_identities == names[2:]
    assert open_set.num_identities == 2  # the classifier knows only the trained youtubers
    metas, rows = open_set.items.metas, open_set._rows
    for split in ("train", "val", "test"):
        assert rows[split] and {metas[r]["identity"] for r in rows[split]} <= set(names[:2]), split
    for split in OPEN_SET_SPLITS:
        assert {metas[r]["identity"] for r in rows[split]} == set(names[2:]), split
        assert {metas[r]["split"] for r in rows[split]} == {split.removeprefix("open_set_")}, split
    assert sorted(r for split_rows in rows.values() for r in split_rows) == list(range(len(metas)))
    wrong_faces = {r for others in open_set.datasets["train"].other_rows.values() for r in others}
    assert wrong_faces <= set(rows["train"])  # nor is a held-out face shown to D as a mismatched one
    queries = open_set.evaluation_dataset("open_set_test")
    speakers = [open_set.open_set_identities[queries[i]["identity"]] for i in range(len(queries))]
    assert speakers == [metas[r]["identity"] for r in rows["open_set_test"]]


def test_no_youtuber_is_held_out_by_default(youtubers):
    _, datamodule = youtubers
    assert datamodule.open_set_identities == [] and datamodule.num_identities == 3
    rows = datamodule._rows
    assert not any(rows[split] for split in OPEN_SET_SPLITS)
    assert sorted(rows["train"] + rows["val"] + rows["test"]) == list(range(len(datamodule.items.metas)))


@pytest.mark.parametrize(
    ("size", "count", "advice"),
    [
        ("tiny_open", 1, "open_set_speakers=N with N from 2 to 2"),
        ("tiny_open", 3, "open_set_speakers=N with N from 2 to 2"),
        ("tiny_open", -1, "open_set_speakers=N with N from 2 to 2"),
        ("tiny", 2, "--data.init_args.demo_size=open"),
    ],
)
def test_an_open_set_that_leaves_too_few_youtubers_is_refused_in_one_line(
    isolated_data_and_runs, size, count, advice
):
    datamodule = YoutubersDataModule(demo_size=size, open_set_speakers=count)
    with pytest.raises(DatasetError) as refused:
        _ = datamodule.num_identities  # read when the model is sized, before any preprocessing
    line = error_line(refused.value)
    assert line.startswith(f"error: open_set_speakers={count}:") and "\n" not in line and advice in line
