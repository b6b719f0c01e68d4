"""The project's errors, and the boundary every command runs inside.

Every message names the offending file, folder or setting and says what to do about it, so a user never
has to read a traceback from inside torch or numpy to find the bad input. `command_errors` turns such an
error into one line and a non-zero exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

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
    """Run a command's body: a `ProjectError` prints `error: <message>` and exits with 1 (with its traceback
    only when `debug`, default `debugging()`); an unexpected exception prints its traceback and how to report
    it, and exits with 1. Ctrl-C and `sys.exit` pass through unchanged."""
    debug = debugging() if debug is None else debug
    try:
        yield
    except ProjectError as error:
        if debug:
            traceback.print_exc()
        sys.exit(f"error: {error}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception:  # noqa: BLE001 - the boundary: anything not foreseen is reported as a bug
        traceback.print_exc()
        print(f"error: {REPORT_HINT}", file=sys.stderr)
        sys.exit(1)
