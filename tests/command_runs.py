"""Running a command as the user does (`python -m …` in its own process) and reading its error line."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ESCAPE_CODE = re.compile(r"\x1b\[")


def run_module(module: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "VERBOSE"} | env
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def the_error_line(result: subprocess.CompletedProcess) -> str:
    """The one `error:` line a failed command ends with, checked: the last line, starting at its beginning
    (not after a progress bar), the only one, without a traceback or terminal escape codes."""
    lines = result.stderr.rstrip("\n").split("\n")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[-1].startswith("error: "), result.stderr
    assert sum("error:" in line for line in lines) == 1, result.stderr
    assert not ESCAPE_CODE.search(lines[-1]), lines[-1]
    return lines[-1]
