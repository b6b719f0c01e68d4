"""What `make train EXP=…` will do, before it does it: `make plan EXP=… [DATA=…] [ARGS=--smoke]`.

For each stage of the experiment's chain, in order: the config files stacked (later ones win), each with
why it is there (the experiment, what it `extends`, the demo overlay because no DATA was given, the smoke
overlay), the stages it takes checkpoints from and the model arguments they fill, what the stage does
(train or prepare data), where its run folder goes and which checkpoint it hands on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from datamodules.pipeline.errors import command_errors
from experiments.train import (EXPERIMENTS, config_value, require_experiment, runs_root, stage_chain, stage_configs,
                               stage_inputs)


def overlay_reason(path: Path, stage: str) -> str:
    """Why `path` is among `stage`'s stacked configs."""
    relative = path.relative_to(EXPERIMENTS)
    if relative.parts[0] == "demo":
        return "demo overlay: no DATA given, so the embedded demo dataset at CPU size"
    if relative.name == "smoke.yaml" or relative.parts[0] == "smoke":
        return "smoke overlay (--smoke): a few CPU steps on the tiny fixture"
    name = str(relative.with_suffix(""))
    return "the stage's own config" if name == stage else f"extended by {stage}"


def selection(configs: list[str]) -> str:
    """Which checkpoint the stage hands on, from its model class (`checkpoint_selection`, `checkpoint_monitor`)."""
    import inspect

    from datamodules.prepare import load_class

    class_path = None
    for path in configs:
        class_path = ((yaml.safe_load(Path(path).read_text()) or {}).get("model") or {}).get("class_path", class_path)
    model = load_class(class_path)
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
    lines = [f"# make train EXP={experiment}" + (f" DATA={data}" if data else " (demo data)")
             + (" --smoke" if smoke else ""), "",
             f"Run folder: {runs_root() / experiment}/<timestamp>/<stage>/ (CKPT=last resumes the newest).", ""]
    for number, stage in enumerate(chain, start=1):
        configs = stage_configs(stage, demo=data is None, smoke=smoke)
        job = config_value(stage, "job") or "train"
        lines.append(f"{number}. {stage} ({job})")
        for path in configs:
            lines.append(f"   - {Path(path).relative_to(EXPERIMENTS.parent)}: {overlay_reason(Path(path), stage)}")
        for argument, source in inputs[stage].items():
            lines.append(f"   - --model.init_args.{argument} ← the checkpoint {source} hands on")
        if job == "train":
            lines.append(f"   - hands on: {selection(configs)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("--data", help="a dataset root (no demo overlays), as make train DATA=…")
    parser.add_argument("--smoke", action="store_true", help="with the smoke overlays")
    args = parser.parse_args(argv)
    with command_errors():
        print(describe(args.experiment, args.data, args.smoke))


if __name__ == "__main__":
    main()
