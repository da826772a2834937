"""Hearth entry point: `serve` (default), `users`, `estimate`, `backup` and `restore` commands."""

from __future__ import annotations

import argparse
import getpass
import re
import secrets
import socket
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from backend.settings import ENGINE_CHOICES, Settings, SettingsError, from_env

if TYPE_CHECKING:
    import gradio as gr

    from backend.services import Services

# Our own error types carry a sentence for the person at the terminal; see _sentence.
OUR_PACKAGES = ("backend", "ui", "__main__", "app")
_LONG_WORD = re.compile(r"\S{81,}")


class CommandError(Exception):
    """A command cannot go on; the message says why, in a sentence."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one `error:` line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {_one_line(message)} (see: {self.prog} --help)\n")


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a flag given before or after the command name is kept (argparse would
    # otherwise let the subcommand's default None overwrite the main parser's value).
    parser.argument_default = argparse.SUPPRESS
    parser.add_argument("--host", help="address to listen on (HEARTH_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (HEARTH_PORT, default 7860)")
    parser.add_argument(
        "--ollama-host",
        help="Ollama server URL (OLLAMA_HOST, default http://127.0.0.1:11434)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,
        help="auto: Ollama when it answers, else embedded llama.cpp (HEARTH_ENGINE, default auto)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="database and state (HEARTH_DATA_DIR, default ./data)"
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="GGUF files for the embedded engine (HEARTH_MODEL_DIR, default <data-dir>/models)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="app.py",
        description="Hearth: a self-service local LLM console over Ollama, with an embedded "
        "llama.cpp engine when no Ollama is reachable.",
    )
    _add_server_flags(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the web app (the default)")
    _add_server_flags(serve)

    users = commands.add_parser("users", help="manage accounts")
    user_commands = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = user_commands.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="give the user the admin role")
    passwd = user_commands.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    user_commands.add_parser("list", help="list users")
    disable = user_commands.add_parser("disable", help="stop a user from signing in")
    disable.add_argument("name")
    enable = user_commands.add_parser("enable", help="let a disabled user sign in again")
    enable.add_argument("name")
    for leaf in (add, passwd, disable, enable, user_commands.choices["list"]):
        _add_server_flags(leaf)

    estimate = commands.add_parser("estimate", help="print a model's memory estimate")
    _configure_estimate(estimate)
    _configure_ops(commands)
    return parser


def _configure_ops(commands: argparse._SubParsersAction) -> None:
    from backend.ops.cli import configure_backup, configure_restore

    backup = commands.add_parser("backup", help="copy the database while Hearth runs, checked")
    configure_backup(backup)
    restore = commands.add_parser("restore", help="put a backup in place (Hearth stopped)")
    configure_restore(restore)
    for parser in (backup, restore):
        _add_server_flags(parser)


def _configure_estimate(parser: argparse.ArgumentParser) -> None:
    try:
        from backend.estimate.cli import configure_parser
    except ImportError:  # pragma: no cover - the estimator ships with the app
        return
    configure_parser(parser)


def settings_from(args: argparse.Namespace) -> Settings:
    return from_env().with_overrides(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        ollama_host=getattr(args, "ollama_host", None),
        engine=getattr(args, "engine", None),
        data_dir=getattr(args, "data_dir", None),
        model_dir=getattr(args, "model_dir", None),
    )


def _read_password(prompt: str) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != first:
        raise CommandError("The passwords did not match; nothing was changed.")
    return first


def run_users(args: argparse.Namespace, settings: Settings) -> int:
    from backend.auth import CLI, AccountError, UserAdmin
    from backend.store.database import Store

    name = getattr(args, "name", "")
    if "\x00" in name or not _is_text(name):
        raise CommandError(f"The user name {_shown(name)} is not valid text; nothing was changed.")
    _prepare_data_dir(settings)
    with Store(settings.db_path) as store:
        users = UserAdmin(store)  # acting as CLI: audited as 'cli'
        try:
            if args.users_command == "add":
                role = "admin" if args.admin else "staff"
                password = _read_password(f"Password for {args.name}: ")
                users.add_user(CLI, args.name, password, role)
                print(f"Added {role} '{args.name}'.")
            elif args.users_command == "passwd":
                users.set_password(
                    CLI, args.name, _read_password(f"New password for {args.name}: ")
                )
                print(f"Password changed for '{args.name}'.")
            elif args.users_command in ("disable", "enable"):
                users.set_disabled(CLI, args.name, args.users_command == "disable")
                print(f"User '{args.name}' {args.users_command}d.")
            else:
                print(f"{'name':<24} {'role':<6} {'status':<9} created")
                for record in users.list_users(CLI):
                    status = "disabled" if record.disabled else "active"
                    print(f"{record.name:<24} {record.role:<6} {status:<9} {record.created_at}")
        except AccountError as exc:
            print(f"error: {_one_line(str(exc))}", file=sys.stderr)
            return 2
    return 0


def serve(settings: Settings) -> int:
    from backend.ops.data_lock import DataDirBusy, hold_for_serving
    from backend.services import Services

    try:
        lock = hold_for_serving(settings.data_dir)  # a restore waits until this process ends
    except DataDirBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        services = Services.build(settings)
        try:
            _serve(settings, services)
        finally:
            services.close()
    finally:
        lock.release()
    return 0


def _serve(settings: Settings, services: Services) -> None:
    from backend.chat.conversation_import import MAX_IMPORT_BYTES
    from backend.ops.lifecycle import settle_garbage_collector
    from ui import build_ui, launch_options
    from ui.gradio_trims import trim_gradio_per_event_work
    from ui.openai_api import with_openai_routes
    from ui.operator_routes import with_operator_routes

    password = services.users.ensure_first_admin(settings.admin_password)
    if password:
        print(
            "\n  No users yet: created admin user 'admin' with password\n\n"
            f"      {password}\n\n  Sign in and add users in the Admin tab "
            "(or: python app.py users add NAME). This is shown once.\n",
            flush=True,
        )
    print(f"Engine: {services.engine.name} — {services.engine_reason}", flush=True)
    services.start()
    trim_gradio_per_event_work()
    demo = build_ui(services)
    # Chat turns wait in the fair line (positions, Stop, the busy message), never in Gradio's
    # queue: it and the worker threads are sized above what the line can hold.
    demo.queue(default_concurrency_limit=8, max_size=services.chat_concurrency + 64)
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        auth=services.auth.authenticate,
        ssr_mode=False,
        show_error=False,
        max_threads=services.chat_concurrency + 40,  # a waiting turn holds a worker thread
        max_file_size=MAX_IMPORT_BYTES,  # refused with 413 while the upload is read
        prevent_thread_lock=True,  # this thread waits for SIGTERM / Ctrl+C below
        # theme, CSS, keys, error pages, the login guard; /healthz, /readyz, /metrics; /v1
        **with_openai_routes(services, with_operator_routes(services, launch_options(services))),
    )
    settle_garbage_collector()
    _stop_gracefully(settings, services, demo)


def _stop_gracefully(settings: Settings, services: Services, demo: gr.Blocks) -> None:
    """Wait for SIGTERM or Ctrl+C; then no new turns, a grace period, partial replies saved."""
    from backend.ops.lifecycle import wait_for_stop_signal

    received = wait_for_stop_signal()
    running = services.shutdown.running()
    waiting = (
        f"waiting up to {settings.shutdown_grace_s:g} s for {running} repl"
        f"{'y' if running == 1 else 'ies'} in flight"
        if running
        else "no replies in flight"
    )
    print(f"{received.name}: taking no new turns; {waiting}.", flush=True)
    report = services.shutdown.drain(settings.shutdown_grace_s)
    print(f"Stopped: {report.describe()}.", flush=True)
    demo.close()


def _prepare_data_dir(settings: Settings) -> None:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(
            f"Cannot use {_shown(str(settings.data_dir))} as the data folder: "
            f"{exc.strerror or exc}."
        ) from exc


def _check_port(settings: Settings) -> None:
    """Say now, before the engine loads, when the address cannot be listened on."""
    where = f"{_shown(settings.host)} port {settings.port}"
    try:
        family, kind, _, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
    except ValueError:  # a NUL or undecodable bytes in the host name
        reason = "not a host name or address"
    else:
        return
    raise CommandError(
        f"Cannot listen on {where}: {reason}; pick another --port or --host "
        "(HEARTH_PORT, HEARTH_HOST)."
    )


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        parser.error(str(exc))
    if args.command == "users":
        return run_users(args, settings)
    if args.command in ("backup", "restore"):
        from backend.ops.cli import run_backup, run_restore

        return (run_backup if args.command == "backup" else run_restore)(args, settings)
    if args.command == "estimate":
        from backend.estimate.cli import run
        from backend.services import CATALOG_PATH

        return run(args, CATALOG_PATH)
    _prepare_data_dir(settings)
    _check_port(settings)
    return serve(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; any failure is one `error:` line on stderr and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(parser, args)
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"error: {_one_line(_sentence(exc))}", file=sys.stderr)
        return 2


def _sentence(exc: Exception) -> str:
    """Our own errors say what is wrong; an OSError names its file; anything else is a bug."""
    if type(exc).__module__.split(".")[0] in OUR_PACKAGES:
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if isinstance(exc, EOFError):
        return "The input ended before a password was given; nothing was changed."
    ref = secrets.token_hex(3)
    report = Path(tempfile.gettempdir()) / f"hearth-error-{ref}.log"
    try:
        report.write_text("".join(traceback.format_exception(exc)), errors="backslashreplace")
    except OSError:
        return f"something went wrong (ref {ref}): {type(exc).__name__}."
    return f"something went wrong (ref {ref}); the details are in {report}."


def _one_line(message: str) -> str:
    """The message on one line, with any absurdly long word (a 5,000-character name) cut."""
    flat = " ".join(message.split())
    return _LONG_WORD.sub(lambda m: f"{m.group()[:60]}…({len(m.group()):,} characters)", flat)


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 80 else f"{text[:60]!r}…({len(text):,} characters)"


def _is_text(text: str) -> bool:
    """False for undecodable bytes in an argument (Python hands them over as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
