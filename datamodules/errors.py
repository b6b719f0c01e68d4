"""The project's errors, and the boundary every command runs inside.

Every message names the offending file, folder or setting and says what to do about it, so a user never
has to read a traceback from inside torch or numpy to find the bad input. `command_errors` turns such an
error into one line and a non-zero exit, as it does an `OSError` of the environment (a full disk, a read-only
mount, a missing permission or an exhausted quota: the user's to fix, not the project's); anything else is a
bug and keeps its traceback.

Advice names the variable of the command that was run: the same dataset folder is ROOT to `make prepare`
and DATA to train and eval, and a speech file is a dataset's file to remove in training but infer's AUDIO
to replace. The command tells its boundary (`command_errors(dataset="ROOT")`), and the messages ask
(`pass_dataset`, `fix_or_replace`, `environment_message`).
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

DEBUG_VARIABLE = "VERBOSE"  # `make … VERBOSE=1` (make exports it) or `VERBOSE=1 python -m …`: keep tracebacks
REPORT_HINT = (
    "This is a bug in the project, not in your input: please report it with the command you ran and "
    "the traceback above (rerun with VERBOSE=1 if it was cut)."
)


# Input role → the running command's variable for it. Train and eval read the dataset from DATA and no
# single file of their own; a command that reads other inputs names them in `command_errors`.
_INPUT_VARIABLES: ContextVar[Mapping[str, str]] = ContextVar(
    "input_variables", default=MappingProxyType({"dataset": "DATA"})
)
ESCAPE_CODE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colours and bold, e.g. in PyTorch's messages

# What each environment errno means, and what to do about it ({output}: the command's output variable).
ENVIRONMENT_ERRORS = {
    errno.ENOSPC: (
        "no space left on the device",
        "Free space there, or write elsewhere ({output}=<another folder>)",
    ),
    errno.EDQUOT: (
        "disk quota exceeded",
        "Free space in your quota, or write elsewhere ({output}=<another folder>)",
    ),
    errno.EROFS: (
        "read-only file system",
        "Write elsewhere ({output}=<a writable folder>); a dataset or prepared cache given as DATA is "
        "only read",
    ),
    errno.EACCES: (
        "permission denied",
        "Get access to it, or use a folder of your own ({output}=<your folder>)",
    ),
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


def pass_dataset(what: str) -> str:
    """Advice to pass another dataset folder, `what` describing it, in the running command's variable."""
    return f"Pass {_INPUT_VARIABLES.get()['dataset']}=<{what}>."


def fix_or_replace(fix: str, role: str) -> str:
    """Advice for an unusable file of kind `role` ("audio"): `fix` it, or pass another one in the command's
    variable for that input (infer's AUDIO), or, when the file belongs to a dataset, remove it from there."""
    variable = _INPUT_VARIABLES.get().get(role)
    return (
        f"{fix}, or pass {variable}=<another file>." if variable else f"{fix}, or remove it from the dataset."
    )


def one_line(message: str) -> str:
    """`message` on one line and without terminal escape codes, as quoted library messages may carry."""
    return re.sub(r"\s*\n\s*", " ", ESCAPE_CODE.sub("", message)).strip()


def close_progress_bars() -> None:
    """Close the progress bars the failing step left open, so that what is printed next starts on a line of
    its own instead of after the bar."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(tqdm.tqdm._instances) if tqdm else []:
        bar.close()


@contextmanager
def command_errors(debug: bool | None = None, **input_variables: str) -> Iterator[None]:
    """Run a command's body: a `ProjectError` prints `error: <message>` on one line and an environment
    `OSError` (`ENVIRONMENT_ERRORS`) `error: <path>: <what happened>. <what to do>.`, and exits with 1 (with
    its traceback only when `debug`, default `debugging()`); an unexpected exception prints its traceback and
    how to report it, and exits with 1. Ctrl-C and `sys.exit` pass through unchanged.

    `input_variables` name the command's variable for each input role its messages advise on, where it is
    not train's and eval's: `dataset="ROOT"` (prepare), `audio="AUDIO"` (infer), `output="TF_RUNS_DIR"`
    (train; OUT otherwise)."""
    debug = debugging() if debug is None else debug
    named = _INPUT_VARIABLES.set(MappingProxyType({**_INPUT_VARIABLES.get(), **input_variables}))
    try:
        yield
    except (ProjectError, OSError) as error:
        close_progress_bars()
        line = error_line(error)
        if line is None:
            report_bug()
        if debug:
            traceback.print_exc()
        sys.exit(line)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception:  # noqa: BLE001 - the boundary: anything not foreseen is reported as a bug
        close_progress_bars()
        report_bug()
    finally:
        _INPUT_VARIABLES.reset(named)


def error_line(error: BaseException) -> str | None:
    """`error: <message>` on one line for an error the user can fix (a `ProjectError`, or an `OSError` of the
    environment, `ENVIRONMENT_ERRORS`); None for anything else, which is a bug. Commands print it and exit;
    the web app shows it on the page."""
    if isinstance(error, ProjectError):
        return f"error: {one_line(str(error))}"
    if isinstance(error, OSError) and error.errno in ENVIRONMENT_ERRORS:
        return f"error: {environment_message(error)}"
    return None


def report_bug() -> None:
    """Print the exception being handled with how to report it, and exit with 1."""
    traceback.print_exc()
    print(f"error: {REPORT_HINT}", file=sys.stderr)
    sys.exit(1)


def environment_message(error: OSError) -> str:
    """`<path>: <what happened>. <what to do>.` for an `OSError` whose errno is in `ENVIRONMENT_ERRORS`, the
    advice naming the running command's output variable."""
    what, remedy = ENVIRONMENT_ERRORS[error.errno]
    where = error.filename if error.filename is not None else "a file being written"
    return f"{where}: {what}. {remedy.format(output=_INPUT_VARIABLES.get().get('output', 'OUT'))}."
