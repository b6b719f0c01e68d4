"""Probe a video system's demo recipe: how far its mouth follows the speech after a few step counts, scored
on the validation clips (never the test clips the learning proofs score).

    python -m benchmarks.recipe_probe tcsan --steps 50 100 150 [--max-items 6] [--lips] [--smoke] \
        [--stop-after STAGE] [-- OVERRIDES…]

Each step count trains the experiment afresh as `make train` would (`--trainer.max_steps=N` on every stage,
plus the overrides after `--`, e.g. `--model.init_args.au_weight=1.0`; the chain ends after `--stop-after`
when given, as the E2E-NR lip-sync proof stops after stage 1), then generates each validation clip
from its own speech and from another clip's and prints one row per run: the speech-dependence rows and,
with `--lips` (the `lips` demo data, which records each clip's true mouth), the lip-shape rows
(`lightning_modules/common/metrics/lip_shape.py`). Runs go to a temporary runs folder unless TF_RUNS_DIR
is set. The tables a doc page quotes from a probe name the command that printed them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from benchmarks.timing import table
from datamodules.errors import command_errors
from experiments import train as train_entry
from experiments.checkpoints import load_run_for_evaluation
from lightning_modules.common.metrics.metric_suite import MetricSettings
from lightning_modules.common.metrics.shared_evaluation import evaluate_samples

COLUMNS = ("speech_mouth_r", "speech_mouth_r_control", "speech_mouth_r_real", "mouth_swap_sensitivity")
LIP_COLUMNS = ("lip_r_opening", "lip_partial_r_opening", "lip_partial_r_opening_matched", "lip_r_width")
LIPS_DATA = ["--data.init_args.demo_articulation=lips"]


def probe(
    experiment: str,
    steps: int,
    overrides: list[str],
    max_items: int,
    smoke: bool = False,
    stop_after: str | None = None,
) -> dict[str, float]:
    """Train `experiment` for `steps` steps a stage (on the tiny smoke data with `smoke`) and score its final
    stage on the validation split."""
    started = time.monotonic()
    run_dir = train_entry.train(
        experiment, smoke=smoke, overrides=[f"--trainer.max_steps={steps}", *overrides], stop_after=stop_after
    )
    model, datamodule = load_run_for_evaluation(experiment, run_dir, "validate")
    samples = model.eval().evaluation_samples(datamodule, "val", max_items=max_items, controls=True)
    values, _, _ = evaluate_samples(samples, MetricSettings(), max_items, f"{experiment} at {steps} steps")
    return values | {"minutes": (time.monotonic() - started) / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment")
    parser.add_argument("--steps", type=int, nargs="+", required=True)
    parser.add_argument("--max-items", type=int, default=6, help="validation clips scored per run")
    parser.add_argument("--lips", action="store_true", help="train and score on the `lips` demo data")
    parser.add_argument(
        "--smoke", action="store_true", help="the smoke overlays and tiny data: a quick check"
    )
    parser.add_argument(
        "--stop-after", help="end the stage chain after this stage (default: the whole chain)"
    )
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, args.overrides = parser.parse_args(argv[:split]), argv[split + 1 :]
    os.environ.setdefault("TF_RUNS_DIR", tempfile.mkdtemp(prefix="recipe_probe_"))
    overrides = [*args.overrides, *(LIPS_DATA if args.lips else [])]
    columns = (*COLUMNS, *(LIP_COLUMNS if args.lips else ()), "minutes")
    rows = []
    with command_errors():
        for steps in args.steps:
            values = probe(args.experiment, steps, overrides, args.max_items, args.smoke, args.stop_after)
            rows.append({"steps": steps} | {c: values.get(c, float("nan")) for c in columns})
    print(f"{args.experiment} {' '.join(args.overrides)}: validation clips, {args.max_items} per run")
    print(table(rows, ["steps", *columns]))


if __name__ == "__main__":
    main()
