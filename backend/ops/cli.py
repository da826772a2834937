"""`app.py backup PATH [--force]` and `app.py restore PATH`: one line per step, `error: ...` (2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backend.ops.backup import OpsError, backup, restore
from backend.settings import Settings


def configure_backup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the backup file to write")
    parser.add_argument(
        "--force", action="store_true", default=False, help="replace PATH if it exists"
    )


def configure_restore(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the backup file to restore (Hearth stopped)")


def run_backup(args: argparse.Namespace, settings: Settings) -> int:
    try:
        report = backup(settings.db_path, args.path.expanduser(), force=args.force)
    except OpsError as exc:
        return _error(exc)
    print("\n".join(report.lines()), flush=True)
    return 0


def run_restore(args: argparse.Namespace, settings: Settings) -> int:
    try:
        report = restore(args.path.expanduser(), settings.db_path)
    except OpsError as exc:
        return _error(exc)
    print("\n".join(report.lines()), flush=True)
    return 0


def _error(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr, flush=True)
    return 2
