"""Train an experiment: `python -m experiments.train EXP [--data DIR] [--resume last|CKPT] [overrides…]`.

What `make train EXP=…` runs: the chain of stages that `experiments.configs` plans from the experiment's
YAML and its meta-keys (docs/configs.md), each stage with its stacked config files, the stages it takes
checkpoints from run first. Each run lives in `runs/<EXP>/<timestamp>/<stage>/` (config, W&B offline run,
sample grids, `checkpoints/`); a finished stage leaves `COMPLETED.json` there.

Multi-process training (`--trainer.devices=N --trainer.strategy=ddp`) works with Lightning's own launcher
(one command; it starts ranks > 0 itself) and with cluster launchers that start every process (torchrun,
SLURM's srun): then all ranks walk the stage chain together, in one process group, in the run folder rank 0
chose (`shared_run_dir`).

Without --data, the embedded demo dataset is used (generated on first use) and the demo overlays size
the run for a CPU. Overrides are LightningCLI arguments (`--trainer.max_steps=100`) and apply to every
stage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path

from lightning.pytorch.utilities.exceptions import SIGTERMException

from datamodules.errors import command_errors
from experiments.configs import (
    ExperimentError,
    apply_setting,
    config_value,
    experiment_names,
    make_datamodule,
    stacked_section,
    stage_chain,
    stage_configs,
    stage_inputs,
)
from experiments.launch import (
    ACTIVE_STAGE_VARIABLE,
    cluster_launch,
    launch_marker,
    launched_stage,
    restart_for_next_stage,
    shared_run_dir,
    wait_for,
)
from experiments.run_folders import (
    refuse_output_moves,
    resolve_run_dir,
    resume_checkpoint,
    saved_seed,
    training_run,
)


def run_stage(stage: str, stage_dir: Path, configs: list[str], overrides: list[str], ckpt_path: str | None):
    """Fit one stage in this process; returns the CLI (trainer, model, datamodule)."""
    from experiments.cli import ProjectCLI

    args = ["fit"] + [a for c in configs for a in ("--config", c)]
    args.append(f"--trainer.default_root_dir={stage_dir}")
    if ckpt_path:
        args += saved_seed(stage_dir)
    args += overrides
    if ckpt_path:  # checkpoints hold tensors and plain values only: never unpickle arbitrary objects
        args += [f"--ckpt_path={ckpt_path}", "--weights_only=true"]
    # sys.argv must stay as it is: Lightning's DDP launcher re-runs it for the other ranks.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    return ProjectCLI(args=args)


def train(
    experiment: str,
    data: str | None = None,
    resume: str | None = None,
    overrides: list[str] | None = None,
    smoke: bool = False,
    stop_after: str | None = None,
) -> Path:
    """Run every stage of `experiment` that has not completed yet, up to and including `stop_after` (default:
    the whole chain); returns the run folder."""
    overrides = list(overrides or [])
    refuse_output_moves(overrides)
    if data is not None:
        from datamodules.pipeline.cache import data_location

        overrides[:0] = [f"--data.init_args.{key}={value}" for key, value in data_location(data).items()]
    chain = stage_chain(experiment)
    if stop_after is not None:
        if stop_after not in chain:
            raise ExperimentError(
                f"--stop-after {stop_after}: not a stage of {experiment} (its stages: {', '.join(chain)})"
            )
        chain = chain[: chain.index(stop_after) + 1]
    launched, launch = launched_stage(), cluster_launch()
    if launched:
        run_dir = Path(launched[0])
    else:
        run_dir = (
            shared_run_dir(experiment, resume, launch) if launch else resolve_run_dir(experiment, resume)
        )
    leader = launch is None or launch.leader  # the process that writes summaries (all ranks train)
    inputs, best = stage_inputs(chain), {}
    # The process that chose the run folder marks it as being trained, and as failed when it fails before the
    # first checkpoint: `CKPT=last` passes over both.
    with training_run(run_dir) if leader and not launched else contextlib.nullcontext():
        for stage in chain:
            stage_dir = run_dir / stage
            completed = stage_dir / "COMPLETED.json"
            if completed.exists():
                best[stage] = json.loads(completed.read_text())["best"]
                print(f"[train] {stage}: already completed in {stage_dir}, skipping")
                continue
            if config_value(stage, "job") == "prepare":
                best[stage] = None
                if not leader:  # one process prepares the shared caches; the others wait for it to finish
                    wait_for(completed, f"rank 0 to prepare the data of {stage}", timeout_s=float("inf"))
                    continue
                summary = prepare_stage(stage_configs(experiment, data is None, smoke, stage), overrides)
                completed.parent.mkdir(parents=True, exist_ok=True)
                completed.write_text(json.dumps({"best": None, "prepared": summary}, indent=1))
                print(f"[train] {stage}: data prepared: {summary}")
                continue
            stage_overrides = list(overrides)
            stage_overrides += [
                f"--model.init_args.{argument}={best[source]}" for argument, source in inputs[stage].items()
            ]
            ckpt = resume_checkpoint(stage_dir, resume)
            print(f"[train] {stage}: {'resuming ' + ckpt if ckpt else 'starting'} in {stage_dir}")
            # Lightning's DDP launcher re-runs this command for ranks > 0; they read where to go from here.
            os.environ[ACTIVE_STAGE_VARIABLE] = f"{run_dir}{os.pathsep}{stage}"
            try:
                cli = run_stage(
                    stage,
                    stage_dir,
                    stage_configs(experiment, data is None, smoke, stage),
                    stage_overrides,
                    ckpt,
                )
            except SIGTERMException:
                # Pre-emption (SLURM, Kubernetes, a user's kill): Lightning stopped after the current batch
                # and the LastCheckpoint callback wrote last.ckpt. Exit as terminated, so a requeue just
                # reruns us.
                print(
                    f"[train] {stage}: stopped by SIGTERM; {stage_dir / 'checkpoints' / 'last.ckpt'} is "
                    "saved. Rerun with CKPT=last to resume."
                )
                sys.exit(143)
            if cli.trainer.interrupted:
                print(f"[train] {stage} interrupted; rerun with CKPT=last to resume.")
                sys.exit(130)
            best[stage], selected_by = _stage_checkpoint(cli.trainer)
            test_metrics = _test(cli, best[stage])
            _close_wandb_run()
            # a DDP worker joins only the stage rank 0 launched it for; rank 0 writes the summary
            if launched:
                return run_dir
            # every rank has read the marker: it joined this stage's process group
            if launch and launch.leader:
                launch_marker(experiment, launch).unlink(missing_ok=True)
            if not leader:  # a cluster launch's rank > 0 goes on to the next stage with rank 0
                continue
            summary = {
                "best": best[stage],
                "selected_by": selected_by,
                "global_step": cli.trainer.global_step,
                "test": test_metrics,
            }
            completed.write_text(json.dumps(summary, indent=1))
            print(
                f"[train] {stage}: held-out test metrics of {Path(best[stage]).name} (selected by "
                f"{selected_by}): {test_metrics}"
            )
            if cli.trainer.world_size > 1 and launch is None and stage != chain[-1]:
                # Lightning's launcher cannot start a second time in this process. Under a cluster launcher
                # there is nothing to relaunch: the next stage's Trainer reuses the process group all ranks
                # share.
                restart_for_next_stage(run_dir)
    print(f"[train] done: {run_dir}")
    return run_dir


def prepare_stage(configs: list[str], overrides: list[str]) -> dict:
    """A stage that only prepares data (`job: prepare`; A2V's GAN inversion and Wav2Vec2 features): the
    stacked configs' datamodule, with `--data.init_args.KEY=VALUE` overrides, prepares its caches; returns
    its `statistics()` when it has them."""
    class_path, init_args = stacked_section(configs, "data")
    prefix = "--data.init_args."
    for override in overrides:
        if override.startswith(prefix):
            apply_setting(init_args, override[len(prefix) :])
        else:
            print(f"[train] {override}: not a data setting; a data-preparation stage ignores it")
    datamodule = make_datamodule(class_path, init_args)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule.statistics() if hasattr(datamodule, "statistics") else {}


def _test(cli, checkpoint: str) -> dict[str, float]:
    """Evaluate `checkpoint` on the datamodule's test split (identities never seen in training)."""
    results = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=checkpoint, weights_only=True)
    return {k: round(float(v), 5) for k, v in (results[0] if results else {}).items()}


