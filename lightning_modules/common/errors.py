"""Errors raised by the models; each message names the file and says what to do."""


class WeightsError(RuntimeError):
    """User-supplied pretrained weights are missing, unreadable or do not fit the network."""


class CheckpointError(RuntimeError):
    """A checkpoint does not belong to this model or configuration."""


class NonFiniteLossError(RuntimeError):
    """A training loss became NaN or Inf; the message names the batch and the offending terms."""


class SelectionMetricError(RuntimeError):
    """Checkpoint selection or early stopping watches a metric that validation does not compute."""
