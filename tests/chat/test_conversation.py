"""Conversation helpers: messages, context trimming, blind sides, and paired streaming with a failing backend."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lab.chat.conversation import assign_sides, build_messages, stream_pair, trim_to_context


def words(messages):  # a stand-in token counter: one token per word plus two per message
    return sum(len(m["content"].split()) + 2 for m in messages)


def test_build_messages_adds_system_history_and_refuses_empty_prompt():
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello", "metadata": {}}]
    msgs = build_messages("  Be brief. ", history, "and now?")
    assert msgs == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"}, {"role": "user", "content": "and now?"}]
    assert build_messages("", [], "x") == [{"role": "user", "content": "x"}]
    for empty in ("", "   \n"):
        with pytest.raises(ValueError, match="empty"):
            build_messages("sys", history, empty)


def test_trim_drops_oldest_turns_keeps_system_and_last_user():
    msgs = [{"role": "system", "content": "s s"}]
    for i in range(4):
        msgs += [{"role": "user", "content": f"u{i} " * 5}, {"role": "assistant", "content": f"a{i} " * 5}]
    msgs.append({"role": "user", "content": "last one"})
    full = trim_to_context(msgs, words, 1000)
    assert full.dropped_turns == 0 and full.messages == msgs and full.note == ""
    t = trim_to_context(msgs, words, 4 + 4 + 2 * 7)  # room for system, last user, one exchange
    assert t.messages == [msgs[0], msgs[-3], msgs[-2], msgs[-1]]
    assert t.dropped_turns == 6 and t.prompt_tokens <= 22 and "6 oldest turn" in t.note
    assert t.messages[1]["role"] == "user"  # the window never starts with an assistant turn


def test_trim_refuses_a_prompt_that_cannot_fit():
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "word " * 50}]
    with pytest.raises(ValueError, match="too long: 55 tokens"):
        trim_to_context(msgs, words, 20)


def test_blind_assignment_is_a_seeded_fair_coin():
    draws = [assign_sides(np.random.default_rng([7, r]), True) for r in range(400)]
    assert draws == [assign_sides(np.random.default_rng([7, r]), True) for r in range(400)]
    assert 150 < sum(draws) < 250
    assert not any(assign_sides(np.random.default_rng(r), False) for r in range(50))


def slow_stream(parts, delay, fail_after=None):
    def start():
        for i, p in enumerate(parts):
            if fail_after is not None and i == fail_after:
                raise RuntimeError("backend crashed")
            time.sleep(delay)
            yield p
    return start


def collect(items):
    text = {"a": "", "b": ""}
    for item in items:
        text["a"] += item.delta_a
        text["b"] += item.delta_b
    return text, items[-1]


def test_stream_pair_runs_both_at_once():
    t0 = time.perf_counter()
    items = list(stream_pair(slow_stream(["a"] * 10, 0.05), slow_stream(["b"] * 10, 0.05)))
    elapsed = time.perf_counter() - t0
    text, last = collect(items)
    assert text == {"a": "a" * 10, "b": "b" * 10}
    assert last.done_a and last.done_b and last.error_a is None and last.error_b is None
    assert elapsed < 0.85  # concurrent: about 0.5 s, sequential would be 1.0 s
    # both panes advanced before either finished
    first_both = next(i for i, it in enumerate(items) if collect(items[: i + 1])[0]["b"])
    assert not items[first_both].done_a


def test_one_failing_pane_does_not_break_the_other():
    items = list(stream_pair(slow_stream(["x"] * 5, 0.01, fail_after=2), slow_stream(["y"] * 8, 0.02)))
    text, last = collect(items)
    assert text == {"a": "xx", "b": "y" * 8}
    assert last.error_a == "RuntimeError: backend crashed" and last.error_b is None
    assert last.done_a and last.done_b
    failed_at = next(i for i, it in enumerate(items) if it.error_a)
    assert not items[failed_at].done_b  # B kept streaming after A failed

    def broken_start():
        raise ConnectionError("model not loaded")

    _, last = collect(list(stream_pair(broken_start, slow_stream(["ok"], 0))))
    assert last.error_a == "ConnectionError: model not loaded" and last.error_b is None


def test_closing_early_stops_the_workers():
    stopped = threading.Event()

    def endless():
        try:
            while True:
                time.sleep(0.01)
                yield "."
        finally:
            stopped.set()

    gen = stream_pair(endless, endless)
    next(gen)
    gen.close()
    assert stopped.wait(2.0)
