"""The project's errors, and the boundary every command runs inside.

Every message names the offending file, folder or setting and says what to do about it, so a user never
has to read a traceback from inside torch or numpy to find the bad input. `command_errors` turns such an
error into one line and a non-zero exit, as it does an `OSError` of the environment (a full disk, a read-only
mount, a missing permission or an exhausted quota: the user's to fix, not the project's); anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

DEBUG_VARIABLE = "VERBOSE"  # `make … VERBOSE=1` (make exports it) or `VERBOSE=1 python -m …`: keep tracebacks
REPORT_HINT = (
    "This is a bug in the project, not in your input: please report it with the command you ran and "
    "the traceback above (rerun with VERBOSE=1 if it was cut)."
)


# What each environment errno means, and what to do about it.
ENVIRONMENT_ERRORS = {
    errno.ENOSPC: (
        "no space left on the device",
        "Free space there, or write elsewhere (OUT=<another folder>)",
    ),
    errno.EDQUOT: (
        "disk quota exceeded",
        "Free space in your quota, or write elsewhere (OUT=<another folder>)",
    ),
    errno.EROFS: (
        "read-only file system",
        "Write elsewhere (OUT=<a writable folder>); a dataset or prepared cache given as DATA is only read",
    ),
    errno.EACCES: ("permission denied", "Get access to it, or use a folder of your own (OUT=<your folder>)"),
}


class ProjectError(RuntimeError):
    """A problem the user can fix (a file, a path, an argument); its message says what and how."""


class DatasetError(ProjectError):
    """A dataset file or folder cannot be used as it is."""


class CacheMismatchError(DatasetError):
    """A preprocessing cache was written with other parameters than the ones asked for now."""


def debugging(argv: list[str] | None = None) -> bool:
    """Whether the user asked for tracebacks: `VERBOSE=1` in the environment or `--debug` among `argv`."""
    return os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0") or "--debug" in (argv or [])


@contextmanager
def command_errors(debug: bool | None = None) -> Iterator[None]:
    """Run a command's body: a `ProjectError` prints `error: <message>` and an environment `OSError`
    (`ENVIRONMENT_ERRORS`) `error: <path>: <what happened>. <what to do>.`, and exits with 1 (with its
    traceback only when `debug`, default `debugging()`); an unexpected exception prints its traceback and
    how to report it, and exits with 1. Ctrl-C and `sys.exit` pass through unchanged."""
    debug = debugging() if debug is None else debug
    try:
        yield
    except ProjectError as error:
        if debug:
            traceback.print_exc()
        sys.exit(f"error: {error}")
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRORS:
            report_bug()
        if debug:
            traceback.print_exc()
        sys.exit(f"error: {environment_message(error)}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception:  # noqa: BLE001 - the boundary: anything not foreseen is reported as a bug
        report_bug()


def report_bug() -> None:
    """Print the exception being handled with how to report it, and exit with 1."""
    traceback.print_exc()
    print(f"error: {REPORT_HINT}", file=sys.stderr)
    sys.exit(1)


def environment_message(error: OSError) -> str:
    """`<path>: <what happened>. <what to do>.` for an `OSError` whose errno is in `ENVIRONMENT_ERRORS`."""
    what, remedy = ENVIRONMENT_ERRORS[error.errno]
    where = error.filename if error.filename is not None else "a file being written"
    return f"{where}: {what}. {remedy}."
