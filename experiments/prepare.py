"""Preprocess a dataset into its cache ahead of training: `python -m experiments.prepare DATASET --root PATH`.

The cache is the one training reads: the same datamodule, with the same parameters, does the work. Take
the parameters from an experiment (`--experiment e2e_nr` uses that config's `data.init_args`) and adjust
single ones with `--set crop.method=box`. Reruns skip finished shards; unusable files are listed with
their reason in the cache folder's `rejected.csv`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from datamodules.errors import command_errors
from experiments.configs import (
    ExperimentError,
    apply_setting,
    make_datamodule,
    stacked_section,
    stage_configs,
)

DATASETS = {
    "hq_voxceleb": "datamodules.hq_voxceleb.HQVoxCelebDataModule",
    "lrw": "datamodules.lrw.LRWDataModule",
    "grid": "datamodules.grid.GRIDDataModule",
    "tcd_timit": "datamodules.tcd_timit.TCDTIMITDataModule",
    "avspeech": "datamodules.avspeech.AVSpeechDataModule",
    "youtubers": "datamodules.youtubers.YoutubersDataModule",
}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a batch job's share), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def experiment_data_args(experiment: str, class_path: str) -> dict[str, Any]:
    """`data.init_args` of `experiments/<experiment>.yaml` stacked on those it `extends`; the experiment
    must read `class_path`."""
    found, init_args = stacked_section(stage_configs(experiment, demo=False, smoke=False), "data")
    if found != class_path:
        raise ExperimentError(f"experiment {experiment} reads {found}, not {class_path}")
    return init_args


def build_datamodule(args: argparse.Namespace):
    class_path = DATASETS[args.dataset]
    kwargs = experiment_data_args(args.experiment, class_path) if args.experiment else {}
    for setting in args.set:
        apply_setting(kwargs, setting)
    kwargs.update(root=str(args.root) if args.root else None, prepare_workers=args.workers)
    if args.out:
        kwargs["cache_dir"] = str(args.out)
    return make_datamodule(class_path, kwargs)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", choices=sorted(DATASETS), help="which dataset layout ROOT holds")
    parser.add_argument(
        "--root", type=Path, help="dataset folder in its real layout (default: the demo dataset)"
    )
    parser.add_argument(
        "--out", type=Path, help="cache folder (default: data/cache/<dataset>-<hash of root>)"
    )
    parser.add_argument("--experiment", help="take the preprocessing parameters from experiments/<name>.yaml")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one datamodule argument, e.g. image_size=112 or crop.method=box",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=usable_cores(),
        help="preprocessing worker processes, one per clip at a time (default: the usable cores, "
        f"{usable_cores()} here; 0 = in this process)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with command_errors(dataset="ROOT"):
        datamodule = build_datamodule(args)
        started = time.perf_counter()
        datamodule.prepare_data()
    print(
        f"prepared {args.dataset} from {datamodule.root} into {datamodule.cache_root} "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
