"""A daily reply-token quota with the real embedded engine: the count the quota adds up is the
engine's own, and a reply capped at what is left uses exactly that."""

from __future__ import annotations

import pytest

from backend.auth import CLI, UserAdmin
from backend.chat.limits import LimitReached, TurnLimits
from backend.chat.turns import ChatService, TurnSettings
from backend.engines.base import ChatOptions
from backend.engines.embedded import BUNDLED_MODEL_NAME
from tests.support.chat_service import model_service

STORY = "Write a long story about a lighthouse keeper and a storm."
SETTINGS = TurnSettings(BUNDLED_MODEL_NAME, "", ChatOptions(temperature=0.0, num_ctx=2048, seed=1))


def test_a_quota_is_spent_to_the_token_and_then_refused(store, embedded_engine, tmp_path):
    users = UserAdmin(store)
    root = users.add_user(CLI, "root", "root-pass-123", "admin")
    staff = users.add_user(CLI, "staff", "staff-pass-123", "staff")
    limits = TurnLimits(store, users)
    admission = model_service(store, embedded_engine, tmp_path).chat
    chat = ChatService(store, lambda: embedded_engine, admission, limits=limits)
    limits.set_for_role(root, "staff", {"reply_tokens_per_day": 12})
    reply = list(chat.send(staff, None, STORY, SETTINGS))[-1].reply
    assert reply.tokens_out == 12, "capped at the quota, and counted as generated"
    assert store.reply_tokens_on(staff.id, limits.today()) == 12
    with pytest.raises(LimitReached, match="You have used your 12 reply tokens for today"):
        list(chat.send(staff, None, "And then?", SETTINGS))
