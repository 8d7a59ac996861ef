"""Arena statistics on hand-made votes whose answers are known, and the Wilson interval against published values."""

from __future__ import annotations

import pytest

from lab.chat.prefs import Vote
from lab.chat.stats import arena_stats, pair_table, summary_markdown, wilson_interval, win_rate_figure

Q = [{"role": "user", "content": "q"}]


def v(vote, swapped=False, blind=True, a="short", b="a longer answer", adapter_b="/runs/r1/adapter", **kw):
    return Vote(prefix=Q, response_a=a, response_b=b, model_a="embedded", model_b="embedded", adapter_b=adapter_b,
                vote=vote, swapped=swapped, blind=blind, **kw)


def test_wilson_interval_matches_published_values():
    # Brown, Cai & DasGupta (2001) / standard tables: 8 of 10 -> [0.490, 0.943]; 0 of 10 -> [0, 0.278]
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-3)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_counts_rates_and_biases():
    votes = [
        v("a"),  # left shows A (short): A wins, left wins, shorter wins
        v("a", swapped=True),  # left shows B (longer): B wins, left wins, longer wins
        v("b", swapped=True),  # right shows A: A wins, left loses, shorter wins
        v("b", blind=False),  # not blind: B wins, longer wins; no position-bias count
        v("tie"),
        v("both_bad"),
    ]
    s = arena_stats(votes)
    assert s.total == 6
    (pair,) = s.pairs
    assert pair.first == "embedded" and pair.second == "embedded + r1/adapter"
    assert (pair.votes, pair.first_wins, pair.second_wins, pair.ties, pair.both_bad) == (6, 2, 2, 1, 1)
    assert pair.first_win_rate.rate == 0.5
    assert (s.ties.k, s.ties.n) == (1, 6) and (s.both_bad.k, s.both_bad.n) == (1, 6)
    assert (s.position_bias.k, s.position_bias.n) == (2, 3)
    assert (s.length_bias.k, s.length_bias.n) == (2, 4)


def test_pairs_are_unordered_and_same_model_sides_are_told_apart_by_sampling():
    votes = [
        v("a", adapter_b=None, params_a={"temperature": 0.2}, params_b={"temperature": 1.0}),
        v("b", adapter_b=None, params_a={"temperature": 0.2}, params_b={"temperature": 1.0}),
        v("a", adapter_b="/runs/r1/adapter"),
        Vote(prefix=Q, response_a="x", response_b="y", model_a="embedded", adapter_a="/runs/r1/adapter",
             model_b="embedded", vote="b"),  # same pair written the other way round: base wins
    ]
    s = arena_stats(votes)
    assert len(s.pairs) == 2
    adapter_pair = next(p for p in s.pairs if "adapter" in p.second)
    assert (adapter_pair.votes, adapter_pair.first_wins, adapter_pair.second_wins) == (2, 2, 0)
    sampling_pair = next(p for p in s.pairs if "T=" in p.first)
    assert "T=0.2" in sampling_pair.first and "T=1.0" in sampling_pair.second
    assert (sampling_pair.first_wins, sampling_pair.second_wins) == (1, 1)


def test_empty_and_presentation():
    s = arena_stats([])
    assert s.total == 0 and s.pairs == [] and s.position_bias.rate is None
    assert "0 votes" in summary_markdown(s) and "n/a" in summary_markdown(s)
    s = arena_stats([v("a"), v("a"), v("b")])
    (row,) = pair_table(s)
    assert row[:6] == ["embedded vs embedded + r1/adapter", 3, 2, 1, 0, 0] and row[6].startswith("67%")
    fig = win_rate_figure(s)
    assert fig.data[0].y == (pytest.approx(2 / 3),)
