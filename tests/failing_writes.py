"""A folder that refuses to be written, as a read-only mount, a full disk, an exhausted quota or a folder
without permission does, for tests that may run as root (whom `chmod` does not stop).

`failing_writes(monkeypatch, folder, code)` makes every write under `folder` from Python raise
`OSError(code)` the way the kernel does: a full disk (ENOSPC) or quota (EDQUOT) lets the file be created
and fails its first write, naming no file; a read-only mount (EROFS) or a missing permission (EACCES)
refuses creating, renaming or deleting anything, naming the path. It returns the list of refused paths.
Writers in C (libsndfile, FFmpeg, torch.save to a path) are not covered.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
FAILS_ON_WRITE = (errno.ENOSPC, errno.EDQUOT)


class FullFile(io.RawIOBase):
    """An opened file on a full device: every write fails."""

    def __init__(self, handle, code: int):
        self._handle, self._code = handle, code

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        raise OSError(self._code, os.strerror(self._code))

    def close(self) -> None:
        self._handle.close()
        super().close()

    def fileno(self) -> int:
        return self._handle.fileno()


def failing_writes(monkeypatch, folder: Path, code: int) -> list[str]:
    folder = Path(folder).resolve()
    refused: list[str] = []

    def inside(path) -> bool:
        try:
            return Path(os.fsdecode(path)).resolve().is_relative_to(folder)
        except TypeError:  # a file descriptor or buffer, not a path
            return False

    def refuse(path) -> None:
        refused.append(os.fsdecode(path))
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    def refusing(real, *, path_arguments: int = 1):
        def call(*args, **kwargs):
            for path in args[:path_arguments]:
                if inside(path):
                    refuse(path)
            return real(*args, **kwargs)

        return call

    real_open, real_os_open = builtins.open, os.open

    def checked_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+") and inside(file):
            if code not in FAILS_ON_WRITE:
                refuse(file)
            refused.append(os.fsdecode(file))
            return FullFile(real_open(file, mode, *args, **kwargs), code)
        return real_open(file, mode, *args, **kwargs)

    def checked_os_open(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS and inside(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    real_mkdir = os.mkdir

    def checked_mkdir(path, *args, **kwargs):
        if os.path.lexists(path):  # the kernel answers EEXIST first, even on a read-only mount
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
        if inside(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", checked_open)
    monkeypatch.setattr(io, "open", checked_open)
    monkeypatch.setattr(os, "open", checked_os_open)
    monkeypatch.setattr(os, "mkdir", checked_mkdir)
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, refusing(getattr(os, name), path_arguments=2))
    if code not in FAILS_ON_WRITE:  # a full disk still deletes
        for name in ("unlink", "remove", "rmdir"):
            monkeypatch.setattr(os, name, refusing(getattr(os, name)))
    return refused
