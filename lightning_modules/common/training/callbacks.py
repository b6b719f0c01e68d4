"""Training callbacks shared by every experiment."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class LastCheckpoint(Callback):
    """Keep `<dirpath>/last.ckpt` current: every `every_n_steps` optimiser steps, at the end of training and
    when training stops on an exception (Ctrl-C, SIGTERM handled by Lightning, a crash).

    Each write goes to a temporary file first and is renamed over `last.ckpt`, so a crash during the save
    leaves the previous complete checkpoint in place, never a truncated one.
    """

    def __init__(self, dirpath: str | Path, every_n_steps: int = 200):
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be positive, got {every_n_steps}")
        self.dirpath, self.every_n_steps = Path(dirpath), every_n_steps
        self._saved_step = -1

    @property
    def path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def save(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self._saved_step:
            return
        temporary = self.dirpath / f".last.ckpt.{os.getpid()}.tmp"
        # Collective: every rank calls it, rank 0 writes. The full state (optimisers, loops, callbacks), said
        # explicitly: Lightning otherwise logs that it chose it, which reads like an unsafe load.
        trainer.save_checkpoint(temporary, weights_only=False)
        if trainer.is_global_zero:
            os.replace(temporary, self.path)
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.save(trainer)


def git_state(folder: Path) -> dict[str, str | bool]:
    """The commit `folder`'s repository is at and whether its tracked files differ from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        return {
            "git_commit": git("rev-parse", "HEAD") or "unknown",
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": False}


STAGE_CONFIG_KEY = "stage_config"  # in every checkpoint: {"experiment", "stage", "config": the stage's YAML}


class RunRecord(Callback):
    """Record what produced a run, for comparing runs later: the git commit (and whether the code had
    uncommitted changes), the experiment and stage, and the resolved config. Written to
    `<run dir>/run_info.json` and logged as hyperparameters to every logger (W&B config: `run.*`).

    Every checkpoint also carries the experiment, the stage and the resolved config (`STAGE_CONFIG_KEY`,
    plain strings, so `weights_only=True` loads them), so it can be evaluated, run or shared on its own."""

    def __init__(self, run_dir: str | Path, experiment: str | None, stage: str | None, code_folder: Path):
        self.run_dir, self.code_folder = Path(run_dir), code_folder
        self.info = {"experiment": experiment, "stage": stage}

    def on_fit_start(self, trainer, pl_module) -> None:
        import json
        import socket

        import yaml

        if not trainer.is_global_zero:
            return
        self.info.update(
            git_state(self.code_folder), host=socket.gethostname(), world_size=trainer.world_size
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "run_info.json").write_text(json.dumps(self.info, indent=1) + "\n")
        config_path = self.run_dir / "config.yaml"
        config = yaml.safe_load(config_path.read_text()) if config_path.exists() else {}
        for logger in trainer.loggers:
            logger.log_hyperparams({"run": self.info, "config": config})

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        config_path = self.run_dir / "config.yaml"  # written by LightningCLI before fitting starts
        if config_path.exists():
            checkpoint[STAGE_CONFIG_KEY] = {
                "experiment": self.info["experiment"],
                "stage": self.info["stage"],
                "config": config_path.read_text(),
            }


def capture_random_state() -> dict:
    """torch (CPU and every CUDA device), numpy and Python `random` generator states."""
    import random

    import numpy as np
    import torch

    # numpy's state as a tensor and plain numbers: checkpoints stay loadable with `weights_only=True`.
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict) -> None:
    import random

    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    saved = state["numpy"]
    np.random.set_state(
        (
            saved["name"],
            saved["keys"].numpy().astype(np.uint32),
            saved["position"],
            saved["has_gauss"],
            saved["cached"],
        )
    )
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomState(Callback):
    """Make a resumed run draw the random numbers an uninterrupted run would have drawn.

    - Checkpoints carry the generators' states (`rng_states`); on resumption they are put back just before
      the first training batch, whatever start-up work drew numbers in between.
    - Validation (and the sanity check) runs on a copy of the generators: how often one validates never
      changes what training draws, so a run resumed right after a validation matches one that was not.

    Together with `datamodules.resumable.ResumableLoader` (the batches) this makes the losses after a
    resumption equal to those of an uninterrupted run with the same seed.
    """

    def __init__(self):
        self._to_restore: dict | None = None
        self._outside_validation: dict | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # Saved during validation (best checkpoints), the training stream is the one set aside.
        checkpoint["rng_states"] = self._outside_validation or capture_random_state()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._to_restore = checkpoint.get("rng_states")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._to_restore is not None:
            restore_random_state(self._to_restore)
            self._to_restore = None

    def on_validation_start(self, trainer, pl_module) -> None:
        self._outside_validation = capture_random_state()

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._outside_validation is not None:
            restore_random_state(self._outside_validation)
            self._outside_validation = None


