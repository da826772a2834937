"""Import limits and malformed files, through ConversationService on a real SQLite file.

Every refusal names the number or the value at fault and leaves nothing stored.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from backend.chat.conversations import (
    MAX_IMPORT_BYTES,
    MAX_IMPORT_MESSAGES,
    MAX_MESSAGE_CHARS,
    OPEN_NEWEST_MESSAGES,
    ConversationService,
    InvalidExport,
    hidden_messages_note,
)
from backend.store.database import Store
from tests.support.conversation_exports import export, turns


@pytest.fixture
def history(store: Store) -> ConversationService:
    return ConversationService(store)


def assert_nothing_stored(store: Store, owner_id: int) -> None:
    assert store.count_conversations(owner_id) == 0
    assert store._one("SELECT count(*) FROM messages")[0] == 0


def test_too_many_messages_are_refused_with_both_numbers(history, store, alice):
    with pytest.raises(InvalidExport, match=r"holds 5,001 messages; .* at most 5,000\."):
        history.import_json(alice, export(turns(MAX_IMPORT_MESSAGES + 1)))
    assert_nothing_stored(store, alice.id)


def test_the_largest_allowed_import_is_stored_whole_and_in_order(history, store, alice):
    imported = history.import_json(alice, export(turns(MAX_IMPORT_MESSAGES)))
    assert imported.message_count == MAX_IMPORT_MESSAGES
    stored = store.messages(alice.id, imported.id)
    assert [m.content for m in stored] == [f"m{i}" for i in range(MAX_IMPORT_MESSAGES)]


def test_a_message_over_the_length_limit_is_refused(history, store, alice):
    messages = [*turns(2), {"role": "user", "content": "x" * (MAX_MESSAGE_CHARS + 1)}]
    with pytest.raises(InvalidExport, match=r"Message 3 is 100,001 characters long; .*100,000"):
        history.import_json(alice, export(messages))
    assert_nothing_stored(store, alice.id)


def test_a_file_over_the_size_limit_is_refused_before_parsing(history, store, alice):
    raw = b" " * (MAX_IMPORT_BYTES + 1)  # not even JSON: the size is checked first
    with pytest.raises(InvalidExport, match=r"5,242,881 bytes; .* 5,242,880 bytes \(5 MiB\)"):
        history.import_json(alice, raw)
    assert_nothing_stored(store, alice.id)


NESTED = b"[" * 100_000
MALFORMED: dict[str, tuple[Any, str]] = {
    "nested arrays": (NESTED, "nested too deeply"),
    "nested objects": (b'{"a":' * 100_000, "nested too deeply"),
    "nested inside messages": (export([]).replace(b'"messages": []', b'"messages": ' + NESTED),
                               "nested too deeply"),
    "not UTF-8": (b'{"format": "\xff\xfe"}', "not valid JSON"),
    "a 5,000-digit number": (b'{"version": ' + b"9" * 5000 + b"}", "not valid JSON"),
    "a lone surrogate": (export([{"role": "user", "content": "\ud800"}]),
                         "Message 1 holds text that is not valid Unicode"),
    "a surrogate in the title": (export([], title="\udfff"), "The title holds text"),
    "a huge token count": (export([{"role": "user", "content": "x", "tokens_in": 10**30}]),
                           "Message 1 has tokens_in 1000000000000000000000000000000"),
    "an infinite time to first token": (
        b'{"format": "hearth.conversation", "version": 1, "conversation": {}, "messages":'
        b' [{"role": "user", "content": "x", "ttft_ms": Infinity}]}',
        "Message 1 has ttft_ms inf; expected a finite number",
    ),
    "a time out of range": (export([{"role": "user", "content": "x",
                                     "created_at": "0001-01-01T00:00:00+01:00"}]),
                            "Message 1 has time '0001-01-01T00:00:00\\+01:00'"),
    "a time that is a list": (export([], created_at=[1, 2]), "The conversation has time"),
    "a temperature that is text": (export([], options={"temperature": "hot"}),
                                   "The option temperature is 'hot'"),
    "a context length of -1": (export([], options={"num_ctx": -1}), "The option num_ctx is -1"),
    "messages that is an object": (export([]).replace(b'"messages": []', b'"messages": {}'),
                                   "no 'messages' list"),
    "a number instead of a file": (42, "takes the file's bytes, got int"),
    "nothing": (None, "takes the file's bytes, got NoneType"),
    "a text with a lone surrogate": ('{"format": "\ud800"}', "not valid UTF-8"),
}  # fmt: skip


@pytest.mark.parametrize(("raw", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_file_gets_a_readable_error_and_stores_nothing(
    history, store, alice, raw, message
):
    with pytest.raises(InvalidExport, match=message):
        history.import_json(alice, raw)
    assert_nothing_stored(store, alice.id)


def test_unknown_options_are_dropped_and_known_ones_kept(history, alice):
    options = {"temperature": 0.5, "num_ctx": 4096, "from_a_newer_version": [1, 2]}
    imported = history.import_json(alice, export(turns(2), options=options))
    assert imported.options == {"temperature": 0.5, "num_ctx": 4096}


def test_a_long_title_is_cut_not_refused(history, alice):
    imported = history.import_json(alice, export(turns(2), title="t" * 5000))
    assert imported.title == "t" * 200


def test_opening_a_long_chat_reads_only_the_newest_messages(history, store, alice):
    imported = history.import_json(alice, export(turns(OPEN_NEWEST_MESSAGES + 50)))
    conversation, shown = history.open(alice, imported.id)
    assert [m.content for m in shown] == [f"m{i}" for i in range(50, OPEN_NEWEST_MESSAGES + 50)]
    assert hidden_messages_note(conversation, len(shown)) == (
        "Showing the newest 200 of 250 messages; export the chat to read all of it."
    )
    exported = json.loads(history.export_json(alice, imported.id))
    assert len(exported["messages"]) == OPEN_NEWEST_MESSAGES + 50  # exports stay whole


def test_opening_a_short_chat_shows_everything_without_a_note(history, alice):
    imported = history.import_json(alice, export(turns(3)))
    conversation, shown = history.open(alice, imported.id)
    assert [m.content for m in shown] == ["m0", "m1", "m2"]
    assert hidden_messages_note(conversation, len(shown)) == ""
