"""The project's one LightningCLI: shared links, run-directory conventions, checkpointing, W&B.

Every experiment YAML in this folder is a plain LightningCLI config (model / data / trainer sections).
This class adds what all of them share, so no YAML repeats it:

- values stated once in `data` and copied into `model` (`link_arguments`): image size, mel bands, and the
  number of training identities (known only once the dataset is scanned);
- the meta-keys (`experiments.configs.META_KEYS`, docs/configs.md), accepted here and read by
  `experiments.train` to plan the stages;
- checkpoints in `<run dir>/checkpoints/`: `last.ckpt` every `checkpoint_every_n_steps` optimiser steps
  and on interruption (Ctrl-C, SIGTERM), plus the best one by the model's `checkpoint_monitor`;
- a W&B logger writing under the run directory, live or offline by W&B's own switches (`wandb_mode.py`;
  upload an offline run later with `make wandb-sync`),
  named `<experiment>/<timestamp>/<stage>` and grouped by experiment in the `talking-faces` project; one
  run id per stage folder, so a resumed stage continues its W&B run;
- a CSV log of the same metrics in `<run dir>/metrics.csv` (always, for `make compare` without W&B),
  continued on resumption (`run_history.py`);
- `run_info.json`: git commit, experiment and stage, also logged to every logger with the config;
- the random generators' states in every checkpoint, restored on resumption (`RandomState`), so that a
  resumed run continues with the numbers an uninterrupted one would have drawn;
- the fast GPU path: `bf16-mixed` precision by default on GPUs with bfloat16 (fp32 elsewhere), cuDNN
  autotuning (`benchmark`), and the `--channels_last` / `--compile` switches (`FastPath`); loaders pin
  memory on GPUs and keep their workers between epochs (`datamodules/base.py`).
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from experiments.configs import LINKED_VALUES, META_KEYS
from experiments.run_folders import stage_identity, stage_label
from experiments.wandb_mode import logs_offline
from lightning_modules.common.training.callbacks import (
    EpochSizedLogging,
    FastPath,
    FrozenPartsInEvalMode,
    GracefulInterrupt,
    LastCheckpoint,
    RandomState,
    RunRecord,
    SelectionMetricCheck,
)
from lightning_modules.common.training.run_history import ContinuedCSVLogger, ContinuedHistory, stage_wandb_id

WANDB_PROJECT = "talking-faces"
TRAINER_DEFAULTS = {
    "logger": {
        "class_path": "lightning.pytorch.loggers.WandbLogger",
        "init_args": {"project": WANDB_PROJECT},
    },
    "log_every_n_steps": 10,
    # Fixed-shape batches (every datamodule crops to fixed windows), so cuDNN's autotuning pays off.
    "benchmark": True,
}


def default_precision() -> str:
    """bf16 autocast where the GPU has bfloat16 units (Ampere and newer); full fp32 otherwise, CPUs included
    (bf16 matmuls are slower than fp32 on CPUs without AMX). `--trainer.precision` overrides it."""
    import torch

    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


class ProjectCLI(LightningCLI):
    """`LightningCLI` with the project's conventions; `args` as for LightningCLI (e.g. ["fit", ...])."""

    def __init__(self, args: list[str] | None = None, run: bool = True):
        super().__init__(
            subclass_mode_model=True,
            subclass_mode_data=True,
            trainer_defaults={**TRAINER_DEFAULTS, "precision": default_precision()},
            save_config_kwargs={"overwrite": True},
            # The seed Lightning's default (True) falls back to, stated, so it does not warn "No seed found".
            seed_everything_default=0,
            args=args,
            run=run,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in LINKED_VALUES:
            parser.link_arguments(f"data.init_args.{name}", f"model.init_args.{name}")
        parser.link_arguments("data.num_identities", "model.init_args.num_identities", apply_on="instantiate")
        for name, meta in META_KEYS.items():  # planning keys, read by experiments.train, not by Lightning
            parser.add_argument(f"--{name}", type=meta.type, default=None, help=meta.help)
        parser.add_argument(
            "--checkpoint_every_n_steps",
            type=int,
            default=200,
            help="Write <run dir>/checkpoints/last.ckpt every this many optimiser steps.",
        )
        parser.add_argument(
            "--channels_last",
            type=bool,
            default=False,
            help="Store conv weights NHWC (faster cuDNN kernels with bf16 on GPUs).",
        )
        parser.add_argument(
            "--compile",
            type=bool,
            default=False,
            help="torch.compile each network in place (slow first steps; checkpoints unchanged).",
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        self._name_wandb_run(config)
        if config.trainer.strategy == "ddp" and _is_adversarial(config.model.class_path):
            # Each player's backward leaves the other player's parameters without gradients.
            config.trainer.strategy = "ddp_find_unused_parameters_true"
            rank_zero_info("GAN model: using strategy 'ddp_find_unused_parameters_true' for 'ddp'.")

    @staticmethod
    def _name_wandb_run(config) -> None:
        """Point the W&B logger at the run directory, name the run after it, and log live only when W&B's
        own switches ask for it and can work (`experiments.wandb_mode`); `offline: true` stays offline."""
        logger = config.trainer.logger
        if getattr(logger, "class_path", "").endswith("WandbLogger"):
            if not logger.init_args.get("offline"):
                logger.init_args.offline = logs_offline()
            run_dir = Path(config.trainer.default_root_dir or "runs/adhoc")
            if logger.init_args.get("save_dir") in (None, "."):
                logger.init_args.save_dir = str(run_dir)
            if logger.init_args.get("name") is None:
                logger.init_args.name = stage_label(run_dir)
            if logger.init_args.get("group") is None:
                logger.init_args.group = stage_identity(run_dir)[0]
            if config.trainer.default_root_dir and logger.init_args.get("id") is None:
                logger.init_args.id = stage_wandb_id(run_dir)  # every launch of the stage continues one run

    def instantiate_trainer(self, **kwargs):
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        run_dir = Path(config.trainer.default_root_dir or ".")
        checkpoint_dir = run_dir / "checkpoints"
        experiment, _, stage = stage_identity(run_dir)
        callbacks = [
            LastCheckpoint(checkpoint_dir, every_n_steps=config.checkpoint_every_n_steps),
            RunRecord(run_dir, experiment, stage, Path(__file__).resolve().parents[1]),
            RandomState(),
            GracefulInterrupt(),
            FastPath(config.channels_last, config.compile),
            ContinuedHistory(),
            EpochSizedLogging(),
            FrozenPartsInEvalMode(),
        ]
        monitor = getattr(self.model, "checkpoint_monitor", None)
        if monitor is not None:
            key, mode = monitor
            callbacks.append(
                ModelCheckpoint(
                    dirpath=checkpoint_dir,
                    monitor=key,
                    mode=mode,
                    save_top_k=1,
                    filename="best-{step}",
                    auto_insert_metric_name=False,
                )
            )
        self.trainer_defaults = {**self.trainer_defaults, "callbacks": callbacks}
        trainer = super().instantiate_trainer(**kwargs)
        _decide_after_validation(trainer.callbacks)
        _leave_out_wandb_anonymous(trainer.loggers)
        # `<run dir>/metrics.csv`; continued on resumption, so a resumed run keeps its whole curve. It is
        # listed after W&B because the first logger decides `trainer.log_dir` (where config.yaml goes).
        trainer.loggers = [*trainer.loggers, ContinuedCSVLogger(run_dir, name="", version="")]
        return trainer


def _decide_after_validation(callbacks: list) -> None:
    """Early stopping and checkpoint selection decide only on what validation computed: early stopping
    waits for a validation (a short run that ends first simply ends, instead of failing on a metric not
    logged yet), and `SelectionMetricCheck` turns a watched metric that the first validation did not log
    into an error rather than a silently missing best checkpoint."""
    from lightning.pytorch.callbacks import EarlyStopping

    for callback in callbacks:
        if isinstance(callback, EarlyStopping):
            callback.strict, callback._check_on_train_epoch_end = False, False
    # before ModelCheckpoint, whose own complaint is a bare traceback
    callbacks.insert(0, SelectionMetricCheck(callbacks))


def _leave_out_wandb_anonymous(loggers: list) -> None:
    """Lightning's W&B logger always passes `anonymous` (None unless asked for) to `wandb.init`, which current
    wandb answers with "The anonymous setting has no effect" on every run; the setting is not passed."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._wandb_init.get("anonymous") is None:
            logger._wandb_init.pop("anonymous", None)


def _is_adversarial(class_path: str) -> bool:
    from experiments.configs import load_class
    from lightning_modules.common.training.gan import AdversarialModule

    return issubclass(load_class(class_path), AdversarialModule)


def main() -> None:
    ProjectCLI()


if __name__ == "__main__":
    main()
