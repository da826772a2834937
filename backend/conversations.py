"""A user's conversation history: list, open, rename, delete, search, export and import."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from backend.accounts import User
from backend.store import Conversation, Message, SearchHit, Store

EXPORT_FORMAT = "hearth.conversation"
EXPORT_VERSION = 1
MAX_IMPORT_BYTES = 20 * 1024 * 1024
_ROLES = ("system", "user", "assistant")
_STATUSES = ("complete", "stopped", "error")


class InvalidExport(ValueError):
    """An import file that is not a Hearth conversation export; nothing was written."""


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[Conversation]
    total: int
    page: int  # 1-based
    pages: int


class ConversationService:
    """Every method takes the acting user and reaches only that user's rows."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def page(self, user: User, page: int = 1, per_page: int = 20) -> ConversationPage:
        total = self._store.count_conversations(user.id)
        pages = max((total + per_page - 1) // per_page, 1)
        page = min(max(page, 1), pages)
        rows = self._store.list_conversations(user.id, limit=per_page, offset=(page - 1) * per_page)
        return ConversationPage(rows, total, page, pages)

    def open(self, user: User, conversation_id: int) -> tuple[Conversation, list[Message]]:
        conversation = self._store.get_conversation(user.id, conversation_id)
        return conversation, self._store.messages(user.id, conversation_id)

    def rename(self, user: User, conversation_id: int, title: str) -> Conversation:
        title = " ".join(title.split())
        if not title:
            raise ValueError("A title cannot be empty.")
        return self._store.rename_conversation(user.id, conversation_id, title[:200])

    def delete(self, user: User, conversation_id: int) -> None:
        self._store.delete_conversation(user.id, conversation_id)

    def search(self, user: User, query: str, limit: int = 20) -> list[SearchHit]:
        if not query.strip():
            return []
        return self._store.search(user.id, query, limit=limit)

    # -- export / import -----------------------------------------------------------------

    def export_json(self, user: User, conversation_id: int) -> str:
        conversation, messages = self.open(user, conversation_id)
        document = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": datetime.now(UTC).isoformat(),
            "conversation": {
                "title": conversation.title,
                "model": conversation.model,
                "system_prompt": conversation.system_prompt,
                "options": conversation.options,
                "created_at": conversation.created_at,
                "updated_at": conversation.updated_at,
            },
            "messages": [_message_dict(m) for m in messages],
        }
        return json.dumps(document, ensure_ascii=False, indent=2)

    def export_markdown(self, user: User, conversation_id: int) -> str:
        conversation, messages = self.open(user, conversation_id)
        lines = [f"# {conversation.title}", ""]
        lines.append(f"- Model: `{conversation.model or 'unknown'}`")
        lines.append(f"- Started: {conversation.created_at}")
        if conversation.system_prompt:
            lines.append(f"- System prompt: {conversation.system_prompt}")
        for message in messages:
            lines += ["", f"## {message.role.capitalize()}", "", message.content]
            if message.status != "complete":
                lines += [
                    "",
                    f"*({message.status}{': ' + message.error if message.error else ''})*",
                ]
        return "\n".join(lines) + "\n"

    def import_json(self, user: User, raw: bytes | str) -> Conversation:
        """Import an export made by export_json; all or nothing, with a clear error."""
        document = _parse_export(raw)
        meta = document["conversation"]
        return self._store.import_conversation(
            user.id,
            title=str(meta.get("title") or "Imported chat")[:200],
            model=str(meta.get("model") or ""),
            system_prompt=str(meta.get("system_prompt") or ""),
            options=meta.get("options") if isinstance(meta.get("options"), dict) else {},
            messages=[_checked_message(i, m) for i, m in enumerate(document["messages"], 1)],
            created_at=meta.get("created_at"),
        )


def _message_dict(message: Message) -> dict[str, Any]:
    data = asdict(message)
    data.pop("id")
    data.pop("conversation_id")
    return data


def _parse_export(raw: bytes | str) -> dict[str, Any]:
    if len(raw) > MAX_IMPORT_BYTES:
        raise InvalidExport(f"The file is {len(raw):,} bytes; imports are limited to 20 MB.")
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidExport(f"The file is not valid JSON ({exc}).") from exc
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise InvalidExport("The file is not a Hearth conversation export (no 'format' marker).")
    if document.get("version") != EXPORT_VERSION:
        raise InvalidExport(f"Unsupported export version {document.get('version')!r}.")
    if not isinstance(document.get("conversation"), dict):
        raise InvalidExport("The export has no 'conversation' object.")
    if not isinstance(document.get("messages"), list):
        raise InvalidExport("The export has no 'messages' list.")
    return document


def _checked_message(index: int, message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise InvalidExport(f"Message {index} is not an object.")
    role, content = message.get("role"), message.get("content")
    if role not in _ROLES:
        raise InvalidExport(f"Message {index} has role {role!r}; expected one of {_ROLES}.")
    if not isinstance(content, str):
        raise InvalidExport(f"Message {index} has no text content.")
    status = message.get("status", "complete")
    if status not in _STATUSES:
        raise InvalidExport(f"Message {index} has status {status!r}; expected one of {_STATUSES}.")
    keep = ("model", "created_at", "error", "ttft_ms", "tokens_in", "tokens_out", "tokens_per_s")
    return {"role": role, "content": content, "status": status} | {
        k: message[k] for k in keep if message.get(k) is not None
    }
