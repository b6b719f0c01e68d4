"""Writing files so that a failure leaves nothing under the real name.

Every output (cache shards, checkpoints, pictures, videos, reports) is written to a hidden temporary name in
its own folder and renamed into place once complete: a full disk, a read-only mount or a crash leaves the
file that was there before or none, never a truncated one. An `OSError` met on the way names the file being
written, not its temporary name, so `errors.command_errors` can tell the user which path to fix.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` (its folder made if missing) to write; on success rename it to
    `path`, on failure delete it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        raise naming_target(error, tmp, path) from error
    finally:
        with suppress(OSError):  # on a read-only or vanished folder there is nothing to delete
            tmp.unlink(missing_ok=True)


def naming_target(error: OSError, tmp: Path, path: Path) -> OSError:
    """`error` about `path` where it named the temporary file or no file (a failed `write` names none)."""
    if error.errno is None or error.filename not in (None, str(tmp), tmp):
        return error
    return OSError(error.errno, error.strerror, str(path))


def atomic_write_bytes(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call `write(file)` on a temporary sibling of `path`, fsync it, then rename it over `path`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, lambda handle: handle.write(text.encode()))


def atomic_write_json(path: str | Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True))


def atomic_write_csv(path: str | Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """A CSV of `rows` under a header of `columns`."""
    atomic_write_text(path, csv_text(columns, rows))


def csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
