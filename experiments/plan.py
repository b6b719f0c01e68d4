"""What `make train EXP=…` will do, before it does it: `make plan EXP=… [DATA=…] [ARGS=--smoke]`.

For each stage of the experiment's chain, in order: the config files stacked (later ones win), each with
why it is there (the experiment, what it `extends`, the demo overlay because no DATA was given, the smoke
overlay), the stages it takes checkpoints from and the model arguments they fill, what the stage does
(train or prepare data), where its run folder goes and which checkpoint it hands on.
"""

from __future__ import annotations

import argparse
import inspect

from datamodules.errors import command_errors
from experiments.configs import (
    EXPERIMENTS,
    config_value,
    load_class,
    require_experiment,
    runs_root,
    stage_chain,
    stage_config_files,
    stage_inputs,
    stage_model_class,
)


def selection(experiment: str, stage: str) -> str:
    """Which checkpoint the stage hands on, from its model class (`checkpoint_selection`,
    `checkpoint_monitor`)."""
    model = load_class(stage_model_class(experiment, stage))
    chosen = inspect.getattr_static(model, "checkpoint_selection", "best")
    monitor = getattr(model, "checkpoint_monitor", None)
    best = f"best by {monitor[0]} ({monitor[1]})" if monitor else "its final state (no selection metric)"
    if isinstance(chosen, property):
        return f"{best} or its final state, by stage ({model.__name__}.checkpoint_selection)"
    return best if chosen == "best" else "its final state (a fixed-budget GAN stage)"


def describe(experiment: str, data: str | None = None, smoke: bool = False) -> str:
    require_experiment(experiment)
    chain = stage_chain(experiment)
    inputs = stage_inputs(chain)
    lines = [
        f"# make train EXP={experiment}"
        + (f" DATA={data}" if data else " (demo data)")
        + (" --smoke" if smoke else ""),
        "",
        f"Run folder: {runs_root() / experiment}/<timestamp>/<stage>/ (CKPT=last resumes the newest that "
        "holds a checkpoint and that no other launch is training).",
        "",
    ]
    for number, stage in enumerate(chain, start=1):
        stacked = stage_config_files(experiment, data is None, smoke, stage)
        job = config_value(stage, "job") or "train"
        lines.append(f"{number}. {stage} ({job})")
        for entry in stacked:
            lines.append(f"   - {entry.path.relative_to(EXPERIMENTS.parent)}: {entry.reason}")
        for argument, source in inputs[stage].items():
            lines.append(f"   - --model.init_args.{argument} ← the checkpoint {source} hands on")
        if job == "train":
            lines.append(f"   - hands on: {selection(experiment, stage)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.plan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment")
    parser.add_argument("--data", help="a dataset root (no demo overlays), as make train DATA=…")
    parser.add_argument("--smoke", action="store_true", help="with the smoke overlays")
    args = parser.parse_args(argv)
    with command_errors():
        print(describe(args.experiment, args.data, args.smoke))


if __name__ == "__main__":
    main()
