"""`app.py backup` and `app.py restore` on real SQLite files: a copy taken while threads write
holds every message acknowledged before it and nothing torn; restores are checked first, keep
the database they replace, and upgrade an older backup.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import app
from backend.store.database import Store
from backend.store.migrations import MIGRATION_NAMES, migrate
from tests.support.app_process import ROOT

WRITERS = 4
BULK_MESSAGES = 20_000  # ~25 MB with its index: the copy takes more than an instant


def cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run app.py's main as the shell would; (exit code, stdout, stderr)."""
    code = app.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def message_ids(path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM messages")}
    finally:
        conn.close()


def bulk_fill(path: Path, owner: int, conversation: int) -> None:
    """Many messages in one transaction through the real schema (its FTS triggers included)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO messages (conversation_id, owner_id, role, content, created_at)"
        " VALUES (?, ?, 'user', ?, '2025-01-01T00:00:00.000000+00:00')",
        ((conversation, owner, f"bulk {i} " + "lorem ipsum " * 80) for i in range(BULK_MESSAGES)),
    )
    conn.execute("COMMIT")
    conn.close()


class Writers:
    """Threads that each append messages to their own chat, recording each acknowledged id."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stop = threading.Event()
        self.acked: list[list[tuple[int, float]]] = [[] for _ in range(WRITERS)]
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._write, args=(i,)) for i in range(WRITERS)]

    def _write(self, index: int) -> None:
        try:
            user = self.store.create_user(f"writer{index}", "staff", "h")
            chat = self.store.create_conversation(user.id, title=f"writer {index}")
            turn = 0
            while not self.stop.is_set():
                turn += 1
                text = f"writer{index} turn{turn} lighthouse"
                message = self.store.add_message(user.id, chat.id, role="user", content=text)
                self.acked[index].append((message.id, time.monotonic()))  # committed on return
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        while not all(self.acked):  # every writer has committed once before the backup
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def test_a_backup_taken_during_concurrent_writes_restores_every_acknowledged_message(
    tmp_path: Path,
):
    data_dir = tmp_path / "data"
    db = data_dir / "hearth.db"
    backup = tmp_path / "backups" / "hearth-backup.db"
    backup.parent.mkdir()
    with Store(db) as store:
        owner = store.create_user("bulk", "staff", "h")
        bulk_fill(db, owner.id, store.create_conversation(owner.id, title="bulk").id)
        with Writers(store) as writers:
            started = time.monotonic()
            taken = subprocess.run(
                [sys.executable, str(ROOT / "app.py"), "backup", str(backup),
                 "--data-dir", str(data_dir)],
                cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            finished = time.monotonic()
        assert not writers.errors, writers.errors
    assert taken.returncode == 0, taken.stderr
    assert "integrity_check ok; full-text index ok" in taken.stdout
    during = [i for acks in writers.acked for i, at in acks if started < at < finished]
    assert during, "the writers kept committing while the backup ran"

    in_backup = message_ids(backup)
    for acks in writers.acked:
        ids = [i for i, _ in acks]
        before = [i for i, at in acks if at < started]
        assert set(before) <= in_backup, "a message acknowledged before the backup is missing"
        kept = [i for i in ids if i in in_backup]
        assert kept == ids[: len(kept)], (
            "the copy is one snapshot: no later write without an earlier"
        )
    assert len(in_backup) >= BULK_MESSAGES + sum(
        1 for acks in writers.acked for _, at in acks if at < started
    )

    restored = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "restore", str(backup), "--data-dir", str(data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    with Store(db) as store:
        assert store.schema_version == MIGRATION_NAMES
        writer = store.get_user_by_name("writer0")
        assert writer is not None
        hits = store.search(writer.id, "lighthouse")
        assert hits, "the full-text index came back with the messages"
    assert message_ids(db) == in_backup
    # The writers' connections may still be open (closed at garbage collection): the kept
    # database then keeps its -wal beside it, under the same new name.
    kept_files = data_dir.glob("hearth.db.before-restore-*")
    [kept] = [p for p in kept_files if not p.name.endswith(("-wal", "-shm"))]
    assert message_ids(kept) >= in_backup, "the replaced database is kept whole beside it"


# -- backup refusals --------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder whose database holds one chat of two messages."""
    path = tmp_path / "data"
    with Store(path / "hearth.db") as store:
        user = store.create_user("alice", "staff", "h")
        chat = store.create_conversation(user.id, title="keep me")
        store.add_message(user.id, chat.id, role="user", content="remember the lighthouse")
        store.add_message(user.id, chat.id, role="assistant", content="noted", status="interrupted")
    return path


def test_backup_refuses_to_replace_a_file_unless_forced(data_dir, tmp_path, capsys):
    target = tmp_path / "hearth-backup.db"
    target.write_bytes(b"an older backup")
    code, out, err = cli("backup", str(target), "--data-dir", str(data_dir), capsys=capsys)
    assert (code, out) == (2, "")
    assert err == f"error: {target} exists already; pass --force to replace it\n"
    assert target.read_bytes() == b"an older backup"
    code, out, err = cli("backup", str(target), "--force", "--data-dir", str(data_dir),
                         capsys=capsys)  # fmt: skip
    assert code == 0, err
    assert "2 messages" in out and message_ids(target) == message_ids(data_dir / "hearth.db")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no partial left"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing-folder/backup.db", "does not exist"),
        (".", "is a folder; name the backup file"),
    ],
)
def test_backup_names_what_is_wrong_with_the_target(data_dir, tmp_path, capsys, where, message):
    code, _, err = cli("backup", str(tmp_path / where), "--data-dir", str(data_dir), capsys=capsys)
    assert code == 2 and err.startswith("error: ") and message in err
    assert len(err.splitlines()) == 1


