"""Training-step throughput, peak memory, FLOPs and Lightning's overhead, for every system.

    python -m benchmarks.train_step [--systems wav2pix sf2f …] [--device cpu|cuda] [--batch N]
                                    [--precision 32-true bf16-mixed] [--channels-last] [--compile]

For each system (`benchmarks/systems.py`: the paper's configuration and batch) one training step is
the full update `make train` performs: generator forward, its losses, backward and optimiser step, then
the discriminator's (for the GANs), on one batch kept on the device. It is timed two ways in the same
process, interleaved:

- "plain": a minimal hand-written PyTorch loop calling the module's own `generate` / `*_loss` (or
  `training_step`) with the optimisers of its `configure_optimizers`, `torch.autocast` for bf16;
- "Lightning": `Trainer.fit` on the same module, batch and precision, with the callbacks and CSV logger
  every run has (checkpoint writing, periodic and cheap per step, is left out of both).

The ratio Lightning / plain is Lightning's overhead (target ≤ 1.05). With bf16-mixed, the losses of the
first `--loss-steps` updates are compared with fp32's from the same weights and random numbers ("bf16 loss
drift", the largest relative difference). FLOPs are counted once per step by
`torch.utils.flop_counter` (matmuls, convolutions, attention; forward and backward), so MFU = achieved
FLOP/s over the device's peak (`--peak-tflops`, known for common GPUs). Each system runs in its own
process, so the CPU peak resident memory is that system's.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.apply_func import move_data_to_device

from benchmarks.systems import SYSTEMS, build
from benchmarks.timing import in_own_process, measure, peak_memory_mib, synchronize, table
from datamodules.errors import command_errors
from datamodules.pipeline.files import atomic_write_text
from lightning_modules.common.training.callbacks import FastPath

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, for MFU.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "RTX 4090": 165.0}


def optimisers(module) -> list[torch.optim.Optimizer]:
    configured = module.configure_optimizers()
    if isinstance(configured, dict):
        configured = configured["optimizer"]
    return list(configured) if isinstance(configured, (list, tuple)) else [configured]


def plain_step(module, batch: Any, optimizers: list, autocast) -> list[torch.Tensor]:
    """One update of `module` on `batch` without Lightning, the same work as its `training_step`; returns
    the loss of each optimiser step, detached (reading them would wait for the GPU: the caller decides)."""
    from lightning_modules.common.training.gan import AdversarialModule, detach_all

    if not isinstance(module, AdversarialModule):
        with autocast():
            loss = module.training_step(batch, 0)
        _update(optimizers[0], loss, None)
        return [loss.detach()]
    losses = []
    generator_optimizer, discriminator_optimizer = optimizers
    with autocast():
        output = module.generator_output(batch)  # one shared forward, or one per player step (Wav2Pix)
    steps = [(generator_optimizer, lambda: module.generator_loss(batch, output()))]
    if module.trains_discriminator():
        steps.append(
            (discriminator_optimizer, lambda: module.discriminator_loss(batch, detach_all(output())))
        )
    for optimizer, compute_loss in steps[::-1] if module.discriminator_first else steps:
        with autocast():
            loss = compute_loss().total
        _update(optimizer, loss, module.gradient_clip_norm)
        losses.append(loss.detach())
    return losses


def _update(optimizer, loss: torch.Tensor, clip_norm) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip_norm)
    optimizer.step()


class _SameBatch:
    """A loader that yields one on-device batch `steps` times."""

    def __init__(self, batch: Any, steps: int):
        self.batch, self.steps = batch, steps

    def __iter__(self):
        return (self.batch for _ in range(self.steps))

    def __len__(self) -> int:
        return self.steps


def lightning_seconds(
    module, batch: Any, device: torch.device, precision: str, steps: int, warmup: int, datamodule=None
) -> float:
    """Median seconds between consecutive training batches of `Trainer.fit` (after `warmup` batches). The
    datamodule, when given, is attached as in training (modules read statistics from it in `setup`) but
    its training loader is replaced by the one fixed batch."""
    from lightning import Callback, Trainer
    from lightning.pytorch.loggers import CSVLogger

    from lightning_modules.common.training.callbacks import GracefulInterrupt, RandomState

    class BatchClock(Callback):
        def __init__(self):
            self.starts: list[float] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            synchronize(device)
            self.starts.append(time.perf_counter())

    clock = BatchClock()
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(
            accelerator=device.type,
            devices=1,
            precision=precision,
            max_epochs=1,
            limit_train_batches=steps + warmup + 1,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=CSVLogger(folder),
            log_every_n_steps=10,
            default_root_dir=folder,
            callbacks=[GracefulInterrupt(), RandomState(), clock],
        )
        if datamodule is None:
            trainer.fit(module, train_dataloaders=_SameBatch(batch, steps + warmup + 1))
        else:
            datamodule.train_dataloader = lambda: _SameBatch(batch, steps + warmup + 1)
            trainer.fit(module, datamodule=datamodule)
    module.trainer = (
        None  # the plain loop's `self.log` calls then no-op instead of reaching a finished Trainer
    )
    gaps = torch.tensor(clock.starts).diff()[warmup:]
    return float(gaps.median())


def bf16_loss_drift(module, batch: Any, device: torch.device, steps: int) -> float:
    """Largest relative difference between the losses of `steps` bf16-mixed updates and of `steps` fp32
    updates, both from the module's current weights and the same random numbers; the weights are put back."""
    start = copy.deepcopy(module.state_dict())
    runs = []
    for autocast in (nullcontext, lambda: torch.autocast(device.type, torch.bfloat16)):
        module.load_state_dict(start)
        optimizers = optimisers(module)
        torch.manual_seed(0)
        runs.append(
            torch.tensor(
                [
                    float(loss)
                    for _ in range(steps)
                    for loss in plain_step(module, batch, optimizers, autocast)
                ]
            )
        )
    module.load_state_dict(start)
    fp32, bf16 = runs
    return float(((bf16 - fp32).abs() / fp32.abs().clamp_min(1e-8)).max())


