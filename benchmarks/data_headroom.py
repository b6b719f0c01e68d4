"""Can the training loaders keep a GPU busy? Each loader's samples/s per CPU core against the model's demand.

    python -m benchmarks.data_headroom [--systems sf2f …] [--cores 8] [--peak-tflops 989] [--mfu 0.2]
        [--model-rates train_step.json] [--seconds 8]

Per system, on the generated tiny fixture prepared at the paper's resolution:

- loader: the experiment's own training loader (`ResumableLoader`; each batch made in one call by the
  dataset's `load_batch`) at the paper's batch size, over the fixture's training items cycled to fill
  the batches, with 1 and then 2 worker processes, timed for `--seconds` after its first batch (worker
  start-up excluded). Per core: samples per CPU-second of the main process and its workers together,
  the costlier of the two runs (CPU time, unlike wall time, does not depend on what else the machine runs).
- demand: the samples/s the accelerator would consume, peak × MFU / FLOP per sample (default: an H100's
  989 dense bf16 TFLOP/s at 20 % MFU). FLOP per sample are counted here (`torch.utils.flop_counter`, one
  training step of the paper's model on the CPU), or read from `--model-rates`.
- headroom at N cores: per-core rate × N / demand; the target is ≥ 1.5 at 8 cores.
- each system runs in its own process, so no system's memory is counted in another's workers.
- device transforms: the datamodule's `finish_batch` (what `on_after_batch_transfer` runs on the device),
  timed on the CPU per sample, as a share of the model's CPU training step per sample (target ≤ 5 %).
- worker memory: one worker's resident set, split into its own (anonymous) memory and the file-backed
  pages of the memory-mapped caches, which every worker and process shares through the page cache.
- `--model-rates` rows measured on a GPU (`make gpu-check` writes them) add that measured model rate and
  the headroom against it.

A2V is left out: its loader reads the GAN-inversion cache, which needs the StyleGAN3 weights; its items
are cached codes and features, sliced as the others are.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset

from benchmarks.systems import SYSTEMS, build
from benchmarks.timing import in_own_process, table
from datamodules.errors import command_errors
from datamodules.resumable import ResumableLoader

SYSTEMS_WITH_DATA = [name for name in SYSTEMS if name != "a2v"]
H100_BF16_DENSE_TFLOPS = 989.0
WORKER_COUNTS = (1, 2)


class Cycled(Dataset):
    """`dataset`'s training items repeated to `length`: the fixture holds fewer than a paper batch."""

    def __init__(self, dataset, length: int):
        self.dataset, self.length = dataset, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return self.dataset[index % len(self.dataset)]


class CycledBatches(Cycled):
    """`Cycled` for a dataset that makes whole batches (`load_batch`)."""

    def load_batch(self, indices, draws):
        return self.dataset.load_batch([index % len(self.dataset) for index in indices], draws)


def loader_rate(
    dataset, collate, batch_size: int, workers: int, seconds: float
) -> tuple[float, float, dict, dict]:
    """(samples/s, samples per CPU-second, one compact batch, one worker's memory in MiB) of a training
    loader over `dataset`. CPU seconds are the main process's and its workers' together, over the timed
    batches: what the loading costs in cores, whatever the machine's other load."""
    cycled = (CycledBatches if hasattr(dataset, "load_batch") else Cycled)(dataset, batch_size * 64)
    loader = ResumableLoader(cycled, batch_size, collate, seed=0, num_workers=workers)
    count, started, first, memory = 0, None, None, {}
    while started is None or time.perf_counter() - started < seconds:
        for batch in loader:
            if started is None:  # the first batch pays for starting the workers
                started, first, cpu_started = time.perf_counter(), batch, cpu_seconds()
                continue
            count += batch_size
            if time.perf_counter() - started >= seconds:
                break
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    if workers:
        memory = worker_memory()
    del loader
    return count / elapsed, count / cpu, first, memory


def _children() -> list[int]:
    return [
        int(pid) for path in Path("/proc/self/task").glob("*/children") for pid in path.read_text().split()
    ]


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its live children (`/proc/<pid>/stat`)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = time.process_time()
    for pid in _children():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def worker_memory() -> dict[str, float]:
    """The first worker's memory in MiB (`/proc/<pid>/smaps_rollup`): resident (which counts the pages it
    shares with the process that forked it), private (what the worker adds), and file-backed (the
    memory-mapped caches, shared with every other reader through the page cache)."""
    children = _children()
    if not children:
        return {}
    fields = {}
    for line in Path(f"/proc/{children[0]}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0]) / 1024
    status = Path(f"/proc/{children[0]}/status").read_text()
    file_backed = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("RssFile"))
    private = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"rss": fields["Rss"], "private": private, "file": file_backed / 1024}


