"""One browser's arena state: sides, hiding names, voting only on finished answers, regenerate and new rounds."""

from __future__ import annotations

import pytest

from lab.chat.arena import PaneConfig
from lab.chat.conversation import PairDelta
from lab.chat.session import ArenaSession
from lab.generation.base import SamplingParams

BASE = PaneConfig("embedded", None, SamplingParams(temperature=0.7))
TUNED = PaneConfig("embedded", "/lab/runs/r1/adapter", SamplingParams(temperature=0.7))


def answer(s: ArenaSession, a="answer A", b="answer B", error_a=None):
    s.apply(PairDelta(a[:3], b[:3], False, False, None, None))
    assert not s.can_vote  # still streaming
    s.apply(PairDelta(a[3:], b[3:], True, True, error_a, None))


def blind_seed(swapped: bool) -> int:
    """A seed whose first round puts setup A on the side asked for."""
    for seed in range(100):
        s = ArenaSession()
        s.begin_turn("", "q", BASE, TUNED, True, seed)
        if s.swapped == swapped:
            return seed
    raise AssertionError("no seed found")


def test_blind_round_hides_names_until_the_vote_and_resolves_sides():
    s = ArenaSession()
    messages_a, _ = s.begin_turn("Be nice.", "Hello?", BASE, TUNED, True, blind_seed(True))
    assert messages_a == [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hello?"}]
    answer(s)
    assert s.swapped and s.can_vote
    assert s.display("a")[-1]["content"] == "answer B"  # left window shows setup B
    assert "hidden" in s.label("a") and "hidden" in s.label("b")
    vote = s.to_vote("a", "browser-1")  # the user prefers the left window...
    assert vote.winner == "b" and vote.response_b == "answer B"  # ...which was setup B
    assert vote.swapped and vote.blind and vote.session_id == "browser-1" and vote.prefix == messages_a
    assert vote.params_a["temperature"] == 0.7
    s.voted = True
    assert "r1/adapter" in s.label("a") and "embedded (T=0.7)" == s.label("b").split(": ", 1)[1]
    with pytest.raises(ValueError, match="not twice"):
        s.to_vote("b", "browser-1")


def test_not_blind_shows_names_and_never_swaps():
    s = ArenaSession()
    s.begin_turn("", "q", BASE, TUNED, False, 0)
    answer(s)
    assert not s.swapped and s.label("b").endswith("r1/adapter (T=0.7)")


def test_failed_pane_shows_the_error_and_blocks_voting():
    s = ArenaSession()
    s.begin_turn("", "q", BASE, TUNED, False, 0)
    answer(s, error_a="RuntimeError: boom")
    assert not s.can_vote and "**Error:** RuntimeError: boom" in s.display("a")[-1]["content"]
    assert s.display("b")[-1]["content"] == "answer B"
    with pytest.raises(ValueError, match="both answers have finished"):
        s.to_vote("b", "x")


def test_multi_turn_regenerate_and_new_round():
    s = ArenaSession()
    s.begin_turn("", "first", BASE, TUNED, True, blind_seed(False))
    with pytest.raises(ValueError, match="streaming"):
        s.begin_turn("", "too early", BASE, TUNED, True, 0)
    answer(s, "A one", "B one")
    messages_a, messages_b = s.begin_turn("", "second", BASE, TUNED, False, 1)
    assert s.blind and not s.swapped  # blind and sides are fixed for the whole round
    assert messages_a[1]["content"] == "A one" and messages_b[1]["content"] == "B one"  # each its own history
    answer(s, "A two", "B two")
    vote = s.to_vote("tie", "x")
    assert vote.prefix[1]["content"] == "A one" and vote.prefix_b[1]["content"] == "B one"
    assert s.last_prompt() == "second" and len(s.history_a) == 2
    s.new_round()
    assert not s.started and s.rounds == 1 and s.generations == 2
    with pytest.raises(ValueError, match="Nothing to regenerate"):
        s.last_prompt()
    with pytest.raises(ValueError, match="empty"):
        s.begin_turn("", "  ", BASE, TUNED, True, 0)
    assert not s.started  # a refused prompt leaves no trace