def flops_per_step(module, batch: Any, optimizers: list) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        plain_step(module, batch, optimizers, nullcontext)
    return counter.get_total_flops()


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


def run_system(name: str, args: argparse.Namespace) -> list[dict]:
    """Measure one system at each asked precision; rows for the table."""
    device = torch.device(args.device)
    module, batch, system, datamodule = build(name, args.batch, device.type)
    # as `make train` applies them
    FastPath(args.channels_last, args.compile).setup(None, module.to(device), "fit")
    batch = move_data_to_device(batch, device)  # what Lightning does with each batch
    size = len(next(v for v in batch.values() if torch.is_tensor(v)))
    optimizers = optimisers(module)
    flops = flops_per_step(module, batch, optimizers)
    peak = peak_tflops(device, args.peak_tflops)
    drift = (
        bf16_loss_drift(module, batch, device, args.loss_steps)
        if "bf16-mixed" in args.precision
        else float("nan")
    )
    rows = []
    for precision in args.precision:
        autocast = (
            (lambda: torch.autocast(device.type, torch.bfloat16))
            if precision == "bf16-mixed"
            else nullcontext
        )
        plain = measure(
            lambda autocast=autocast: plain_step(module, batch, optimizers, autocast),
            device,
            args.repeats,
            args.warmup,
        )
        lightning = lightning_seconds(module, batch, device, precision, args.repeats, args.warmup, datamodule)
        achieved = flops / plain.seconds / 1e12
        rows.append(
            {
                "system": name,
                "sample": system.unit,
                "batch": size,
                "precision": precision,
                "params (M)": sum(p.numel() for p in module.parameters()) / 1e6,
                "GFLOP/sample": flops / size / 1e9,
                "samples/s": plain.rate(size),
                "Lightning samples/s": size / lightning,
                "Lightning/plain": lightning / plain.seconds,
                "peak MiB": peak_memory_mib(device),
                "TFLOP/s": achieved,
                "MFU": achieved / peak if peak else float("nan"),
                "bf16 loss drift": drift if precision == "bf16-mixed" else float("nan"),
            }
        )
    return rows


COLUMNS = [
    "system",
    "sample",
    "batch",
    "precision",
    "params (M)",
    "GFLOP/sample",
    "samples/s",
    "Lightning samples/s",
    "Lightning/plain",
    "peak MiB",
    "TFLOP/s",
    "MFU",
    "bf16 loss drift",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.train_step",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--systems", nargs="+", choices=sorted(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--batch",
        type=int,
        help="batch size for every system (default: each paper's on a GPU, a small stated one on a CPU)",
    )
    parser.add_argument(
        "--precision",
        nargs="+",
        default=None,
        choices=["32-true", "bf16-mixed"],
        help="default: 32-true on CPU; 32-true and bf16-mixed on a GPU (their ratio is printed)",
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="conv weights NHWC, as --channels_last=true in training"
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile every network (nn.Module.compile)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument(
        "--loss-steps",
        type=int,
        default=5,
        help="updates compared between bf16-mixed and fp32 (the 'bf16 loss drift' column)",
    )
    parser.add_argument(
        "--peak-tflops", type=float, help="the device's peak for MFU (known GPUs are looked up)"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    # internal: this process runs one system
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.precision is None:
        args.precision = ["32-true", "bf16-mixed"] if args.device.startswith("cuda") else ["32-true"]
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(run_system(args.systems[0], args)))
        return
    rows = []
    for name in args.systems:  # one process per system: its own peak memory, no state shared between them
        rows += in_own_process("benchmarks.train_step", name, args.systems, argv)
        print(f"[bench] {name} done", file=sys.stderr)
        if args.json:  # written as each system finishes, so a long run's results survive a later failure
            atomic_write_text(args.json, json.dumps(rows, indent=1))
    print(
        f"Training step on {args.device} ({torch.get_num_threads()} threads): plain PyTorch loop vs "
        "Lightning, same module and batch"
    )
    print(table(rows, COLUMNS))
    _print_ratios(rows)


def _print_ratios(rows: list[dict]) -> None:
    worst = max(rows, key=lambda r: r["Lightning/plain"])
    print(
        f"Lightning overhead: worst {worst['Lightning/plain']:.3f}x ({worst['system']}, "
        f"{worst['precision']}); target <= 1.05"
    )
    by_system: dict[str, dict[str, float]] = {}
    for row in rows:
        by_system.setdefault(row["system"], {})[row["precision"]] = row["samples/s"]
    for system, rates in by_system.items():
        if {"32-true", "bf16-mixed"} <= set(rates):
            drift = next(
                r["bf16 loss drift"] for r in rows if r["system"] == system and r["precision"] == "bf16-mixed"
            )
            print(
                f"{system}: bf16-mixed / fp32 samples/s = {rates['bf16-mixed'] / rates['32-true']:.2f}x "
                f"(target >= 2); losses of the first updates within {drift:.1%} of fp32's"
            )


if __name__ == "__main__":
    with command_errors():
        main()
