"""Hostile command lines for every app.py command: one `error:` line on stderr, exit code 2.

Most cases run main() in this process (argv strings can then hold a NUL or a lone surrogate,
which exec cannot pass); a few run `python app.py` for real, with undecodable bytes in argv
(Python hands them over as lone surrogates) and a database that is not SQLite.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import main
from backend.auth import CLI, UserAdmin
from backend.store.database import Store

# A real app under a batch of hostile calls: minutes, out of the fast loop.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LONG = "m" * 5000
TRIED: Counter[str] = Counter()


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("hostile-cli")
    (root / "not-a-model.gguf").write_text("hello")
    (root / "notes.txt").write_text("hello")
    (root / "folder.gguf").mkdir()
    (root / "junk-db").mkdir()
    (root / "junk-db" / "hearth.db").write_bytes(b"this is not sqlite" * 100)
    data = root / "data"
    with Store(data / "hearth.db") as store:
        UserAdmin(store).add_user(CLI, "alice", "alice-pass-123", "staff")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield {"root": str(root), "data": str(data), "busy": str(busy.getsockname()[1])}
    print("\napp.py commands: hostile command lines tried")
    for command, count in sorted(TRIED.items()):
        print(f"  {command:<14}{count:>4}")


def one_error_line(code: int, out: str, err: str, expected: str) -> str:
    """The failure's one line, after checking the shape every failure must have."""
    lines = err.strip().splitlines()
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1, err[-2000:]
    assert lines[0].startswith("error: "), lines[0][:300]
    assert "Traceback" not in err and out == "", (out[-500:], err[-500:])
    assert len(lines[0]) < 400, lines[0][:400]
    assert expected in lines[0], lines[0]
    return lines[0]


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> tuple:
    TRIED[argv[0] if argv[0] in ("estimate", "users") else "serve"] += 1
    sys.stdin = __import__("io").StringIO(stdin)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses the command line
        code = exc.code
    finally:
        sys.stdin = sys.__stdin__
    captured = capsys.readouterr()
    return code, captured.out, captured.err


ESTIMATE = [
    (["estimate", LONG], "5,000 characters long"),
    (["estimate", LONG + ".gguf"], "5,005 characters long"),
    (["estimate", "{root}/not-a-model.gguf"], "not a readable GGUF file"),
    (["estimate", "{root}/notes.txt"], "not a readable GGUF file"),
    (["estimate", "{root}"], "is a folder"),
    (["estimate", "{root}/folder.gguf"], "is a folder"),
    (["estimate", "{root}/missing.gguf"], "not found"),
    (["estimate", "../../../../../../etc/passwd"], "not a readable GGUF file"),
    (["estimate", "a\x00b"], "NUL character"),
    (["estimate", "a\x00b.gguf"], "NUL character"),
    (["estimate", "\ud800"], "Unknown model '\\ud800'"),
    (["estimate", "llama3.1:8b", "--quant", "Q4\x00"], "NUL character"),
    (["estimate", "llama3.1:8b", "--kv-cache", "bogus"], "invalid choice"),
    *[
        (["estimate", "llama3.1:8b", flag, value], f"argument {flag}:")
        for flag, value in [
            ("--ctx", "abc"),
            ("--ctx", str(10**12)),
            ("--ctx", "2.5"),
            ("--ctx", "NaN"),
            ("--ctx", "-1"),
            ("--ctx", "Infinity"),
            ("--vram-gb", "-1"),
            ("--vram-gb", "inf"),
            ("--vram-gb", "nan"),
            ("--vram-gb", "1e400"),
            ("--ram-gb", "-0.5"),
            ("--parallel", "0"),
            ("--parallel", str(10**30)),
            ("--batch", "-5"),
            ("--gpu-bandwidth-gbps", "0"),
            ("--ram-bandwidth-gbps", "inf"),
        ]
    ],
]
USERS = [
    (["users", "add", LONG, "--data-dir", "{data}"], "is not a valid user name"),
    (["users", "add", "\udcff", "--data-dir", "{data}"], "is not valid text"),
    (["users", "add", "bob", "--data-dir", "{data}"], "Passwords need at least 8 characters"),
    (["users", "passwd", "a\x00b", "--data-dir", "{data}"], "is not valid text"),
    (["users", "disable", "\ud800", "--data-dir", "{data}"], "is not valid text"),
    (["users", "enable", LONG, "--data-dir", "{data}"], "There is no user named"),
    (["users", "list", "--data-dir", "{root}/notes.txt"], "as the data folder"),
    (["users", "list", "--data-dir", "/proc/hearth/nope"], "as the data folder"),
    (["users", "list", "--data-dir", "{root}/" + LONG], "File name too long"),
    (["users", "list", "--data-dir", "{root}/junk-db"], "Cannot open the database"),
    (["users", "frobnicate"], "invalid choice"),
]
SERVE = [
    (["--port", "abc"], "argument --port"),
    (["--port", "99999"], "port must be between 1 and 65535"),
    (["--engine", "bogus"], "invalid choice"),
    (["--bogus"], "unrecognized arguments"),
    (["--port", "{busy}", "--data-dir", "{data}"], "Address already in use"),
    (["--host", "no-such-host.invalid", "--data-dir", "{data}"], "Cannot listen on"),
    (["--host", "a\x00b", "--data-dir", "{data}"], "Cannot listen on 'a\\x00b'"),
    (["--data-dir", "{root}/notes.txt"], "as the data folder"),
    (["serve", "--data-dir", "{root}/" + LONG], "File name too long"),
]


@pytest.mark.parametrize(("argv", "expected"), ESTIMATE + USERS + SERVE)
def test_a_hostile_command_line_is_one_error_line(argv, expected, places, capsys) -> None:
    argv = [arg.format(**places) for arg in argv]
    line = one_error_line(*run_main(argv, capsys), expected)
    assert LONG not in line  # a 5,000-character value is cut, not echoed


def test_an_environment_variable_that_cannot_be_read(places, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HEARTH_PORT", "Infinity")
    one_error_line(*run_main(["users", "list"], capsys), "port must be a number")


def test_an_unexpected_failure_is_one_line_with_a_reference_to_the_details() -> None:
    import app

    sentence = app._sentence(KeyError("kv"))
    assert sentence.startswith("something went wrong (ref ")
    report = Path(sentence.rsplit(" in ", 1)[1].rstrip("."))
    assert "KeyError: 'kv'" in report.read_text()
    report.unlink()


def _app(*argv: str | bytes, data: str) -> subprocess.CompletedProcess[str]:
    TRIED["real process"] += 1
    command = [sys.executable, str(ROOT / "app.py"), *argv]
    env = os.environ | {"HEARTH_DATA_DIR": data, "PYTHONIOENCODING": ""}
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["estimate", LONG], "characters long"),
        (["estimate", b"\xff\xfe"], "Unknown model '\\udcff\\udcfe'"),
        (["estimate", b"/tmp/no-such-\xff.gguf"], "not found"),
        (["estimate", "llama3.1:8b", "--ctx", "abc"], "argument --ctx"),
        (["users", "disable", b"a\xff"], "is not valid text"),
        (["--engine", "embedded", "--port", "0"], "port must be between"),
        (["--engine", "embedded", "--data-dir", "{root}/junk-db"], "Cannot open the database"),
    ],
)
def test_the_real_entry_point_prints_one_line_too(argv, expected, places) -> None:
    argv = [arg.format(**places) if isinstance(arg, str) else arg for arg in argv]
    done = _app(*argv, data=places["data"])
    one_error_line(done.returncode, done.stdout, done.stderr, expected)
