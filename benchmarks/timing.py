"""How every benchmark times a piece of work and reads its memory, so their figures compare.

A measurement runs the work a few times untimed (allocator, cuDNN autotuning and lazy initialisation
settle), then times `repeats` calls, waiting for the GPU after each. Peak memory is the CUDA allocator's
peak on a GPU; on a CPU it is the process's peak resident set size, which includes everything loaded
before (run each system in its own process to read it per system: `benchmarks/train_step.py` does).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class Measurement:
    """Seconds per call (median over the timed calls) and peak memory in MiB."""

    seconds: float
    peak_mib: float
    calls: int

    def rate(self, items_per_call: int) -> float:
        return items_per_call / max(self.seconds, 1e-12)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def process_status_kib(field: str) -> int:
    """A field of this process's /proc/self/status in KiB (Linux): `VmRSS` resident now, `VmHWM` its peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure(work: Callable[[], Any], device: torch.device, repeats: int = 5, warmup: int = 2) -> Measurement:
    """Time `work()`: `warmup` untimed calls, then the median of `repeats` timed ones."""
    for _ in range(warmup):
        work()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        synchronize(device)
        durations.append(time.perf_counter() - started)
    return Measurement(statistics.median(durations), peak_memory_mib(device), repeats)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table of `rows` (dicts) in the given column order; floats to 3 significant figures."""

    def cell(value: Any) -> str:
        if isinstance(value, float) and value != value:  # NaN: not measurable here
            return "—"
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def in_own_process(module: str, name: str, systems: list[str], argv: list[str]) -> Any:
    """`python -m <module> --one --systems <name>` with the rest of `argv` (the other `systems` left out):
    one process per system, so no system's memory or state is counted in another's. Returns the JSON of
    its last line; exits naming the system when it fails."""
    others = [a for a in argv if a not in systems and a != "--systems"]
    result = subprocess.run(
        [sys.executable, "-m", module, "--one", "--systems", name, *others], capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
