"""`make` passes every path through as one argument, whatever it holds: each command is run with a path
that does not exist and must name it intact in its one-line error (spaces, parentheses, a single quote,
non-ASCII letters, a leading dash)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AWKWARD = "new dir (2)/it's ünïcode"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*arguments: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    # -o: never (re)build the venv here; PY: this interpreter, whichever venv runs the tests.
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(REPO),
            "-o",
            ".venv/.installed-stack",
            "-o",
            ".venv/.installed-app",
            f"PY={sys.executable}",
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    "target, variable, expected",
    [
        ("prepare", "ROOT", "no lipread_mp4"),
        ("train", "DATA", ""),
        ("eval", "CKPT_LIST", "cannot read this list"),
        ("infer", "CKPT", "no checkpoint found"),
        ("app", "CKPT", "no checkpoint found"),
    ],
)
def test_an_awkward_path_reaches_the_command_whole(tmp_path, target, variable, expected):
    path = tmp_path / AWKWARD
    result = make(target, "EXP=e2e_nr", "DATASET=lrw", f"{variable}={path}", "AUDIO=a.wav")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error and str(path) in error[-1] and expected in error[-1], result.stderr


def test_a_leading_dash_is_a_path_not_an_option(tmp_path):
    result = make("prepare", "DATASET=lrw", "ROOT=-lrw (copy)")
    assert result.returncode != 0 and "error: -lrw (copy)" in result.stderr, result.stderr


def test_commands_started_by_make_keep_freed_memory_mapped_unless_the_user_chose_otherwise():
    """The CPU default avoids glibc's page-fault penalty (docs/benchmarks.md) without the user knowing about
    it."""
    show = ["--eval", 'show-env: ; @echo "$$GLIBC_TUNABLES"', "show-env"]
    environment = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    default = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *show],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    ).stdout.strip()
    assert "glibc.malloc.mmap_threshold=" in default and "glibc.malloc.trim_threshold=" in default
    chosen = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *show],
        capture_output=True,
        text=True,
        env=environment | {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"},
        check=True,
    ).stdout.strip()
    assert chosen == "glibc.malloc.arena_max=2"
