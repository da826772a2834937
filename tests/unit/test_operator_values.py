"""Small facts of the operator features: the bearer check, their settings, the reply marker."""

from __future__ import annotations

import pytest

from backend.settings import Settings, SettingsError, from_env
from backend.store.records import Message
from ui.chat.render import reply_markdown
from ui.operator_routes import bearer_matches


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),  # the scheme is case-insensitive (RFC 9110)
        ("Bearer s3cret ", True),
        ("Bearer s3cre", False),
        ("Bearer s3cretX", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        ("", False),
        (None, False),
        ("Bearer ☃", False),
    ],
)
def test_bearer_matches_only_the_exact_token(header, matches):
    assert bearer_matches(header, "s3cret") is matches


def test_shutdown_grace_and_metrics_token_come_from_the_environment():
    settings = from_env({"HEARTH_SHUTDOWN_GRACE_S": "2.5", "HEARTH_METRICS_TOKEN": "t0ken"})
    assert (settings.shutdown_grace_s, settings.metrics_token) == (2.5, "t0ken")
    assert "t0ken" not in repr(settings), "the token stays out of logs"
    assert Settings().shutdown_grace_s == 10.0 and Settings().metrics_token is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [("soon", "shutdown_grace_s must be a number"), ("-1", "0 to 3600 s"),
     ("nan", "0 to 3600 s"), ("86400", "0 to 3600 s")],
)  # fmt: skip
def test_a_bad_shutdown_grace_names_the_setting(raw, message):
    with pytest.raises(SettingsError, match=message):
        from_env({"HEARTH_SHUTDOWN_GRACE_S": raw})


def test_an_interrupted_reply_is_marked_with_its_reason_under_its_text():
    reply = Message(7, 1, "assistant", "w0 w1 w2", "m", "2025-01-01", "interrupted",
                    "Hearth was shut down before this reply was finished.")  # fmt: skip
    shown = reply_markdown(reply)
    assert shown.startswith("w0 w1 w2")
    assert "‖ Interrupted: Hearth was shut down before this reply was finished." in shown
