"""The admin check that leaves a trace: a refused admin action writes a `refused` audit row."""

from __future__ import annotations

from backend.auth.types import PermissionDenied, User, require_admin
from backend.store.database import Store

MAX_LOGGED_TEXT = 64  # a name or target typed by a caller is audited, cut to this


def require_admin_audited(
    store: Store, actor: User | None, what: str, *, action: str, target: str = ""
) -> User:
    """require_admin, writing a `refused` audit row (who, action, target) when it refuses."""
    try:
        return require_admin(actor, what)
    except PermissionDenied as exc:
        target = cut(target.encode("utf-8", "replace").decode("utf-8"))
        store.audit(actor=actor.name if actor else "?", action=action, target=target,
                    outcome="refused", detail=str(exc))  # fmt: skip
        raise


def logged_name(name: str | None) -> str:
    """A name typed at the login form, as the audit log keeps it."""
    return cut((name or "").strip() or "?")


def cut(text: str) -> str:
    return text if len(text) <= MAX_LOGGED_TEXT else text[:MAX_LOGGED_TEXT] + "…"
