"""The data folder's lock file: a serving Hearth holds it shared, a restore exclusively.

flock locks belong to the open file and vanish with the process (even on SIGKILL), so a crash
never leaves a stale lock behind. Several servers may share a folder; a restore waits for none.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = "hearth.lock"


class DataDirBusy(Exception):
    """Another process holds the data folder's lock in a way that excludes this use."""


class DataDirLock:
    """One hold on `<data_dir>/hearth.lock`; release() (or process exit) lets it go."""

    def __init__(self, data_dir: Path, fd: int) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _hold(data_dir: Path, mode: int) -> DataDirLock | None:
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return DataDirLock(data_dir, fd)


def hold_for_serving(data_dir: Path) -> DataDirLock:
    """The lock a server holds while it runs; DataDirBusy while a restore runs."""
    lock = _hold(data_dir, fcntl.LOCK_SH)
    if lock is None:
        raise DataDirBusy(
            f"a restore is running on {data_dir} (it holds {data_dir / LOCK_NAME}); "
            "start Hearth when it has finished"
        )
    return lock


def hold_for_restore(data_dir: Path) -> DataDirLock:
    """The lock a restore holds; DataDirBusy while any Hearth serves from data_dir."""
    lock = _hold(data_dir, fcntl.LOCK_EX)
    if lock is None:
        raise DataDirBusy(
            f"Hearth is running on {data_dir} (it holds {data_dir / LOCK_NAME}); "
            "stop it first, then restore"
        )
    return lock
