"""/readyz on the real app when its database files turn read-only under it (as after a disk is
remounted read-only): 503 naming the database, and ready again once they are writable.

Root ignores file modes, so as root the app runs under setpriv without the capabilities that
override them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): the modes then bind it like any user.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.support.app_process import AppProcess


def _bound_by_file_modes() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file modes cannot bind the app")
    dropped = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={dropped}", f"--bounding-set={dropped}", "--"]


def _readyz(app: AppProcess) -> httpx.Response:
    return httpx.get(f"{app.url}/readyz", timeout=30, trust_env=False)


def _set_modes(data_dir: Path, file_mode: int, dir_mode: int) -> None:
    for path in data_dir.glob("hearth.db*"):
        path.chmod(file_mode)
    data_dir.chmod(dir_mode)


def test_readyz_is_503_naming_the_database_while_its_files_are_read_only(tmp_path: Path):
    data_dir = tmp_path / "data"
    with AppProcess(data_dir, command_prefix=_bound_by_file_modes()) as app:
        assert _readyz(app).status_code == 200
        _set_modes(data_dir, 0o444, 0o555)
        try:
            response = _readyz(app)
        finally:
            _set_modes(data_dir, 0o644, 0o755)
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["failed"] == ["database"]
        database = body["checks"]["database"]
        assert not database["ok"] and "hearth.db" in database["detail"]
        assert body["checks"]["engine"]["ok"]
        assert _readyz(app).status_code == 200, "ready again without a restart"
