"""Errors raised by the models; each message names the file and says what to do."""

from datamodules.errors import ProjectError


class WeightsError(ProjectError):
    """User-supplied pretrained weights are missing, unreadable or do not fit the network."""


class CheckpointError(ProjectError):
    """A checkpoint does not belong to this model or configuration."""


class NonFiniteLossError(ProjectError):
    """A training loss became NaN or Inf; the message names the batch and the offending terms."""


class SelectionMetricError(ProjectError):
    """Checkpoint selection or early stopping watches a metric that validation does not compute."""


def require_sample_rate(system: str, sample_rate: int, expected: int) -> None:
    """The speech rate a system's layers are built for. `sample_rate` is linked from the datamodule's
    (experiments/cli.py), so a config that feeds another rate fails here, before any training."""
    if sample_rate != expected:
        raise ValueError(
            f"{system} reads {expected} Hz speech (its layers are sized for it): set "
            f"data.init_args.sample_rate to {expected}, got {sample_rate}"
        )
