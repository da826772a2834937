"""Hearth's OpenAI-compatible API driven with the official openai SDK, against the real app on
the embedded engine: models, completions (streamed and not) and their usage, keys, limits,
refusals in OpenAI's shape, and a client that leaves mid-stream."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from backend.auth import CLI, ApiKeys, UserAdmin
from backend.engines.embedded import bundled_model_path
from backend.estimate.gguf_spec import spec_from_gguf
from backend.store.database import Store
from tests.support.app_process import AppProcess
from tests.support.openai_api import MODEL, api_usage, db_path, metric, new_user_key, sdk

QUESTION = [{"role": "user", "content": "Name three colours."}]


def test_models_lists_the_engines_models_with_their_trained_context(app_server: AppProcess):
    _, _, key = new_user_key(app_server)
    models = sdk(app_server, key).models.list().data
    path = bundled_model_path()
    assert path is not None
    assert [m.id for m in models] == [MODEL]
    assert models[0].object == "model" and models[0].owned_by == "hearth"
    assert models[0].model_extra["context_length"] == spec_from_gguf(path).context_length


def test_a_completion_reports_the_usage_hearth_recorded_and_keeps_no_chat(app_server):
    user_id, _, key = new_user_key(app_server)
    reply = sdk(app_server, key).chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=8, seed=7, temperature=0
    )
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    assert reply.model == MODEL and len(reply.choices) == 1
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage is not None and usage.completion_tokens > 0  # llama.cpp's own count
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert api_usage(app_server, user_id) == (1, usage.prompt_tokens, usage.completion_tokens, 0)
    with Store(db_path(app_server)) as store:
        assert store.count_conversations(user_id) == 0


def test_a_stream_is_openais_chunks_then_usage_then_done(app_server):
    user_id, _, key = new_user_key(app_server)
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 8, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    with httpx.stream("POST", f"{app_server.url}/v1/chat/completions", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {key}"}) as response:  # fmt: skip
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: {") for e in events[:-2])
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and {c["model"] for c in chunks} == {MODEL}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    *content, finish, last = chunks[1:]
    assert content and all(set(c["choices"][0]["delta"]) == {"content"} for c in content)
    assert finish["choices"][0]["finish_reason"] in ("stop", "length")
    assert all(c["usage"] is None for c in chunks[:-1])
    assert len(content) <= 8  # at most max_tokens tokens, one or more per chunk
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0
    used = last["usage"]
    recorded = (1, used["prompt_tokens"], used["completion_tokens"], 0)
    assert api_usage(app_server, user_id) == recorded


def test_the_sdk_streams_and_the_text_matches_the_chunks(app_server):
    _, _, key = new_user_key(app_server)
    stream = sdk(app_server, key).chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=8, stream=True
    )
    chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.usage is None for c in chunks)  # usage only when stream_options asks
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()


def test_store_true_keeps_the_exchange_as_a_chat(app_server):
    user_id, _, key = new_user_key(app_server)
    reply = sdk(app_server, key).chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, *QUESTION],
        max_tokens=6, store=True,
    )  # fmt: skip
    with Store(db_path(app_server)) as store:
        (chat,) = store.list_conversations(user_id)
        messages = store.messages(user_id, chat.id)
    assert chat.system_prompt == "Be brief."
    answer = reply.choices[0].message.content
    assert [(m.role, m.content) for m in messages] == [
        ("user", QUESTION[0]["content"]),
        ("assistant", answer),
    ]


def test_stop_sequences_end_the_reply_before_them(app_server):
    _, _, key = new_user_key(app_server)
    reply = sdk(app_server, key).chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=40, stop=["e", "E"]
    )
    assert "e" not in reply.choices[0].message.content.lower()


@pytest.mark.parametrize(
    ("change", "param"),
    [({"temperature": 5}, "temperature"), ({"max_tokens": -1}, "max_tokens"),
     ({"messages": [{"role": "assistant", "content": "hi"}]}, None),
     ({"messages": [{"role": "user", "content": "a\x00b"}]}, None),
     ({"stop": ["a", "b", "c", "d", "e"]}, "stop"), ({"n": 2}, "n"),
     ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools")],
)  # fmt: skip
def test_invalid_input_is_400_in_openais_shape(app_server, change, param):
    user_id, _, key = new_user_key(app_server)
    request = {"model": MODEL, "messages": QUESTION, **change}
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(app_server, key).chat.completions.create(**request)
    error = refused.value.body
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param
    assert api_usage(app_server, user_id)[0] == 0  # refused before the line: nothing recorded


def test_an_unknown_model_is_404(app_server):
    _, _, key = new_user_key(app_server)
    with pytest.raises(openai.NotFoundError) as refused:
        sdk(app_server, key).chat.completions.create(model="no-such:1b", messages=QUESTION)
    assert refused.value.body["code"] == "model_not_found"
    assert refused.value.body["param"] == "model"


@pytest.mark.parametrize("key", ["", "sk-not-ours", "hearth-" + "x" * 43])
def test_a_bad_key_is_401(app_server, key):
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk(app_server, key or "none").models.list()
    assert refused.value.body["code"] == "invalid_api_key"


def test_a_revoked_key_is_401_at_once(app_server):
    user_id, name, key = new_user_key(app_server)
    client = sdk(app_server, key)
    assert client.models.list().data
    with Store(db_path(app_server)) as store:
        (mine,) = store.list_api_keys(user_id)
        ApiKeys(store).revoke(_user(store, name), mine.id)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model=MODEL, messages=QUESTION)
    assert "revoked" in refused.value.body["message"]


def test_a_disabled_users_key_is_401_at_once(app_server):
    _, name, key = new_user_key(app_server)
    client = sdk(app_server, key)
    assert client.models.list().data
    with Store(db_path(app_server)) as store:
        UserAdmin(store).set_disabled(CLI, name, True)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.models.list()
    assert "disabled" in refused.value.body["message"]


def test_over_the_daily_quota_is_429_with_retry_after(app_server):
    user_id, _, key = new_user_key(app_server)
    with Store(db_path(app_server)) as store:
        store.set_limits(user_id=user_id, values={"reply_tokens_per_day": 1}, updated_by="test")
    client = sdk(app_server, key)
    first = client.chat.completions.create(model=MODEL, messages=QUESTION)
    assert first.usage is not None and first.usage.completion_tokens >= 1  # capped to the budget
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model=MODEL, messages=QUESTION)
    retry_after = int(refused.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 86_400  # seconds to 00:00 UTC
    assert refused.value.body["code"] == "insufficient_quota"


def test_a_client_that_leaves_mid_stream_frees_the_engine_within_a_second(app_server):
    user_id, _, key = new_user_key(app_server)
    counting = [{"role": "user", "content": "Count from 1 to 1000, one per line."}]
    body = {"model": MODEL, "stream": True, "max_tokens": 3000, "messages": counting}
    with httpx.stream("POST", f"{app_server.url}/v1/chat/completions", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {key}"}) as response:  # fmt: skip
        lines = response.iter_lines()
        for _ in range(6):  # the role chunk and some content
            next(lines)
        assert metric(app_server, "hearth_chat_running") == 1
    left = time.monotonic()
    while metric(app_server, "hearth_chat_running") != 0 and time.monotonic() - left < 5:
        time.sleep(0.05)
    freed_s = time.monotonic() - left
    assert freed_s < 1.0, f"the engine was still busy {freed_s:.2f} s after the client left"
    deadline = time.monotonic() + 5
    while api_usage(app_server, user_id)[3] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the stopped reply's usage is written as the turn ends
    assert api_usage(app_server, user_id)[3] == 1  # recorded as stopped, like the page's Stop
    _, _, other = new_user_key(app_server)
    quick = sdk(app_server, other).chat.completions.create(model=MODEL, messages=QUESTION,
                                                         max_tokens=2)  # fmt: skip
    assert quick.usage is not None and quick.usage.completion_tokens >= 1


def _user(store: Store, name: str):
    from backend.auth import User

    record = store.get_user_by_name(name)
    assert record is not None
    return User(record.id, record.name, record.role)  # type: ignore[arg-type]
