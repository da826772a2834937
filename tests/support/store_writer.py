"""Child process for the store's kill test: writes chat turns forever, printing each message id.

    python -m tests.support.store_writer DB_PATH USER_NAME

A line is printed (and flushed) only after add_message has returned, so every printed id is
one the store acknowledged as committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from backend.store.database import Store


def main(path: Path, user_name: str) -> None:
    store = Store(path)
    user = store.get_user_by_name(user_name) or store.create_user(user_name, "staff", "hash")
    chat = store.create_conversation(user.id, title="kill test")
    turn = 0
    while True:
        turn += 1
        for role in ("user", "assistant"):
            message = store.add_message(
                user.id, chat.id, role=role, content=f"turn {turn} {role} " + "words " * 50
            )
            print(message.id, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