def finish_seconds(datamodule, compact: dict, repeats: int = 5) -> float:
    """Median seconds of `finish_batch` on the CPU for one compact batch (0 for a datamodule without)."""
    if not hasattr(datamodule, "finish_batch"):
        return 0.0
    copies = [{key: value.clone() for key, value in compact.items()} for _ in range(repeats + 1)]
    times = []
    for batch in copies:
        started = time.perf_counter()
        datamodule.finish_batch(batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def model_cost(module, batch: dict) -> tuple[float, float]:
    """(GFLOP per sample, CPU seconds per sample) of one training step of the paper's model."""
    from benchmarks import train_step

    optimizers = train_step.optimisers(module)
    size = len(next(v for v in batch.values() if torch.is_tensor(v)))
    flops = train_step.flops_per_step(module, batch, optimizers)  # also warms the step up
    started = time.perf_counter()
    train_step.plain_step(module, batch, optimizers, train_step.nullcontext)
    return flops / size / 1e9, (time.perf_counter() - started) / size


def measured_rates(path: Path | None) -> dict[str, dict]:
    """The fastest `benchmarks.train_step --json` row per system."""
    rows = json.loads(path.read_text()) if path else []
    best: dict[str, dict] = {}
    for row in rows:
        if row["system"] not in best or row["samples/s"] > best[row["system"]]["samples/s"]:
            best[row["system"]] = row
    return best


def measure(name: str, args: argparse.Namespace, measured: dict | None) -> dict:
    module, batch, system, datamodule = build(name, device="cpu")
    training = datamodule.train_dataloader()  # its dataset and collation (used when not batched)
    dataset, collate = training.dataset, training.loader.dataset.collate
    rates, per_cpu, compact, memory = {}, {}, None, {}
    for workers in WORKER_COUNTS:
        rates[workers], per_cpu[workers], first, used = loader_rate(
            dataset, collate, system.batch_size, workers, args.seconds
        )
        compact, memory = compact or first, memory or used
    gflop, step_seconds = model_cost(module, batch)
    demand = args.peak_tflops * 1e12 * args.mfu / (gflop * 1e9)
    per_core = min(per_cpu.values())  # the costlier of the two: a conservative per-core rate
    row = {
        "system": name,
        "batch": system.batch_size,
        "GFLOP/sample": gflop,
        "samples/s 1 worker": rates[1],
        "samples/s 2 workers": rates[2],
        "samples/CPU-s": per_core,
        "demand samples/s": demand,
        f"headroom at {args.cores} cores": per_core * args.cores / demand,
        "transforms / step": finish_seconds(datamodule, compact) / system.batch_size / step_seconds,
        "worker RSS MiB": memory.get("rss", float("nan")),
        "worker private MiB": memory.get("private", float("nan")),
        "worker cache-mapped MiB": memory.get("file", float("nan")),
    }
    if measured is not None:
        row["measured model samples/s"] = measured["samples/s"]
        row[f"measured headroom at {args.cores} cores"] = per_core * args.cores / measured["samples/s"]
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.data_headroom",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS_WITH_DATA, default=SYSTEMS_WITH_DATA)
    parser.add_argument("--cores", type=int, default=8, help="CPU cores the GPU's loaders get")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS, help="device peak")
    parser.add_argument("--mfu", type=float, default=0.2, help="model FLOP utilisation of that peak")
    parser.add_argument("--model-rates", type=Path, help="rows of `benchmarks.train_step --json` on a GPU")
    parser.add_argument("--seconds", type=float, default=8.0, help="loader timing per worker count")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # one system, rows as json
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.one:
        name = args.systems[0]
        print(json.dumps(measure(name, args, measured_rates(args.model_rates).get(name))))
        return
    rows = [in_own_process("benchmarks.data_headroom", name, args.systems, argv) for name in args.systems]
    print(
        f"Training loaders vs the model's demand at {args.peak_tflops:g} TFLOP/s × {args.mfu:.0%} MFU; "
        f"targets: headroom >= 1.5 at {args.cores} cores, transforms <= 5 % of a step"
    )
    print(table(rows, list(dict.fromkeys(key for row in rows for key in row))))


if __name__ == "__main__":
    with command_errors():
        main()
