"""Errors raised by the data pipeline.

Every message names the offending file or folder and says what to do about it, so a user never has to
read a traceback from inside torch or numpy to find the bad input.
"""


class DatasetError(RuntimeError):
    """A dataset file or folder cannot be used as it is."""


class CacheMismatchError(DatasetError):
    """A preprocessing cache was written with other parameters than the ones asked for now."""
