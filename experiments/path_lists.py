"""Many inputs to one command come in a list file, one path per line, so that every path can hold spaces,
quotes or a leading dash (a Makefile variable holds exactly one path)."""

from __future__ import annotations

from pathlib import Path

from datamodules.errors import ProjectError


def read_path_list(list_file: str | Path) -> list[str]:
    """The paths listed in `list_file`, one per line, as written (blank lines and lines starting with `#`
    are skipped; relative paths are taken from the current folder, like paths on the command line)."""
    path = Path(list_file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ProjectError(
            f"{path}: cannot read this list of paths ({error}). Write one path per line."
        ) from None
    paths = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not paths:
        raise ProjectError(f"{path}: the list holds no path. Write one path per line.")
    return paths
