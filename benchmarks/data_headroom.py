"""Is training ever input-bound? The training loader's samples/s against what the model consumes.

    python -m benchmarks.data_headroom [--systems wav2pix …] [--model-rates train_step.json] [--samples 200]

The loader is the experiment's own training loader (`ResumableLoader` over the prepared cache, with the
experiment's default `num_workers`, batches of 2), on the generated tiny fixture prepared at the paper's
resolution, iterated for `--samples` samples after its first batch (worker start-up excluded). The model's
rate is read from a `benchmarks.train_step --json` file (`make bench` writes one; the fastest precision
measured counts), else measured here on the CPU. Headroom = loader rate / model rate; the target is ≥ 5, so
the loader keeps up even when it shares the machine's cores with the model.

A2V is left out: its loader reads the GAN-inversion cache, which needs the StyleGAN3 weights.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.systems import SYSTEMS, experiment
from benchmarks.timing import table
from datamodules.pipeline.errors import command_errors

SYSTEMS_WITH_DATA = [name for name in SYSTEMS if name != "a2v"]
# The tiny fixture holds a few dozen samples; the loader's cost per sample hardly depends on the batch.
LOADER_BATCH = 2


def loader_rate(name: str, samples: int) -> tuple[float, int, int]:
    """(samples/s, batch size, workers) of the system's training loader."""
    datamodule = experiment(SYSTEMS[name], f"--data.init_args.batch_size={LOADER_BATCH}").datamodule
    loader = datamodule.train_dataloader()
    count, started = 0, None
    while count < samples:
        batches = 0
        for batch in loader:
            batches += 1
            if started is None:  # the first batch pays for starting the workers
                started = time.perf_counter()
                continue
            count += len(next(v for v in batch.values() if hasattr(v, "shape")))
            if count >= samples:
                break
        if not batches:
            raise RuntimeError(f"{name}: the fixture's training split gives no batch of {LOADER_BATCH}")
    return count / (time.perf_counter() - started), LOADER_BATCH, datamodule.hparams.num_workers


def model_rate(name: str, rates_file: Path | None) -> float:
    if rates_file is not None:
        rows = [row for row in json.loads(rates_file.read_text()) if row["system"] == name]
        if rows:
            return max(row["samples/s"] for row in rows)
    from benchmarks import train_step

    args = train_step.parse_args(["--systems", name, "--repeats", "2", "--warmup", "1"])
    return train_step.run_system(name, args)[0]["samples/s"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.data_headroom",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS_WITH_DATA, default=SYSTEMS_WITH_DATA)
    parser.add_argument("--model-rates", type=Path, help="rows written by `benchmarks.train_step --json`")
    parser.add_argument("--samples", type=int, default=200, help="samples to time per loader")
    args = parser.parse_args(argv)
    rows = []
    for name in args.systems:
        rate, batch, workers = loader_rate(name, args.samples)
        consumed = model_rate(name, args.model_rates)
        rows.append(
            {
                "system": name,
                "batch": batch,
                "workers": workers,
                "loader samples/s": rate,
                "model samples/s": consumed,
                "headroom": rate / consumed,
            }
        )
    source = args.model_rates or "measured here on the CPU"
    print(f"Training loader vs model (model rates: {source}); target headroom >= 5")
    print(table(rows, ["system", "batch", "workers", "loader samples/s", "model samples/s", "headroom"]))


if __name__ == "__main__":
    with command_errors():
        main()
