"""Start-up of a training run over a large prepared cache: seconds and memory until the first batch.

    python -m benchmarks.index_startup [--items 500000] [--folder /tmp/index] [--repeats 2]

Writes a complete clip cache of `--items` LRW-like clips as `make prepare` leaves it for E2E-NR
(`manifest.json`, `shard-XXXXX.json` per 32 clips, `shard-XXXXX.<key>.npy`, `scan.json`): every shard
holds the real metadata (key, speaker, split, path, fps, frames) and array files of the real shapes (29
frames of 128-px crops, 8 kHz audio, landmarks, detection flags), but the arrays hold no data: one sparse
file per array name, hard-linked into every shard. 500,000 clips take about 130 MB and 20 s to write.

Then, in a fresh process per repeat, builds the LRW datamodule over it (`cache_dir` = that folder; the
dataset root does not exist, so nothing may scan it), runs `setup("fit")`, builds the training loader,
fetches one batch, and prints the seconds taken and how far the process's peak resident memory rose above
what it held after importing torch and the datamodules.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.timing import process_status_kib
from datamodules.talking_face import SCAN_RECORD

LRW_WORDS = 500
CLIP_FRAMES = 29
SHARD_SIZE = 32  # TalkingFaceDataModule.prepare_data's shard size
E2E_NR_DATA = dict(image_size=128, sample_rate=8000, window_frames=29)
FAKE_ROOT = "/nonexistent/lrw"  # never read: the index alone must be enough
OPEN_FILES = 1024


def _datamodule(folder: Path, batch_size: int = 8, num_workers: int = 0):
    from datamodules.lrw import LRWDataModule

    return LRWDataModule(
        root=FAKE_ROOT, cache_dir=str(folder), batch_size=batch_size, num_workers=num_workers, **E2E_NR_DATA
    )


def _split_of(index: int) -> str:
    """LRW's proportions: about 1000 training clips per word and 50 each for validation and test."""
    slot = index % 22
    return "val" if slot == 20 else "test" if slot == 21 else "train"


def _metas(start: int, stop: int, per_word: int, root: str) -> list[dict]:
    metas = []
    for index in range(start, stop):
        word = f"WORD{index // per_word:03d}"
        split = _split_of(index)
        name = f"{word}_{index % per_word + 1:05d}"
        metas.append(
            {
                "key": f"{word}/{split}/{name}",
                "speaker": "",
                "split": split,
                "path": f"{root}/lipread_mp4/{word}/{split}/{name}.mp4",
                "fps": "25",
                "frames": CLIP_FRAMES,
            }
        )
    return metas


def _placeholder(path: Path, shape: tuple[int, ...], dtype) -> None:
    """A valid .npy file of `shape` whose data is a hole (sparse): it reads as zeros and takes no disk."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    array.flush()
    del array


def write_index(folder: Path, items: int) -> Path:
    """Write a complete `items`-clip cache for `_datamodule(folder)` and return its cache directory."""
    cache = _datamodule(folder).cache()  # writes manifest.json with the datamodule's own parameters
    directory = cache.directory
    size = E2E_NR_DATA["image_size"]
    samples = CLIP_FRAMES * E2E_NR_DATA["sample_rate"] // 25
    shapes = {
        "audio": ((SHARD_SIZE * samples,), np.float32),
        "detected": ((SHARD_SIZE * CLIP_FRAMES,), np.bool_),
        "frames": ((SHARD_SIZE * CLIP_FRAMES, size, size, 3), np.uint8),
        "landmarks": ((SHARD_SIZE * CLIP_FRAMES, 68, 2), np.float32),
    }
    sources = {}
    for key, (shape, dtype) in shapes.items():
        sources[key] = directory / f".placeholder.{key}.npy"
        _placeholder(sources[key], shape, dtype)
    per_clip = {"audio": samples, "detected": CLIP_FRAMES, "frames": CLIP_FRAMES, "landmarks": CLIP_FRAMES}
    offsets = {key: [step * i for i in range(SHARD_SIZE + 1)] for key, step in per_clip.items()}
    per_word = max(1, items // LRW_WORDS)
    for shard, start in enumerate(range(0, items, SHARD_SIZE)):
        metas = _metas(start, min(start + SHARD_SIZE, items), per_word, FAKE_ROOT)
        count = len(metas)
        for key, source in sources.items():
            os.link(source, cache.shard_path(shard, f".{key}.npy"))
        shard_offsets = {key: values[: count + 1] for key, values in offsets.items()}
        index = {"items": metas, "offsets": shard_offsets, "rejected": []}
        # The layout `ShardedCache.write_shard` writes, without its fsync per file (nothing here is precious).
        cache.shard_path(shard, ".json").write_text(json.dumps(index, indent=1, sort_keys=True))
    clips = {split: sum(_split_of(i) == split for i in range(items)) for split in ("train", "val", "test")}
    record = {"clips": clips, "speakers": {split: [] for split in clips}}  # LRW names no speakers
    (directory / SCAN_RECORD).write_text(json.dumps(record))
    return directory


MEASURE = """
import json, sys
from benchmarks.index_startup import measure_in_process
print(json.dumps(measure_in_process(sys.argv[1], int(sys.argv[2]))))
"""


def measure_in_process(folder: str, workers: int) -> dict:
    """Seconds and peak-RSS growth (MiB) of setup + training loader + first batch, in this process."""
    import time

    import torch  # noqa: F401 - imported before the baseline, as any training process has it

    import datamodules.lrw  # noqa: F401

    try:  # restart the peak count here (Linux ≥ 4.0), so an earlier peak (the imports') cannot count
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    # The usual default limit of open files: a reader that kept a descriptor per shard array would fail.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, OPEN_FILES), hard))
    baseline = process_status_kib("VmRSS")
    started = time.perf_counter()
    datamodule = _datamodule(Path(folder), num_workers=workers)
    datamodule.setup("fit")
    after_setup = time.perf_counter()
    loader = datamodule.train_dataloader()
    batch = next(iter(loader))
    finished = time.perf_counter()
    return {
        "items": len(datamodule._items),
        "train_items": len(datamodule.datasets["train"]),
        "batch_video": list(batch["video"].shape),
        "root_scanned": "clips" in datamodule.__dict__,
        "setup_s": after_setup - started,
        "total_s": finished - started,
        "peak_growth_mib": (process_status_kib("VmHWM") - baseline) / 1024,
        "baseline_mib": baseline / 1024,
    }


def measure(folder: Path, workers: int = 0) -> dict:
    """`measure_in_process` in a fresh interpreter (a clean memory baseline)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(folder), str(workers)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"the start-up measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.index_startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--items", type=int, default=500_000, help="clips in the generated index")
    parser.add_argument("--folder", type=Path, help="where to write it (default: a temporary folder)")
    parser.add_argument("--workers", type=int, default=0, help="training loader workers")
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes to time")
    args = parser.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="index-startup-"))
    try:
        import time

        started = time.perf_counter()
        write_index(folder, args.items)
        print(f"wrote a {args.items:,}-clip index in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for _ in range(args.repeats):
            result = measure(folder, args.workers)
            print(
                f"{result['items']:,} clips ({result['train_items']:,} training): setup "
                f"{result['setup_s']:.2f} s, with the training loader and its first batch "
                f"{result['total_s']:.2f} s; peak resident memory +{result['peak_growth_mib']:.0f} MiB "
                f"(over {result['baseline_mib']:.0f} MiB after the imports)"
            )
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
