"""Every GPU figure in one prepared run: `make gpu-check` (≈ 8 min on one H100/H200-class GPU).

    python -m benchmarks.gpu_check [--out runs/gpu-check] [--dry-run] [--parts train data inference proof]

GPU time comes in minutes, and starting a machine costs some of them, so one command measures everything
and writes `report.md` and `report.json` into `--out`:

- per system, the training step at the paper's batch and resolution (`benchmarks.train_step`): fp32 and
  bf16-mixed (speed ratio, loss drift over the first 20 updates from the same weights and random
  numbers), then channels-last, then `torch.compile` (first step = compile time, then steady speed),
  with peak memory, MFU and Lightning's overhead;
- the data headroom of the training loaders against those model rates (`benchmarks.data_headroom`);
- inference real-time factor of E2E-NR and TCSAN (`benchmarks.inference`);
- one learning proof (`tests/learning/test_sf2f.py`, at the demo's width), with its wall time.

Each part runs in its own process under its own time budget; a part that fails or runs out of time is
reported with its error and the rest go on. `--dry-run` runs every part for one step on the CPU, with tiny
batches and no compile or learning proof, to check the script before GPU minutes are spent on it
(`make test` runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.systems import SYSTEMS
from datamodules.errors import command_errors
from datamodules.pipeline.files import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
PARTS = ("train", "data", "inference", "proof")


@dataclass
class Part:
    """One measurement: a command, its time budget, and (after running) what came back."""

    name: str
    command: list[str]
    budget_s: float
    status: str = "not run"  # ok | failed | timed out
    seconds: float = 0.0
    rows: list = field(default_factory=list)  # train_step's JSON rows
    output: str = ""  # the tail of stdout (tables) or of stderr (errors)


def train_parts(device: str, dry_run: bool) -> list[Part]:
    """Per system: precision (fp32 vs bf16 with drift), channels-last, compile; tiny and fp32 only when
    dry."""
    common = [sys.executable, "-m", "benchmarks.train_step", "--one", "--device", device]
    if dry_run:
        variants = {"fp32": ["--batch", "2", "--repeats", "1", "--warmup", "0", "--precision", "32-true"]}
    else:
        variants = {
            "fp32 vs bf16": ["--precision", "32-true", "bf16-mixed", "--loss-steps", "20"],
            "channels-last": ["--precision", "bf16-mixed", "--channels-last", "--loss-steps", "1"],
            "compile": ["--precision", "bf16-mixed", "--compile", "--loss-steps", "1", "--warmup", "1"],
        }
    # A dry run checks the script, not the speed: its budget only stops a part that hangs on a loaded CPU.
    return [
        Part(f"train {name} ({variant})", [*common, "--systems", name, *flags], 600 if dry_run else 120)
        for name in SYSTEMS
        for variant, flags in variants.items()
    ]


def other_parts(out: Path, dry_run: bool) -> list[Part]:
    python = sys.executable
    rates = out / "train_step.json"
    return [
        # A dry run checks the part on one system's loader (every loader is exercised by the datamodule
        # tests).
        Part(
            "data headroom",
            [
                python,
                "-m",
                "benchmarks.data_headroom",
                "--model-rates",
                str(rates),
                *(["--seconds", "0.5", "--systems", "sf2f"] if dry_run else ["--seconds", "8"]),
            ],
            600 if dry_run else 240,
        ),
        Part(
            "inference",
            [
                python,
                "-m",
                "benchmarks.inference",
                "--systems",
                "e2e_nr",
                "tcsan",
                "--seconds",
                "0.5" if dry_run else "10",
                "--threads",
                str(os.cpu_count() or 1),
            ],
            600 if dry_run else 180,
        ),
        Part(
            "learning proof (SF2F)",
            [
                python,
                "-m",
                "pytest",
                "-q",
                "-m",
                "slow",
                "-p",
                "no:cacheprovider",
                "tests/learning/test_sf2f.py",
            ],
            600,
        ),
    ]


def run(part: Part) -> Part:
    started = time.monotonic()
    try:
        result = subprocess.run(part.command, cwd=REPO, capture_output=True, text=True, timeout=part.budget_s)
    except subprocess.TimeoutExpired as expired:
        part.status, part.output = (
            "timed out",
            f"over its {part.budget_s:.0f} s budget\n{_tail(expired.stdout)}",
        )
    else:
        part.status = "ok" if result.returncode == 0 else "failed"
        part.output = _tail(result.stdout if result.returncode == 0 else result.stderr)
        if part.status == "ok" and "--one" in part.command:
            part.rows = json.loads(result.stdout.strip().splitlines()[-1])
    part.seconds = time.monotonic() - started
    print(f"[gpu-check] {part.name}: {part.status} in {part.seconds:.0f} s", file=sys.stderr)
    return part


def _tail(text: str | bytes | None, lines: int = 25) -> str:
    text = text.decode(errors="replace") if isinstance(text, bytes) else (text or "")
    return "\n".join(text.strip().splitlines()[-lines:])


def environment(device: str) -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "cpu cores": os.cpu_count(),
        "host": platform.node(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info.update(
            gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda, driver=_nvidia_smi("driver_version")
        )
    return info


def _nvidia_smi(query: str) -> str:
    try:
        return subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def write_report(out: Path, parts: list[Part], info: dict, dry_run: bool) -> Path:
    from benchmarks.timing import table
    from benchmarks.train_step import COLUMNS

    rows = [row | {"variant": part.name.split("(")[-1].rstrip(")")} for part in parts for row in part.rows]
    lines = [
        f"# GPU check{' (dry run: one step each, on the CPU)' if dry_run else ''}",
        "",
        ", ".join(f"{key} {value}" for key, value in info.items()),
        "",
        "| part | status | seconds |",
        "|---|---|---|",
    ]
    lines += [f"| {part.name} | {part.status} | {part.seconds:.0f} |" for part in parts]
    if rows:
        lines += ["", "## Training step", "", table(rows, ["variant", *COLUMNS])]
    for part in parts:
        if part.output and (part.status != "ok" or not part.rows):
            lines += ["", f"## {part.name}: {part.status}", "", "```", part.output, "```"]
    report = out / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    atomic_write_text(
        out / "report.json",
        json.dumps(
            {"environment": info, "dry_run": dry_run, "parts": [asdict(part) for part in parts]}, indent=1
        )
        + "\n",
    )
    return report


def gpu_check(out: Path, dry_run: bool, parts: tuple[str, ...] = PARTS) -> Path:
    """Run the chosen parts in order (training first: the headroom reads its rates); returns report.md."""
    import torch

    device = "cpu" if dry_run or not torch.cuda.is_available() else "cuda"
    out.mkdir(parents=True, exist_ok=True)
    plan = train_parts(device, dry_run) if "train" in parts else []
    extra = {part.name.split(" ")[0]: part for part in other_parts(out, dry_run)}
    done = [run(part) for part in plan]
    atomic_write_text(
        out / "train_step.json", json.dumps([row for part in done for row in part.rows], indent=1)
    )
    for key, name in (("data", "data"), ("inference", "inference"), ("proof", "learning")):
        if key in parts and not (key == "proof" and dry_run):  # a learning proof is minutes, never a dry run
            done.append(run(extra[name]))
    report = write_report(out, done, environment(device), dry_run)
    print(f"[gpu-check] wrote {report} and {out / 'report.json'}", file=sys.stderr)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu-check")
    parser.add_argument(
        "--dry-run", action="store_true", help="one step of each part on the CPU, tiny batches"
    )
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args(argv)
    gpu_check(args.out, args.dry_run, tuple(args.parts))


if __name__ == "__main__":
    with command_errors():
        main()
