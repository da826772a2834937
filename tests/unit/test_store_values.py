"""Pure helpers of the store: timestamps, input checks, full-text query building."""

from __future__ import annotations

import math
import sqlite3

import pytest

from backend.store.values import (
    MAX_QUERY_WORDS,
    check_choice,
    check_limit,
    check_number,
    dump_options,
    fts_query,
    message_row,
    now_iso,
    utc_iso,
)


def test_now_iso_is_utc_with_fixed_width() -> None:
    stamp = now_iso()
    assert stamp.endswith("+00:00")
    assert len(stamp) == len("2025-01-01T00:00:00.000000+00:00")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2025-03-01T12:00:00", "2025-03-01T12:00:00.000000+00:00"),
        ("2025-03-01T12:00:00Z", "2025-03-01T12:00:00.000000+00:00"),
        ("2025-03-01T14:30:00+02:00", "2025-03-01T12:30:00.000000+00:00"),
        ("2025-03-01", "2025-03-01T00:00:00.000000+00:00"),
    ],
)
def test_utc_iso_normalises_to_utc(given: str, expected: str) -> None:
    assert utc_iso(given) == expected


def test_utc_iso_names_the_bad_value() -> None:
    with pytest.raises(ValueError, match="'yesterday'"):
        utc_iso("yesterday")


def test_check_choice_names_value_and_choices() -> None:
    with pytest.raises(ValueError, match=r"role must be one of admin, staff, got 'root'"):
        check_choice("role", "root", ("admin", "staff"))


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (-1, 0), (10, -1)])
def test_check_limit_rejects_non_positive_limit_and_negative_offset(
    limit: int, offset: int
) -> None:
    with pytest.raises(ValueError):
        check_limit(limit, offset)


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, "3", True])
def test_check_number_rejects_negative_non_finite_and_non_numbers(value: object) -> None:
    with pytest.raises(ValueError, match="ttft_ms"):
        check_number("ttft_ms", value)


def test_dump_options_rejects_non_json_values() -> None:
    with pytest.raises(ValueError, match="JSON"):
        dump_options({"when": object()})


def test_dump_options_rejects_non_dict() -> None:
    with pytest.raises(ValueError, match=r"\[1, 2\]"):
        dump_options([1, 2])


def test_fts_query_returns_none_without_words() -> None:
    assert fts_query(1, ' "*- ( ) ') is None


def test_fts_query_quotes_words_and_prefixes_the_last() -> None:
    assert fts_query(7, "capital of Fra") == (
        'owner_id : "7" AND content : ("capital" AND "of" AND "Fra"*)'
    )


def test_fts_query_caps_the_number_of_words() -> None:
    query = fts_query(1, " ".join(f"w{i}" for i in range(100)))
    assert query is not None
    assert query.count('"w') == MAX_QUERY_WORDS


HOSTILE = [
    '"',
    "AND(",
    "*",
    "-",
    "NEAR(a b)",
    "a OR",
    "col:x",
    "^start",
    "'; DROP TABLE x; --",
    '"unterminated',
    "x AND AND y",
    "{owner_id}: 2",
    "\\",
    "ünïcödé ß",
    "🙂 emoji",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_fts_query_is_valid_fts5_syntax_for_hostile_input(text: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(content, owner_id)")
    conn.execute("INSERT INTO t VALUES ('some words', '1')")
    query = fts_query(1, text)
    if query is not None:
        conn.execute("SELECT * FROM t WHERE t MATCH ?", (query,)).fetchall()


def test_message_row_fills_defaults() -> None:
    row = message_row(3, 0, {"role": "user", "content": "hi"}, "2025-01-01T00:00:00.000000+00:00")
    assert row == (3, "user", "hi", "", "2025-01-01T00:00:00.000000+00:00", "complete", "",
                   None, None, None, None)  # fmt: skip


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        ({"role": "robot", "content": "x"}, "Message 2: role .* 'robot'"),
        ({"role": "user"}, "Message 2: content must be text, got None"),
        ({"role": "user", "content": "x", "status": "lost"}, "Message 2: status .* 'lost'"),
        ({"role": "user", "content": "x", "tokens_out": -5}, "Message 2: tokens_out .* -5"),
        ({"role": "user", "content": "x", "created_at": "soon"}, "Message 2: 'soon'"),
        ("not a dict", "Message 2 must be a dictionary"),
    ],
)
def test_message_row_names_the_message_and_the_bad_value(message: object, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        message_row(1, 1, message, "2025-01-01T00:00:00.000000+00:00")
