"""Backup and restore of the database: a checked online copy, and a checked, reversible swap.

backup: copies the live database (Hearth may be serving and writing) as one consistent
snapshot into a hidden file beside PATH, checks the copy (integrity_check, the full-text index,
the schema) and only then renames it to PATH, so PATH is never a half-written or unchecked file.

restore: refuses while any Hearth serves from the data folder (its lock), copies the backup
beside the database and checks that copy (the backup itself is only read), keeps the current
database as hearth.db.before-restore-<time>, swaps the copy in, and opens it once so that a
backup from an older Hearth is migrated to this one's schema.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backend.ops.data_lock import DataDirBusy, hold_for_restore
from backend.store.connections import StoreError
from backend.store.database import Store
from backend.store.maintenance import FileCheck, check_file, copy_online, settle
from backend.units import format_bytes

_SIDECARS = ("-wal", "-shm", "-journal")


class OpsError(Exception):
    """A backup or restore that cannot go ahead; the message is one sentence for the operator."""


@dataclass(frozen=True)
class BackupReport:
    source: Path
    dest: Path
    size_bytes: int
    seconds: float
    check: FileCheck

    def lines(self) -> list[str]:
        return [
            f"Copied {self.source} to {self.dest} ({format_bytes(self.size_bytes)}) in "
            f"{self.seconds:.1f} s: one consistent snapshot, taken while Hearth may serve.",
            f"Checked the copy: {describe_check(self.check)}.",
        ]


@dataclass(frozen=True)
class RestoreReport:
    backup: Path
    db_path: Path
    kept: Path | None  # where the database it replaced now is; None when there was none
    check: FileCheck
    migrated: tuple[str, ...]  # migrations applied when the restored file was opened

    def lines(self) -> list[str]:
        lines = [f"Checked {self.backup}: {describe_check(self.check)}."]
        if self.kept is not None:
            lines.append(f"Kept the previous database as {self.kept}.")
        upgrade = f" and upgraded it ({', '.join(self.migrated)})" if self.migrated else ""
        lines.append(f"Restored {self.backup} to {self.db_path}{upgrade}; start Hearth again.")
        return lines


def describe_check(check: FileCheck) -> str:
    schema = check.migrations[-1] if check.migrations else "none"
    return (
        f"integrity_check {check.integrity}; full-text index {check.full_text}; "
        f"{check.users} users, {check.conversations} conversations, {check.messages} messages; "
        f"schema {schema}"
    )


def backup(db_path: Path, dest: Path, *, force: bool = False) -> BackupReport:
    """Copy the database at db_path to dest while it may be in use; OpsError if it cannot."""
    if not db_path.is_file():
        raise OpsError(f"there is no database at {db_path} (check --data-dir)")
    if dest.is_dir():
        raise OpsError(f"{dest} is a folder; name the backup file, e.g. {dest / 'hearth.db'}")
    if not dest.parent.is_dir():
        raise OpsError(f"the folder {dest.parent} does not exist")
    if dest.exists() and dest.resolve() == db_path.resolve():
        raise OpsError(f"{dest} is the live database itself; name another file")
    if dest.exists() and not force:
        raise OpsError(f"{dest} exists already; pass --force to replace it")
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    started = time.monotonic()
    try:
        copy_online(db_path, partial)
        check = check_file(partial)
        if problems := check.problems():
            raise OpsError(f"the copy failed its check ({'; '.join(problems)}); {dest} untouched")
        os.replace(partial, dest)
    except StoreError as exc:
        raise OpsError(str(exc).rstrip(".")) from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(db_path, dest, dest.stat().st_size, time.monotonic() - started, check)


def restore(source: Path, db_path: Path) -> RestoreReport:
    """Replace the database at db_path with the backup at source; OpsError if it cannot."""
    if not source.is_file():
        raise OpsError(f"there is no backup at {source}")
    if source.resolve() == db_path.resolve():
        raise OpsError(f"{source} is the live database itself; name a backup file")
    try:
        lock = hold_for_restore(db_path.parent)
    except DataDirBusy as exc:
        raise OpsError(str(exc)) from exc
    staged = db_path.with_name(f"{db_path.name}.restoring")
    try:
        _remove_with_sidecars(staged)  # left by a restore that was killed
        copy_online(source, staged)  # the backup is only read
        check = check_file(staged)
        if problems := check.problems():
            raise OpsError(f"{source} cannot be restored: {'; '.join(problems)}; nothing changed")
        kept = _keep_current(db_path)
        os.replace(staged, db_path)
        with Store(db_path) as store:  # migrates a backup from an older Hearth
            migrated = tuple(name for name in store.schema_version if name not in check.migrations)
    except StoreError as exc:
        raise OpsError(str(exc).rstrip(".")) from exc
    finally:
        _remove_with_sidecars(staged)
        lock.release()
    return RestoreReport(source, db_path, kept, check, migrated)


def _keep_current(db_path: Path) -> Path | None:
    """Move the current database (with any -wal / -shm) aside; where it went, or None."""
    if not db_path.exists():
        return None
    # Every committed transaction into the one file; a damaged database is kept as it is,
    # with its sidecar files.
    with contextlib.suppress(StoreError):
        settle(db_path)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    kept = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
    serial = 1
    while kept.exists():
        serial += 1
        kept = db_path.with_name(f"{db_path.name}.before-restore-{stamp}-{serial}")
    os.replace(db_path, kept)
    for suffix in _SIDECARS:
        sidecar = db_path.with_name(db_path.name + suffix)
        if sidecar.exists():
            os.replace(sidecar, kept.with_name(kept.name + suffix))
    return kept


def _remove_with_sidecars(path: Path) -> None:
    for suffix in ("", *_SIDECARS):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
