"""Helpers for driving Hearth's /v1 API with the official openai SDK against the real app."""

from __future__ import annotations

import re
import secrets
import urllib.request
from pathlib import Path

import openai

from backend.auth import CLI, ApiKeys, UserAdmin
from backend.store.database import Store
from tests.support.app_process import AppProcess

MODEL = "smollm2:135m"


def db_path(app: AppProcess) -> Path:
    return app.data_dir / "hearth.db"


def new_user_key(app: AppProcess, role: str = "staff") -> tuple[int, str, str]:
    """A fresh user (its own usage rows and limits) and a key of theirs: (id, name, key)."""
    name = f"u{secrets.token_hex(4)}"
    with Store(db_path(app)) as store:
        user = UserAdmin(store).add_user(CLI, name, "pass-word-123", role)  # type: ignore[arg-type]
        key = ApiKeys(store).create(user, "tests").secret
    return user.id, name, key


def sdk(app: AppProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=key, max_retries=0, timeout=180)


def api_usage(app: AppProcess, user_id: int) -> tuple[int, int, int, int]:
    """(requests, prompt tokens, reply tokens, stopped) the usage table holds for 'api'."""
    with Store(db_path(app)) as store:
        rows = [r for r in store.iter_usage("2000-01-01", "2999-12-31", user_id)
                if r.source == "api"]  # fmt: skip
    return (sum(r.requests for r in rows), sum(r.prompt_tokens for r in rows),
            sum(r.reply_tokens for r in rows), sum(r.stopped for r in rows))  # fmt: skip


def metric(app: AppProcess, name: str) -> float:
    """One unlabelled sample of /metrics."""
    text = urllib.request.urlopen(f"{app.url}/metrics", timeout=5).read().decode()
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))
