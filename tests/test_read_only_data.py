"""DATA is only read: a prepared cache on a read-only mount trains and evaluates without a single write into
it, and whatever must be derived from it goes to a folder of the project's own cache, keyed by it."""

import csv
import errno
import shutil

import lightning as L
import pytest
import torch

from datamodules.base import data_root
from datamodules.errors import DatasetError
from datamodules.pipeline.cache import REJECTED_LIST, data_location
from experiments.prepare import DATASETS, main, make_datamodule
from lightning_modules.sf2f.module import SF2FModule
from tests.failing_writes import failing_writes

LOADING = {"batch_size": 4, "eval_batch_size": 4, "num_workers": 0, "prepare_workers": 0}


@pytest.fixture(scope="module")
def prepared(tiny_hq_voxceleb, tmp_path_factory):
    """`make prepare OUT=…` of the tiny HQ-VoxCeleb fixture (broken files included), from a read-only root."""
    out = tmp_path_factory.mktemp("prepared") / "hq_voxceleb"
    with pytest.MonkeyPatch.context() as patch:
        refused = failing_writes(patch, tiny_hq_voxceleb, errno.EROFS)
        main(["hq_voxceleb", "--root", str(tiny_hq_voxceleb), "--out", str(out), "--workers", "0"])
    assert refused == []
    return out


def read_only_copy(prepared, tmp_path, monkeypatch, change=lambda folder: None):
    """A copy of the prepared folder, changed by `change`, then mounted read-only; → (folder, refused)."""
    folder = tmp_path / "shared" / "hq_voxceleb"
    shutil.copytree(prepared, folder)
    change(folder)
    return folder, failing_writes(monkeypatch, folder, errno.EROFS)


def datamodule_of(data):
    return make_datamodule(DATASETS["hq_voxceleb"], {**data_location(data), **LOADING})


def test_a_read_only_prepared_cache_trains_and_evaluates_without_a_write(prepared, tmp_path, monkeypatch):
    folder, refused = read_only_copy(prepared, tmp_path, monkeypatch)
    datamodule = datamodule_of(folder)
    torch.manual_seed(0)
    module = SF2FModule(
        width_scale=0.25,
        perceptual_weight=100.0,
        allow_random_facenet=True,
        embedder="dlib",
        num_identities=datamodule.num_identities,
    )
    trainer = L.Trainer(
        fast_dev_run=True,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path / "run",
    )
    trainer.fit(module, datamodule)
    trained = dict(trainer.callback_metrics)
    (results,) = trainer.test(module, datamodule)
    assert refused == []
    assert torch.isfinite(trained["train/g_loss"])
    assert results and all(torch.isfinite(torch.tensor(value)) for value in results.values())


def test_what_a_read_only_cache_lacks_is_derived_into_the_projects_cache(prepared, tmp_path, monkeypatch):
    """A prepared folder whose rejected lists were lost: the lists are written again, under data/cache in a
    folder keyed by the prepared folder (another prepared folder gets another one)."""

    def lose_rejected_lists(folder):
        for rejected in folder.glob(f"*/{REJECTED_LIST}"):
            rejected.unlink()

    folder, refused = read_only_copy(prepared, tmp_path, monkeypatch, lose_rejected_lists)
    datamodule = datamodule_of(folder)
    datamodule.prepare_data()
    assert refused == [] and not list(folder.glob(f"*/{REJECTED_LIST}"))
    assert datamodule.cache_root.parent == data_root() / "cache"
    derived = sorted(datamodule.cache_root.glob(f"*/{REJECTED_LIST}"))
    originals = sorted(prepared.glob(f"*/{REJECTED_LIST}"))
    assert [path.parent.name for path in derived] == [path.parent.name for path in originals]
    assert [path.read_text() for path in derived] == [path.read_text() for path in originals]
    assert any(len(list(csv.DictReader(path.open()))) > 0 for path in derived)  # the broken files
    assert datamodule_of(prepared).cache_root != datamodule.cache_root


def test_an_incomplete_read_only_cache_is_a_clear_error_not_a_write(prepared, tmp_path, monkeypatch):
    def lose_a_shard(folder):
        (folder / "faces-64px" / "shard-00000.json").unlink()

    folder, refused = read_only_copy(prepared, tmp_path, monkeypatch, lose_a_shard)
    with pytest.raises(DatasetError, match=r"faces-64px/shard-00000.json: missing.*only read"):
        datamodule_of(folder).prepare_data()
    assert refused == []