class GracefulInterrupt(Callback):
    """Ctrl-C stops training at the next batch boundary, where the stop is certain to be seen.

    Python raises KeyboardInterrupt wherever the main thread happens to be; inside a finaliser (a data
    loader iterator being collected, say) the exception is printed and swallowed, and training carries on.
    Here the first SIGINT only records the request (and says so); the next batch end raises the
    KeyboardInterrupt that Lightning turns into a graceful stop (`LastCheckpoint` saves). A second Ctrl-C
    interrupts at once.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\n[train] Ctrl-C: stopping after this batch and saving last.ckpt (press again to stop now)",
            flush=True,
        )

    def on_fit_start(self, trainer, pl_module) -> None:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)

    def _stop_if_requested(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._stop_if_requested()

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._stop_if_requested()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


class FastPath(Callback):
    """Opt-in speed switches, applied to the model once before the first fit, validation or test.

    Args:
        channels_last: store every 4-D weight NHWC. cuDNN (and oneDNN) then run NHWC convolution kernels,
            faster with bf16 tensor cores; a conv whose weight is channels-last returns a channels-last
            output, so the layout spreads from the first layer without converting the batches.
        compile: `torch.compile` each top-level network in place (`nn.Module.compile`), which keeps the
            parameter names, so checkpoints stay loadable with or without it. The first steps are slow
            while kernels compile; worth it for long GPU runs.
    """

    def __init__(self, channels_last: bool = False, compile: bool = False):
        self.channels_last, self.compile = channels_last, compile
        self._applied = False

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self._applied:
            return
        self._applied = True
        if self.channels_last:
            pl_module.to(memory_format=torch.channels_last)
        if self.compile:
            for network in pl_module.children():
                if any(True for _ in network.parameters()):
                    network.compile()


class SelectionMetricCheck(Callback):
    """Fail at the end of the first validation when a metric that selects checkpoints or stops training
    early was not logged by it: otherwise the best checkpoint silently never appears (the stage falls back
    to its final state) and early stopping never triggers.

    Args:
        callbacks: the trainer's callbacks; the `monitor` of each that has one (`ModelCheckpoint`,
            `EarlyStopping`) is required.
    """

    def __init__(self, callbacks: list):
        self.monitors = {c.monitor for c in callbacks if isinstance(getattr(c, "monitor", None), str)}
        self._checked = False

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self._checked:
            return
        self._checked = True
        missing = sorted(self.monitors - set(trainer.callback_metrics))
        if missing:
            from ..errors import SelectionMetricError

            logged = sorted(k for k in trainer.callback_metrics if k.startswith("val/")) or ["none"]
            raise SelectionMetricError(
                f"{type(pl_module).__name__}: checkpoint selection / early stopping watches "
                f"{', '.join(missing)}, which validation did not log (it logged: {', '.join(logged)}). Fix "
                "the monitor in the experiment's config (early-stopping callbacks) or the model's "
                "checkpoint_monitor."
            )


class EpochSizedLogging(Callback):
    """Log training metrics at least once an epoch: the logging interval becomes the configured one or the
    epoch's batch count, whichever is smaller (the demo datasets' epochs are a few batches long).

    Lightning compares the interval with the epoch length when it sizes the epoch, after `on_fit_start` and
    before `on_train_start`, and warns about a longer interval; the interval is 0 (nothing to log) in between,
    and set from the epoch's length once it is known.
    """

    def __init__(self):
        self.configured = 0

    def on_fit_start(self, trainer, pl_module) -> None:
        self.configured, trainer.log_every_n_steps = trainer.log_every_n_steps, 0

    def on_train_start(self, trainer, pl_module) -> None:
        trainer.log_every_n_steps = int(min(self.configured, trainer.num_training_batches))


class FrozenPartsInEvalMode(Callback):
    """Keep Lightning's "Found N module(s) in eval mode at the start of training" out of the output when the
    modules in eval mode are frozen pretrained parts (SF2F's stage-1 networks in its fuser stage, TCSAN's AU
    classifier, A2V's generator): they are in eval mode on purpose, so their batch-norm statistics and
    dropout stay as trained. Only that exact count is silenced: a module in eval mode outside a frozen part
    (a dropout switched off by mistake) is still reported."""

    def on_fit_start(self, trainer, pl_module) -> None:
        in_eval_mode = [module for module in pl_module.modules() if not module.training]
        if in_eval_mode and set(in_eval_mode) <= frozen_part_modules(pl_module):
            from lightning.fabric.utilities.warnings import PossibleUserWarning

            warnings.filterwarnings(
                "ignore",
                message=rf"Found {len(in_eval_mode)} module\(s\) in eval mode at the start of training",
                category=PossibleUserWarning,
            )


def frozen_part_modules(model: torch.nn.Module) -> set[torch.nn.Module]:
    """Every module inside a frozen part of `model`: a module in eval mode with parameters, none trained."""
    frozen_parts = [
        module
        for module in model.modules()
        if not module.training
        and any(True for _ in module.parameters())
        and not any(p.requires_grad for p in module.parameters())
    ]
    return {module for part in frozen_parts for module in part.modules()}
