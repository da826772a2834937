"""The Ollama test server's wire format helpers write what Go's encoding/json writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.ollama_server_state import (
    FOREVER,
    BadRequest,
    go_json,
    go_time,
    normalise_name,
    parse_keep_alive,
)


def test_go_json_is_compact_with_go_floats_and_html_escapes() -> None:
    value = {"eps": 1e-05, "base": 500000.0, "text": "<|im_end|> & é", "none": None, "ok": True}

    assert (
        go_json(value)
        == (
            '{"eps":0.00001,"base":500000,"text":"\\u003c|im_end|\\u003e \\u0026 é",'
            '"none":null,"ok":true}'
        ).encode()
    )


def test_go_time_trims_the_fraction_and_uses_z() -> None:
    assert go_time(datetime(2024, 9, 12, 21, 17, 29, 110810, tzinfo=UTC)) == (
        "2024-09-12T21:17:29.11081Z"
    )
    assert go_time(datetime(2024, 9, 12, 21, 17, 29, tzinfo=UTC)) == "2024-09-12T21:17:29Z"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        (0, timedelta(0)),
        ("0", timedelta(0)),
        (300, timedelta(minutes=5)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5s", timedelta(seconds=1.5)),
        (-1, FOREVER),
        ("-1m", FOREVER),
    ],
)
def test_keep_alive_parses_like_ollama(raw: object, expected: timedelta | None) -> None:
    assert parse_keep_alive(raw) == expected


def test_keep_alive_without_unit_is_rejected_with_the_value() -> None:
    with pytest.raises(BadRequest, match='"5"'):
        parse_keep_alive("5")


def test_names_default_to_latest_and_ignore_case() -> None:
    assert normalise_name("Llama3") == "llama3:latest"
    assert normalise_name("llama3:8b") == "llama3:8b"
