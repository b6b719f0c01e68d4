"""Preprocess a dataset into its cache ahead of training: `python -m datamodules.prepare DATASET --root PATH`.

The cache is the one training reads: the same datamodule, with the same parameters, does the work. Take
the parameters from an experiment (`--experiment e2e_nr` uses that config's `data.init_args`) and adjust
single ones with `--set crop.method=box`. Reruns skip finished shards; unusable files are listed with
their reason in the cache folder's `rejected.csv`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .base import REPO_ROOT
from .pipeline.errors import DatasetError, ProjectError, command_errors

DATASETS = {
    "hq_voxceleb": "datamodules.hq_voxceleb.HQVoxCelebDataModule",
    "lrw": "datamodules.lrw.LRWDataModule",
    "grid": "datamodules.grid.GRIDDataModule",
    "tcd_timit": "datamodules.tcd_timit.TCDTIMITDataModule",
    "avspeech": "datamodules.avspeech.AVSpeechDataModule",
    "youtubers": "datamodules.youtubers.YoutubersDataModule",
}


def load_class(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def experiment_data_args(experiment: str, class_path: str) -> dict[str, Any]:
    """`data.init_args` of `experiments/<experiment>.yaml` stacked on those it `extends`; the experiment
    must read `class_path`."""
    from experiments.train import ExperimentError, lineage

    files = [REPO_ROOT / "experiments" / f"{name}.yaml" for name in lineage(experiment)]
    found, init_args = data_section(files)
    if found != class_path:
        raise ExperimentError(f"experiment {experiment} reads {found}, not {class_path}")
    return init_args


def data_section(config_files: list[str | Path]) -> tuple[str | None, dict[str, Any]]:
    """(class_path, init_args) of the `data` sections of stacked config files, later files overriding
    earlier ones key by key (nested mappings merged), as LightningCLI stacks them."""
    class_path, init_args = None, {}
    for path in config_files:
        section = (yaml.safe_load(Path(path).read_text()) or {}).get("data", {})
        class_path = section.get("class_path", class_path)
        _merge(init_args, section.get("init_args") or {})
    return class_path, init_args


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def apply_setting(kwargs: dict[str, Any], setting: str) -> None:
    """`a.b=value` (value parsed as YAML) into the nested dict `kwargs`."""
    key, sep, value = setting.partition("=")
    if not sep:
        raise ProjectError(f"--set expects KEY=VALUE, got {setting!r}")
    *parents, leaf = key.split(".")
    target = kwargs
    for parent in parents:
        target = target.setdefault(parent, {})
    target[leaf] = yaml.safe_load(value)


def build_datamodule(args: argparse.Namespace):
    class_path = DATASETS[args.dataset]
    kwargs = experiment_data_args(args.experiment, class_path) if args.experiment else {}
    for setting in args.set:
        apply_setting(kwargs, setting)
    kwargs.update(root=str(args.root) if args.root else None, prepare_workers=args.workers)
    if args.out:
        kwargs["cache_dir"] = str(args.out)
    return make_datamodule(class_path, kwargs)


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
            raise DatasetError(f"{manifest}: unreadable cache manifest ({error}). Prepare {folder} again.") from None
    if len(roots) != 1 or None in roots:
        raise DatasetError(f"{folder}: caches prepared from several or unknown dataset roots ({sorted(map(str, roots))}). "
                           "Prepare one dataset per OUT folder.")
    return {"root": str(roots.pop()), "cache_dir": str(folder)}


def make_datamodule(class_path: str, kwargs: dict[str, Any]):
    """Instantiate a datamodule from a config's `class_path` and `init_args` (nested dicts allowed)."""
    return load_class(class_path)(**kwargs)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m datamodules.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(DATASETS), help="which dataset layout ROOT holds")
    parser.add_argument("--root", type=Path, help="dataset folder in its real layout (default: the demo dataset)")
    parser.add_argument("--out", type=Path, help="cache folder (default: data/cache/<dataset>-<hash of root>)")
    parser.add_argument("--experiment", help="take the preprocessing parameters from experiments/<name>.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one datamodule argument, e.g. image_size=112 or crop.method=box")
    parser.add_argument("--workers", type=int, default=2, help="preprocessing worker processes (default 2)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with command_errors():
        datamodule = build_datamodule(args)
        started = time.perf_counter()
        datamodule.prepare_data()
    print(f"prepared {args.dataset} from {datamodule.root} into {datamodule.cache_root} "
          f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
