"""What every learning proof does: train an experiment on the generated demo data as `make train` would,
evaluate its selected checkpoint on the held-out test split as `make eval` would, and hand back the
numbers by metric name, so a test can hold a system's output against its control.

Each proof is a slow test (`make test-slow`), sized to finish in about 15 minutes on 2 CPU cores; the
reductions it makes (width, steps, resolution) are stated in its docstring.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from experiments import evaluate as evaluate_entry
from experiments import train as train_entry


def shared_values(report) -> dict[str, float]:
    """`{metric: value}` of a report's computed rows (the first row of each metric; not-computed rows,
    NaN, are left out so a missing number fails the test that asks for it with a KeyError)."""
    values = {}
    for row in report.rows:
        if row.metric not in values and not math.isnan(row.ours):
            values[row.metric] = row.ours
    return values


def train_then_evaluate(
    experiment: str,
    overrides: list[str],
    eval_options: dict | None = None,
    max_items: int | None = None,
    stop_after: str | None = None,
) -> tuple[Path, dict[str, float]]:
    """Train `experiment` on the demo data with `overrides`, then evaluate the run's final stage on the
    test split (paper protocol + shared metrics, W&B off; `stop_after` ends the chain early); returns the run
    folder and the report's values. Prints the wall time and the values, which the README's learning-proof
    table quotes."""
    started = time.monotonic()
    run_dir = train_entry.train(experiment, overrides=overrides, stop_after=stop_after)
    trained = time.monotonic() - started
    report = evaluate_entry.evaluate(
        experiment,
        [str(run_dir)],
        data=None,
        out=str(run_dir / "eval"),
        options=eval_options or {},
        use_wandb=False,
        shared=evaluate_entry.SharedOptions(max_items=max_items),
    )
    values = shared_values(report)
    print(
        f"[learning proof] {experiment}: trained in {trained:.0f} s, evaluated in "
        f"{time.monotonic() - started - trained:.0f} s: {values}"
    )
    return run_dir, values