def test_backup_without_a_database_says_so(tmp_path, capsys):
    code, _, err = cli("backup", str(tmp_path / "b.db"), "--data-dir", str(tmp_path / "none"),
                       capsys=capsys)  # fmt: skip
    assert code == 2 and err.startswith("error: there is no database at ")


# -- restore refusals and upgrades ------------------------------------------------------------


def _backup_of(data_dir: Path, tmp_path: Path, capsys) -> Path:
    target = tmp_path / "hearth-backup.db"
    code, _, err = cli("backup", str(target), "--data-dir", str(data_dir), capsys=capsys)
    assert code == 0, err
    return target


def _unchanged(data_dir: Path, inode: int) -> None:
    db = data_dir / "hearth.db"
    assert db.stat().st_ino == inode
    assert len(message_ids(db)) == 2
    assert sorted(p.name for p in data_dir.iterdir() if "restor" in p.name) == []


def _tamper(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in statements:
        conn.execute(statement)
    conn.close()


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (("DROP TRIGGER messages_fts_delete", "DELETE FROM messages WHERE role = 'assistant'"),
         "the full-text index does not match the messages"),
        (("INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
          " VALUES ('hearth', 'm999_from_the_future', '2030-01-01')",),
         "it comes from a newer Hearth (migrations m999_from_the_future are unknown here)"),
        (("DROP TABLE _sqlite_migrations",), "it records no Hearth migrations"),
    ],
)  # fmt: skip
def test_restore_refuses_a_backup_that_fails_its_check_and_changes_nothing(
    data_dir, tmp_path, capsys, statements, message
):
    backup = _backup_of(data_dir, tmp_path, capsys)
    _tamper(backup, *statements)
    inode = (data_dir / "hearth.db").stat().st_ino
    code, out, err = cli("restore", str(backup), "--data-dir", str(data_dir), capsys=capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {backup} cannot be restored: ") and message in err
    assert err.rstrip().endswith("nothing changed") and len(err.splitlines()) == 1
    _unchanged(data_dir, inode)


def test_restore_refuses_a_file_that_is_not_a_database(data_dir, tmp_path, capsys):
    garbage = tmp_path / "notes.db"
    garbage.write_bytes(b"not a database at all" * 100)
    inode = (data_dir / "hearth.db").stat().st_ino
    code, _, err = cli("restore", str(garbage), "--data-dir", str(data_dir), capsys=capsys)
    assert code == 2 and "file is not a database" in err and len(err.splitlines()) == 1
    _unchanged(data_dir, inode)


def test_restore_of_an_older_backup_upgrades_it_and_keeps_the_database_it_replaces(
    data_dir, tmp_path, capsys
):
    older = tmp_path / "from-an-older-hearth.db"
    conn = sqlite3.connect(older, isolation_level=None)
    migrate(conn, stop_before=MIGRATION_NAMES[-1])
    conn.execute("INSERT INTO users (id, name, role, password_hash, created_at)"
                 " VALUES (1, 'old', 'staff', 'h', '2025-01-01')")  # fmt: skip
    conn.close()
    code, out, err = cli("restore", str(older), "--data-dir", str(data_dir), capsys=capsys)
    assert code == 0, err
    assert f"and upgraded it ({MIGRATION_NAMES[-1]})" in out
    with Store(data_dir / "hearth.db") as store:
        assert [u.name for u in store.list_users()] == ["old"]
        assert store.schema_version == MIGRATION_NAMES
    [kept] = data_dir.glob("hearth.db.before-restore-*")
    assert f"Kept the previous database as {kept}." in out
    assert len(message_ids(kept)) == 2
    assert older.read_bytes()[:16] == b"SQLite format 3\x00", "the backup itself is only read"