def _close_wandb_run() -> None:
    """End the stage's W&B run; otherwise the next stage's logger, in the same process, would log into it."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def _stage_checkpoint(trainer) -> tuple[str, str]:
    """The checkpoint a finished stage tests and hands on, and what selected it: the best one by the model's
    monitored validation metric when the model selects the best (`checkpoint_selection`) and a validation
    ran, else its final state."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    model = trainer.lightning_module
    monitored = [
        c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.monitor is not None
    ]
    if getattr(model, "checkpoint_selection", "best") == "best":
        for callback in monitored:
            if callback.best_model_path:
                return callback.best_model_path, f"{callback.monitor} ({callback.mode})"
        reason = "no validation ran" if monitored else "the model names no selection metric"
    else:
        reason = f"{type(model).__name__} hands on its last state"
    final = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
    # LastCheckpoint writes it at the end of training; a run without the callback has none
    if not final.exists():
        trainer.save_checkpoint(final, weights_only=False)
    return str(final), f"final state ({reason})"


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.train",
        description=__doc__.split("\n\n")[0],
        epilog="Experiments: "
        + ", ".join(experiment_names())
        + ". Any other argument goes to LightningCLI, e.g. --trainer.max_steps=100 "
        "--trainer.precision=bf16-mixed --trainer.devices=2 --trainer.strategy=ddp; add --print_config to "
        "see the resolved config.",
    )
    parser.add_argument("experiment", help="experiment name: a file experiments/<name>.yaml")
    parser.add_argument(
        "--data", help="dataset root in the experiment's real layout (default: the demo dataset)"
    )
    parser.add_argument(
        "--resume",
        help="'last' (the newest run of this experiment that holds a checkpoint and that no other launch is "
        "training), 'auto' (that run if it is unfinished, else a new one: for cluster jobs that may be "
        "requeued), a run folder or a .ckpt path",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="stack the smoke overlays (experiments/smoke/): a few CPU steps"
    )
    parser.add_argument(
        "--stop-after", metavar="STAGE", help="end the chain after this stage (e.g. sf2f: stage 1 only)"
    )
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> None:
    args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
    # A training process owns its W&B service. One inherited from a parent process (a test runner, a
    # notebook that used W&B) may still hold this stage's run open for an earlier launch that was killed,
    # and W&B would then refuse to continue the run ("run ID … is in use").
    os.environ.pop("WANDB_SERVICE", None)
    with command_errors(output="TF_RUNS_DIR"):
        train(
            args.experiment,
            data=args.data,
            resume=args.resume,
            overrides=overrides,
            smoke=args.smoke,
            stop_after=args.stop_after,
        )


if __name__ == "__main__":
    main()
