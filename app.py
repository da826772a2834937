"""Hearth entry point: `serve` (default), `users` and `estimate` commands."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path

from backend.settings import ENGINE_CHOICES, Settings, SettingsError, from_env


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
    parser = argparse.ArgumentParser(
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
    return parser


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
        raise SystemExit("The passwords did not match; nothing was changed.")
    return first


def run_users(args: argparse.Namespace, settings: Settings) -> int:
    from backend.auth.accounts import AccountError, Accounts
    from backend.store.database import Store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with Store(settings.db_path) as store:
        accounts = Accounts(store)
        try:
            if args.users_command == "add":
                role = "admin" if args.admin else "staff"
                password = _read_password(f"Password for {args.name}: ")
                accounts.add_user_cli(args.name, password, role)
                print(f"Added {role} '{args.name}'.")
            elif args.users_command == "passwd":
                accounts.set_password_cli(
                    args.name, _read_password(f"New password for {args.name}: ")
                )
                print(f"Password changed for '{args.name}'.")
            elif args.users_command in ("disable", "enable"):
                accounts.set_disabled_cli(args.name, args.users_command == "disable")
                print(f"User '{args.name}' {args.users_command}d.")
            else:
                print(f"{'name':<24} {'role':<6} {'status':<9} created")
                for record in accounts.list_users_cli():
                    status = "disabled" if record.disabled else "active"
                    print(f"{record.name:<24} {record.role:<6} {status:<9} {record.created_at}")
        except AccountError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


def serve(settings: Settings) -> int:
    from backend.chat.conversation_import import MAX_IMPORT_BYTES
    from backend.services import Services
    from ui import build_ui, launch_options
    from ui.http_guards import launch_options as guard_options

    services = Services.build(settings)
    password = services.accounts.ensure_first_admin(settings.admin_password)
    if password:
        print(
            "\n  No users yet: created admin user 'admin' with password\n\n"
            f"      {password}\n\n  Sign in and add users in the Admin tab "
            "(or: python app.py users add NAME). This is shown once.\n",
            flush=True,
        )
    print(f"Engine: {services.engine.name} — {services.engine_reason}", flush=True)
    services.start()
    demo = build_ui(services)
    # Chat turns wait in the fair line (positions, Stop, the busy message), never in Gradio's
    # queue: it and the worker threads are sized above what the line can hold.
    demo.queue(default_concurrency_limit=8, max_size=services.chat_concurrency + 64)
    try:
        demo.launch(
            server_name=settings.host,
            server_port=settings.port,
            auth=services.accounts.authenticate,
            auth_message="Sign in to Hearth.",
            ssr_mode=False,
            show_error=False,
            max_threads=services.chat_concurrency + 40,  # a waiting turn holds a worker thread
            max_file_size=MAX_IMPORT_BYTES,  # refused with 413 while the upload is read
            **launch_options(),
            **guard_options(services.accounts),  # sessions that end, login origin and throttle
        )
    finally:
        services.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        parser.error(str(exc))
    if args.command == "users":
        return run_users(args, settings)
    if args.command == "estimate":
        from backend.estimate.cli import run
        from backend.services import CATALOG_PATH

        return run(args, CATALOG_PATH)
    return serve(settings)


if __name__ == "__main__":
    raise SystemExit(main())
