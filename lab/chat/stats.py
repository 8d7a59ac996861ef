"""Arena statistics: votes per model pair, win rates with confidence intervals, and the biases of human judges.

Win rates use the Wilson score interval (Wilson 1927; recommended over the normal approximation for small counts by
Brown, Cai & DasGupta 2001, "Interval Estimation for a Binomial Proportion"), computed over decisive votes only
(ties and 'both bad' say nothing about which side is better). Two judge biases known from LLM arenas (Zheng et al.
2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena"): position bias, the share of blind decisive votes that
went to the left pane (0.5 when there is none), and length bias, the share of decisive votes that went to the
longer answer.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from lab.chat.prefs import Vote


@dataclass
class Proportion:
    """k successes out of n trials, with its Wilson 95% interval."""

    k: int
    n: int
    low: float = field(init=False)
    high: float = field(init=False)

    def __post_init__(self) -> None:
        self.low, self.high = wilson_interval(self.k, self.n)

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (0, 1) when n is 0."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n; got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def adapter_name(path: str) -> str:
    """Short name of an adapter folder; training runs save to runs/<run>/adapter, so those are named by the run."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.name == "adapter" and p.parent.name else p.name


def side_label(vote: Vote, side: str) -> str:
    """Readable name of one configuration: model, adapter folder name, and the temperature when both sides share
    model and adapter (the arena's 'same model, different sampling' setup)."""
    model, adapter = (vote.model_a, vote.adapter_a) if side == "a" else (vote.model_b, vote.adapter_b)
    label = model if adapter is None else f"{model} + {adapter_name(adapter)}"
    if (vote.model_a, vote.adapter_a) == (vote.model_b, vote.adapter_b):
        params = vote.params_a if side == "a" else vote.params_b
        label += f" (T={params.get('temperature', '?')}, side {side.upper()})"
    return label


@dataclass
class PairStats:
    """Votes between two configurations, `first` and `second` in sorted label order."""

    first: str
    second: str
    votes: int = 0
    first_wins: int = 0
    second_wins: int = 0
    ties: int = 0
    both_bad: int = 0

    @property
    def first_win_rate(self) -> Proportion:
        """Share of decisive votes won by `first`."""
        return Proportion(self.first_wins, self.first_wins + self.second_wins)


@dataclass
class ArenaStats:
    """Everything the statistics panel shows."""

    total: int
    pairs: list[PairStats]
    ties: Proportion  # share of all votes that were ties
    both_bad: Proportion  # share of all votes that were 'both bad'
    position_bias: Proportion  # blind decisive votes that went to the left pane
    length_bias: Proportion  # decisive votes (answers of different length) won by the longer answer


def arena_stats(votes: Iterable[Vote]) -> ArenaStats:
    votes = list(votes)
    pairs: dict[tuple[str, str], PairStats] = {}
    counts = defaultdict(int)
    for v in votes:
        la, lb = side_label(v, "a"), side_label(v, "b")
        first, second = sorted((la, lb))
        pair = pairs.setdefault((first, second), PairStats(first, second))
        pair.votes += 1
        pair.ties += v.vote == "tie"
        pair.both_bad += v.vote == "both_bad"
        winner = v.winner
        if winner is not None:
            won_label = la if winner == "a" else lb
            if won_label == first:
                pair.first_wins += 1
            else:
                pair.second_wins += 1
            if v.blind:
                counts["blind_decisive"] += 1
                counts["left_won"] += v.vote == "a"
            longer = _longer_side(v)
            if longer is not None:
                counts["length_decisive"] += 1
                counts["longer_won"] += longer == winner
    n = len(votes)
    return ArenaStats(
        total=n,
        pairs=sorted(pairs.values(), key=lambda p: -p.votes),
        ties=Proportion(sum(v.vote == "tie" for v in votes), n),
        both_bad=Proportion(sum(v.vote == "both_bad" for v in votes), n),
        position_bias=Proportion(counts["left_won"], counts["blind_decisive"]),
        length_bias=Proportion(counts["longer_won"], counts["length_decisive"]),
    )


def _longer_side(vote: Vote) -> str | None:
    la, lb = len(vote.response_a), len(vote.response_b)
    return None if la == lb else ("a" if la > lb else "b")


def _fmt(p: Proportion) -> str:
    return "n/a" if p.rate is None else f"{p.rate:.0%} [{p.low:.0%}, {p.high:.0%}] (n={p.n})"


def pair_table(stats: ArenaStats) -> list[list]:
    """Rows for a table: pair, votes, wins each side, ties, both bad, win rate of the first with its interval."""
    return [
        [f"{p.first} vs {p.second}", p.votes, p.first_wins, p.second_wins, p.ties, p.both_bad, _fmt(p.first_win_rate)]
        for p in stats.pairs
    ]


def summary_markdown(stats: ArenaStats) -> str:
    return (
        f"**{stats.total} votes** · ties {_fmt(stats.ties)} · both bad {_fmt(stats.both_bad)}  \n"
        f"Position bias (left pane wins, blind votes; 50% = none): {_fmt(stats.position_bias)}  \n"
        f"Length bias (longer answer wins): {_fmt(stats.length_bias)}"
    )


def win_rate_figure(stats: ArenaStats):
    """Plotly bar chart of each pair's first-side win rate with Wilson error bars."""
    import plotly.graph_objects as go

    names, rates, lo, hi = [], [], [], []
    for p in stats.pairs:
        wr = p.first_win_rate
        names.append(f"{p.first}<br>vs {p.second}")
        rate = wr.rate if wr.rate is not None else 0.5
        rates.append(rate)
        lo.append(rate - wr.low)
        hi.append(wr.high - rate)
    fig = go.Figure(
        go.Bar(x=names, y=rates, error_y=dict(type="data", array=hi, arrayminus=lo), marker_color="#4c78a8")
    )
    fig.add_hline(y=0.5, line_dash="dot", line_color="gray")
    fig.update_layout(
        title="Win rate of the first model in each pair (95% Wilson interval, decisive votes)",
        yaxis=dict(range=[0, 1], tickformat=".0%"),
        height=360,
        margin=dict(l=40, r=20, t=50, b=80),
    )
    return fig
