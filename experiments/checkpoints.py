"""From a checkpoint to a model: which file CKPT names, what it holds, and the model and data it was
trained with. `make eval`, `make infer`, `make export` and the benchmarks all start here.

CKPT is a `.ckpt` file, a run or stage folder (its selected checkpoint), or `last` (the newest run of the
experiment that holds a checkpoint; `run_folders.py` knows the layout). A checkpoint carries its experiment,
stage and resolved config, and the datamodule's statistics; one that is not a checkpoint, belongs to
another experiment or would run code when unpickled is refused with one line naming it.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
import yaml

from experiments.configs import (
    LINKED_VALUES,
    ExperimentError,
    load_class,
    require_experiment,
    runs_root,
    stage_chain,
    stage_model_class,
)
from experiments.run_folders import newest_run, run_checkpoint, stage_of
from lightning_modules.common.errors import CheckpointError
from lightning_modules.common.training.callbacks import STAGE_CONFIG_KEY
from lightning_modules.common.training.checkpoints import load_checkpoint_file


def resolve_checkpoint(experiment: str, value: str) -> Path:
    """A `.ckpt` path from a file, a stage folder, a run folder, or `last` (the newest run holding one)."""
    require_experiment(experiment)
    if value == "last":
        newest = newest_run(experiment, to_resume=False)
        if newest is None:
            raise ExperimentError(
                f"{runs_root() / experiment}: no run of {experiment} with a checkpoint yet. Train first or "
                "pass CKPT=<file>."
            )
        value = str(newest)
    path = Path(value)
    if path.is_file():
        return path
    checkpoint = run_checkpoint(path, experiment)
    if checkpoint is None:
        raise ExperimentError(
            f"{path}: no checkpoint found (not a .ckpt, and no COMPLETED.json or checkpoints/last.ckpt). "
            "Pass CKPT=<a .ckpt file, its run folder or last>."
        )
    return checkpoint


def model_class_paths(experiment: str) -> set[str]:
    """The model classes the stages of `experiment` train."""
    return {path for stage in stage_chain(experiment) if (path := stage_model_class(experiment, stage))}


def check_experiment(experiment: str, checkpoint: Path, class_path: str, written_by: str | None) -> None:
    """A checkpoint of another system gets a clear error, not another system's evaluation."""
    expected = model_class_paths(experiment)
    if class_path not in expected:
        origin = f" (written by {written_by})" if written_by else ""
        raise ExperimentError(
            f"{checkpoint} holds a {class_path.rsplit('.', 1)[-1]}{origin}, but {experiment} "
            f"trains {sorted(expected)}. Pass the EXP that wrote it."
        )


def read_checkpoint(checkpoint: Path) -> dict:
    """The checkpoint's contents, loaded with `weights_only=True` (never executed as a pickle); anything
    unreadable is a `CheckpointError` naming the file."""
    state = load_checkpoint_file(
        checkpoint, "no such checkpoint file.", "Pass CKPT=<a .ckpt written by make train or make export>."
    )
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CheckpointError(
            f"{checkpoint}: holds no model weights (no state_dict). Pass CKPT=<a .ckpt written by "
            "make train or make export>."
        )
    return state


def stage_config(checkpoint: Path, state: dict) -> tuple[dict, str | None]:
    """The config that trained the checkpoint and `<experiment>/<stage>` that wrote it: carried inside
    checkpoints (`RunRecord`), else (older ones) the stage's config.yaml beside its checkpoints folder."""
    carried = state.get(STAGE_CONFIG_KEY)
    if carried:
        return yaml.safe_load(carried["config"]), f"{carried['experiment']}/{carried['stage']}"
    beside = stage_of(checkpoint) / "config.yaml"
    if not beside.exists():
        raise CheckpointError(
            f"{checkpoint}: carries no config, and no config.yaml lies beside its folder (an older "
            "checkpoint moved out of its run folder). Use it inside its run folder, or export "
            "it from there with make export."
        )
    return yaml.safe_load(beside.read_text()), None


def checkpoint_experiment(checkpoint: Path) -> str | None:
    """The experiment a checkpoint file says trained it (None for an older one that carries no config)."""
    carried = read_checkpoint(checkpoint).get(STAGE_CONFIG_KEY)
    return carried["experiment"] if carried else None


def checked_checkpoint(experiment: str, checkpoint: Path) -> tuple[dict, dict, str | None]:
    """(contents, the stage's config, `<experiment>/<stage>` that wrote it) of a checkpoint of `experiment`,
    refusing unreadable files and checkpoints of another system."""
    state = read_checkpoint(checkpoint)
    config, written_by = stage_config(checkpoint, state)
    check_experiment(experiment, checkpoint, config["model"]["class_path"], written_by)
    return state, config, written_by


def load_model(experiment: str, checkpoint: Path):
    """(model, the stage's config, the checkpoint's contents) for a checkpoint of `experiment`, from
    anywhere, loaded with `weights_only=True`."""

    state, config, _ = checked_checkpoint(experiment, checkpoint)
    model_class = load_class(config["model"]["class_path"])
    model = model_class.load_from_checkpoint(
        checkpoint, map_location="cpu", weights_only=True, **unsaved_links(model_class, state, config)
    )
    return inference_layout(model), config, state


def unsaved_links(model_class: type, state: dict, config: dict) -> dict:
    """Data values linked into the model (`LINKED_VALUES`) that a checkpoint written before the model took
    them lacks (SF2F's `vad`, Wav2Pix's pre-emphasis), from the data config saved with it; the model
    asks for them at inference."""
    accepted = inspect.signature(model_class.__init__).parameters
    saved = state.get("hyper_parameters") or {}
    data_args = config["data"].get("init_args") or {}
    return {
        name: data_args[name]
        for name in LINKED_VALUES
        if name in accepted and name not in saved and name in data_args
    }


def inference_layout(model):
    """`model` with its conv weights stored channels-last: oneDNN and cuDNN then skip the NCHW reorders
    around every conv (TCSAN's transposed convs generate ≈ 1.6× faster on a 2-core CPU;
    `benchmarks/inference.py`). Parameter names and values are unchanged."""
    return model.to(memory_format=torch.channels_last)


def load_for_evaluation(experiment: str, checkpoint: Path, data: str | None):
    """(model, datamodule) as trained: the model from the checkpoint, the data from the stage's config."""
    from datamodules.pipeline.cache import data_location
    from experiments.configs import make_datamodule

    model, config, state = load_model(experiment, checkpoint)  # the state holds the datamodule's statistics
    data_args = dict(config["data"].get("init_args") or {})
    if data is not None:  # DATA names the data anew: a prepared folder recorded at training no longer applies
        data_args.pop("prepared_dir", None)
        data_args.update(data_location(data))
    datamodule = make_datamodule(config["data"]["class_path"], data_args)
    saved = state.get(type(datamodule).__qualname__)
    if saved:
        datamodule.load_state_dict(saved)
    return model, datamodule


def load_run_for_evaluation(experiment: str, run: str | Path, split_stage: str = "test"):
    """(model, datamodule) of a run's final stage (`run`: anything `resolve_checkpoint` takes), its data
    prepared and set up for `split_stage` ("test", "validate"), as the proofs and probes score it."""
    model, datamodule = load_for_evaluation(experiment, resolve_checkpoint(experiment, str(run)), None)
    datamodule.prepare_data()
    datamodule.setup(split_stage)
    return model, datamodule
