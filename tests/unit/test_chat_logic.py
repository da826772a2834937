import pytest

from backend.chat.turns import estimate_tokens, fit_history, make_title
from backend.engines.base import ChatMessage


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("What is the capital of France?", "What is the capital of France?"),
        ("  first line\nsecond line", "first line"),
        ("", "New chat"),
        (
            "Explain, step by step, how a transformer decoder produces the next token of a reply",
            "Explain, step by step, how a transformer decoder produces…",
        ),
    ],
)
def test_title_is_the_first_line_cut_at_a_word(question, title):
    assert make_title(question) == title
    assert len(make_title(question)) <= 60


def _turns(count: int, size: int) -> list[ChatMessage]:
    roles = ("user", "assistant")
    return [ChatMessage(roles[i % 2], f"{i} " + "x" * size) for i in range(count)]


def test_short_history_is_kept_whole_with_the_system_prompt_first():
    history = _turns(5, 10)
    messages, dropped = fit_history("Be brief.", history, num_ctx=4096, reserve_tokens=512)
    assert dropped == 0
    assert messages[0] == ChatMessage("system", "Be brief.")
    assert messages[1:] == history


def test_oldest_turns_are_dropped_to_fit_and_counted():
    history = _turns(21, 700)  # ~200 tokens each
    messages, dropped = fit_history("Be brief.", history, num_ctx=2048, reserve_tokens=512)
    assert dropped > 0
    assert messages[0].role == "system"
    assert messages[-1] == history[-1]
    assert messages[1].role == "user", "the prompt must not start on an orphaned reply"
    assert len(messages) - 1 + dropped == len(history)
    budget = 2048 - 512
    assert sum(estimate_tokens(m.content) for m in messages) <= budget


def test_the_question_is_kept_even_when_it_alone_is_too_long():
    history = [ChatMessage("user", "y" * 100_000)]
    messages, dropped = fit_history("", history, num_ctx=512, reserve_tokens=128)
    assert messages == history
    assert dropped == 0


def _paced(items, gap_s):
    import time

    for item in items:
        time.sleep(gap_s)
        yield item


def test_fast_deltas_are_merged_without_losing_text_or_order():
    from backend.chat.turns import TurnFinished, coalesce_deltas
    from backend.engines.base import ChatDelta

    finished = TurnFinished(reply=None)
    events = [ChatDelta(c) for c in "abcdefghij"] + [finished]
    out = list(coalesce_deltas(_paced(events, 0.001), min_interval_s=0.05))
    deltas = [e for e in out if isinstance(e, ChatDelta)]
    assert "".join(d.text for d in deltas) == "abcdefghij"
    assert deltas[0].text == "a", "the first token must not wait"
    assert len(deltas) < 10
    assert out[-1] is finished


def test_slow_deltas_pass_one_by_one():
    from backend.chat.turns import coalesce_deltas
    from backend.engines.base import ChatDelta

    events = [ChatDelta(c) for c in "abc"]
    out = list(coalesce_deltas(_paced(events, 0.03), min_interval_s=0.01))
    assert [d.text for d in out] == ["a", "b", "c"]
