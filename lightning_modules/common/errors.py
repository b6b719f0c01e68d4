"""Errors raised by the models; each message names the file and says what to do."""

from datamodules.pipeline.errors import ProjectError


class WeightsError(ProjectError):
    """User-supplied pretrained weights are missing, unreadable or do not fit the network."""


class CheckpointError(ProjectError):
    """A checkpoint does not belong to this model or configuration."""


class NonFiniteLossError(ProjectError):
    """A training loss became NaN or Inf; the message names the batch and the offending terms."""


class SelectionMetricError(ProjectError):
    """Checkpoint selection or early stopping watches a metric that validation does not compute."""
