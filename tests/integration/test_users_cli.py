"""`python app.py users ...` in a real process, on a real database in tmp_path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backend.auth import Authentication
from backend.store.database import Store

# Subprocesses or llama.cpp: out of the fast loop (CONTRIBUTING.md).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def users(data_dir: Path, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "users", *args, "--data-dir", str(data_dir)],
        input=None if password is None else password + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def rows(data_dir: Path) -> list[tuple]:
    with Store(data_dir / "hearth.db") as store:
        return [
            (u.name, u.role, u.disabled, u.password_hash, u.failed_logins)
            for u in store.list_users()
        ]


def can_sign_in(data_dir: Path, name: str, password: str) -> bool:
    with Store(data_dir / "hearth.db") as store:
        return Authentication(store).check_login(name, password)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A database with one staff user, 'alice', added through the CLI."""
    result = users(tmp_path, "add", "alice", password="alice-pass-123")
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_add_reads_the_password_from_stdin_and_the_user_can_sign_in(data_dir: Path) -> None:
    result = users(data_dir, "add", "bob", "--admin", password="bob-pass-1234")
    assert result.returncode == 0, result.stderr
    assert "Added admin 'bob'" in result.stdout
    assert "bob-pass-1234" not in result.stdout + result.stderr
    assert [(name, role) for name, role, *_ in rows(data_dir)] == [
        ("alice", "staff"),
        ("bob", "admin"),
    ]
    assert can_sign_in(data_dir, "bob", "bob-pass-1234")


def test_list_shows_name_role_and_status(data_dir: Path) -> None:
    users(data_dir, "disable", "alice")
    users(data_dir, "add", "bob", "--admin", password="bob-pass-1234")
    result = users(data_dir, "list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["name", "role", "status"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["alice", "staff", "disabled"],
        ["bob", "admin", "active"],
    ]


def test_passwd_replaces_the_password(data_dir: Path) -> None:
    result = users(data_dir, "passwd", "alice", password="another-pass-1")
    assert result.returncode == 0, result.stderr
    assert can_sign_in(data_dir, "alice", "another-pass-1")
    assert not can_sign_in(data_dir, "alice", "alice-pass-123")


def test_disable_then_enable(data_dir: Path) -> None:
    assert users(data_dir, "disable", "alice").returncode == 0
    assert not can_sign_in(data_dir, "alice", "alice-pass-123")
    assert users(data_dir, "enable", "alice").returncode == 0
    assert can_sign_in(data_dir, "alice", "alice-pass-123")


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (("add", "alice"), "other-pass-123", "A user named 'alice' already exists."),
        (("add", "carol"), "short", "Passwords need at least 8 characters."),
        (("add", "bad name"), "long-enough-1", "'bad name' is not a valid user name"),
        (("passwd", "alice"), "short", "Passwords need at least 8 characters."),
        (("passwd", "ghost"), "long-enough-1", "There is no user named 'ghost'."),
        (("disable", "ghost"), None, "There is no user named 'ghost'."),
        (("enable", "ghost"), None, "There is no user named 'ghost'."),
    ],
)
def test_errors_exit_2_with_the_reason_and_change_nothing(
    data_dir: Path, args: tuple[str, ...], password: str | None, message: str
) -> None:
    before = rows(data_dir)
    result = users(data_dir, *args, password=password)
    assert result.returncode == 2
    assert f"error: {message}" in result.stderr
    assert rows(data_dir) == before


def test_cli_changes_are_audited_as_cli(data_dir: Path) -> None:
    users(data_dir, "disable", "alice")
    with Store(data_dir / "hearth.db") as store:
        entries = [(e.actor, e.action, e.target) for e in store.list_audit()]
    assert entries == [("cli", "user.disable", "alice"), ("cli", "user.add", "alice")]
