"""Data-loading throughput: samples/s read from the preprocessed cache vs. decoded and face-tracked on the
fly.

    python -m benchmarks.data_throughput [--dataset lrw] [--size demo] [--samples 40]

Both paths produce the same training item (a clip's face crops, landmarks and aligned audio). "On the fly"
is what a loader without a cache would do per sample: PyAV decode, audio read and resample, face detection,
landmarks and alignment. The ratio printed is measured in this one run, on this machine, single process.
"""

from __future__ import annotations

import argparse
import time

from datamodules.errors import command_errors

DATASETS = {
    "lrw": ("datamodules.lrw", "LRWDataModule", dict(image_size=128, sample_rate=8000)),
    "grid": ("datamodules.grid", "GRIDDataModule", dict(image_size=112, split="all_test")),
}


def _rate(count: int, seconds: float) -> float:
    return count / max(seconds, 1e-9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.data_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="lrw")
    parser.add_argument("--size", default="demo", help="generated fixture size (demo or tiny)")
    parser.add_argument("--samples", type=int, default=40, help="clips to time on each path")
    args = parser.parse_args(argv)

    import importlib

    from datamodules.talking_face_clips import clip_item

    module, name, kwargs = DATASETS[args.dataset]
    datamodule = getattr(importlib.import_module(module), name)(
        demo_size=args.size, num_workers=0, prepare_workers=2, **kwargs
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    dataset = (
        datamodule.datasets["train"] if len(datamodule.datasets["train"]) else datamodule.datasets["test"]
    )
    count = min(args.samples, len(dataset))

    jobs = datamodule.jobs()  # the preprocessing of one clip, exactly as prepare_data runs it
    usable = {meta["key"] for meta in datamodule.cache().read().metas}
    jobs = [job for job in jobs if job["key"] in usable][:count]
    clip_item(jobs[0])  # load the detector and landmark models outside the timing

    started = time.perf_counter()
    for job in jobs:
        clip_item(job)
    on_the_fly = _rate(len(jobs), time.perf_counter() - started)

    started = time.perf_counter()
    for index in range(count):
        dataset[index]
    cached = _rate(count, time.perf_counter() - started)

    frames = datamodule.cache().read().metas[0]["frames"]
    print(
        f"dataset {args.dataset} ({args.size}), {frames}-frame clips, crop {datamodule.crop_config.method} "
        f"{datamodule.hparams.image_size}px, one process"
    )
    print(f"  on the fly (decode + detect + landmarks + align): {on_the_fly:8.2f} clips/s")
    print(f"  from the cache (mmap shards):                     {cached:8.2f} clips/s")
    print(f"  cache speed-up: {cached / on_the_fly:.0f}x")


if __name__ == "__main__":
    with command_errors():
        main()
