"""`make prepare` / `python -m experiments.prepare`: parameters from experiments and --set, into --out."""

import errno
import json

import pytest

from experiments.prepare import apply_setting, main
from tests.failing_writes import failing_writes


def test_prepare_writes_the_cache_training_reads(isolated_data_and_runs, tmp_path, capsys):
    from datamodules.synthetic import generate_dataset

    root = generate_dataset("grid", isolated_data_and_runs / "fixtures" / "grid", size="tiny", broken=True)
    out = tmp_path / "cache"
    main(
        [
            "grid",
            "--root",
            str(root),
            "--out",
            str(out),
            "--set",
            "crop.method=box",
            "--set",
            "image_size=32",
            "--set",
            "crop.detect_every=10",
            "--workers",
            "0",
        ]
    )
    (cache,) = out.glob("clips-box-32px-*")
    params = json.loads((cache / "manifest.json").read_text())["params"]
    assert params["image_size"] == 32 and params["crop"]["method"] == "box" and params["root"] == str(root)
    assert (cache / "rejected.csv").read_text().count(
        "\n"
    ) == 3  # header + the truncated and the short-audio clip
    assert "prepared grid" in capsys.readouterr().err


def test_settings_are_nested_and_typed():
    kwargs = {}
    apply_setting(kwargs, "crop.box_scale=1.3")
    apply_setting(kwargs, "fps=25")
    assert kwargs == {"crop": {"box_scale": 1.3}, "fps": 25}


def test_unknown_experiment_is_a_clear_error():
    with pytest.raises(SystemExit, match="unknown experiment .nope.. Known: a2v"):
        main(["grid", "--experiment", "nope"])


def shard_files(folder):
    """Every cached file with its modification time."""
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def test_a_prepared_folder_is_data_that_training_reads_without_preprocessing_again(
    isolated_data_and_runs, tmp_path, monkeypatch
):
    """`make prepare … OUT=X` then `make train DATA=X`: X is recognised by its manifest, training takes the
    dataset root from it and reads X's cache as it is, without a write (X may be a read-only mount)."""
    from datamodules.base import data_root
    from datamodules.pipeline.cache import data_location
    from datamodules.synthetic import generate_dataset
    from experiments.prepare import DATASETS, experiment_data_args, make_datamodule

    root = generate_dataset("grid", isolated_data_and_runs / "fixtures" / "grid", size="tiny", broken=True)
    assert data_location(root) == {"root": str(root)}  # a dataset in its real layout stays one
    out = tmp_path / "prepared (copy)"
    main(["grid", "--root", str(root), "--out", str(out), "--experiment", "tcsan", "--workers", "0"])
    written = shard_files(out)
    assert data_location(out) == {"root": str(root), "prepared_dir": str(out)}
    refused = failing_writes(monkeypatch, out, errno.EROFS)
    class_path = DATASETS["grid"]
    datamodule = make_datamodule(
        class_path, {**experiment_data_args("tcsan", class_path), **data_location(out), "prepare_workers": 0}
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert datamodule.cache().directory.parent == out and len(datamodule.datasets["train"]) > 0
    assert datamodule.cache_root.parent == data_root() / "cache"  # where anything derived would go
    assert refused == [] and shard_files(out) == written  # nothing prepared again
