"""Finite MDPs as data: `P[s][a] = [(prob, next_state, reward, terminated)]`, as Gymnasium's toy_text environments.

Algorithms take only a `TabularEnv`, so a test can hand-write a two-state MDP and every gridworld preset is just a
way of filling `P`. Terminal states follow Gymnasium: acting in one yields `(1.0, s, 0.0, True)`; the bootstrap of
every backup is masked with `terminated`, so nothing assumes terminals loop to themselves.

`Outcomes` flattens `P` into numpy arrays once, padded to (S, A, K) with K the most outcomes any (s, a) has (3 for
slippery grids), so a backup of every state is K gathers and sums: a sparse matrix-vector product without scipy.
`q_from_v` returns a transposed (S, A) view of an (A, S) array: maxima over actions then run over long rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

Transition = tuple[float, int, float, bool]

# Gymnasium's FrozenLake/CliffWalking action order; slips go to (a - 1) % 4 and (a + 1) % 4, the perpendiculars.
ACTION_NAMES = ("left", "down", "right", "up")
ACTION_DELTAS = ((0, -1), (1, 0), (0, 1), (-1, 0))


@dataclass(frozen=True)
class Outcomes:
    """P flattened: outcome i belongs to (state sa[i] // n_actions, action sa[i] % n_actions)."""

    sa: np.ndarray  # (N,) int: s * n_actions + a
    prob: np.ndarray  # (N,) float
    next_state: np.ndarray  # (N,) int
    reward: np.ndarray  # (N,) float
    terminated: np.ndarray  # (N,) bool
    expected_reward: np.ndarray  # (S, A): sum_i prob * reward
    pad_next: np.ndarray  # (K, A, S) next states, outcomes padded to the most any (s, a) has
    pad_continue: np.ndarray  # (K, A, S) prob * (not terminated); 0 for padding
    reward_as: np.ndarray  # (A, S) expected reward, in the layout the backups use


@dataclass(frozen=True, eq=False)
class TabularEnv:
    """A finite MDP. `shape` (rows, cols) lays states out row-major for drawing; None for abstract MDPs."""

    n_states: int  # number of states, indexed 0 .. n_states - 1
    n_actions: int  # number of actions, indexed 0 .. n_actions - 1
    P: list  # P[s][a] = list of (prob, next_state, reward, terminated)
    start: int = 0  # the state every episode starts in
    shape: tuple[int, int] | None = None  # grid layout (rows, cols) with n_states == rows * cols
    action_names: tuple[str, ...] | None = None  # one name per action; None: grid names for 4 actions, else a0, a1..
    max_steps: int | None = None  # episode limit (truncation, as Gymnasium's TimeLimit); None: no limit
    terminal: frozenset = frozenset()  # states that end the episode (drawn dark, value 0)

    def __post_init__(self) -> None:
        if self.n_states < 1 or self.n_actions < 1:
            raise ValueError(f"n_states and n_actions must be >= 1; got {self.n_states}, {self.n_actions}")
        if len(self.P) != self.n_states or any(len(row) != self.n_actions for row in self.P):
            raise ValueError(f"P must be indexed P[s][a] with {self.n_states} states and {self.n_actions} actions")
        if not 0 <= self.start < self.n_states:
            raise ValueError(f"start must be a state in 0..{self.n_states - 1}; got {self.start}")
        if self.shape is not None and self.shape[0] * self.shape[1] != self.n_states:
            raise ValueError(f"shape {self.shape} does not hold {self.n_states} states")
        if self.action_names is None:
            names = ACTION_NAMES if self.n_actions == 4 else tuple(f"a{i}" for i in range(self.n_actions))
            object.__setattr__(self, "action_names", names)
        if len(self.action_names) != self.n_actions:
            raise ValueError(f"action_names needs {self.n_actions} names; got {len(self.action_names)}")
        for s, row in enumerate(self.P):
            for a, outs in enumerate(row):
                total = sum(p for p, *_ in outs)
                if not outs or abs(total - 1.0) > 1e-6:
                    raise ValueError(f"P[{s}][{a}] probabilities must sum to 1; they sum to {total:.6f}")
                if any(not 0 <= ns < self.n_states for _, ns, _, _ in outs):
                    raise ValueError(f"P[{s}][{a}] names a next state outside 0..{self.n_states - 1}")

    @cached_property
    def outcomes(self) -> Outcomes:
        rows = [
            (s * self.n_actions + a, p, ns, r, t)
            for s, row in enumerate(self.P)
            for a, outs in enumerate(row)
            for p, ns, r, t in outs
        ]
        sa, prob, ns, rew, term = (np.array(col) for col in zip(*rows))
        n_sa = self.n_states * self.n_actions
        expected = np.bincount(sa, weights=prob * rew, minlength=n_sa)
        slot = np.arange(len(sa)) - np.searchsorted(sa, sa)  # position of each outcome within its (s, a)
        pad_next = np.zeros((n_sa, slot.max() + 1), dtype=np.int64)
        pad_continue = np.zeros((n_sa, slot.max() + 1))
        pad_next[sa, slot] = ns
        pad_continue[sa, slot] = prob * ~term.astype(bool)
        shape = (self.n_states, self.n_actions, -1)
        # (K, A, S) layout: reductions over K and A become sums/maxima of a few long contiguous rows, which numpy
        # does far faster than reducing a short last axis
        as_kas = lambda x: np.ascontiguousarray(x.reshape(shape).transpose(2, 1, 0))  # noqa: E731
        return Outcomes(
            sa=sa.astype(np.int64),
            prob=prob.astype(float),
            next_state=ns.astype(np.int64),
            reward=rew.astype(float),
            terminated=term.astype(bool),
            expected_reward=expected.reshape(self.n_states, self.n_actions),
            pad_next=as_kas(pad_next),
            pad_continue=as_kas(pad_continue),
            reward_as=np.ascontiguousarray(expected.reshape(self.n_states, self.n_actions).T),
        )

    @cached_property
    def sampler(self) -> list:
        """Per (s, a): a tuple of outcomes, with cumulative probabilities, for fast sampling in Python loops."""
        table = []
        for row in self.P:
            per_action = []
            for outs in row:
                cum, acc = [], 0.0
                for p, ns, r, t in outs:
                    acc += p
                    cum.append((acc, int(ns), float(r), bool(t)))
                per_action.append(tuple(cum))
            table.append(per_action)
        return table

    def q_from_v(self, V: np.ndarray, gamma: float) -> np.ndarray:
        """One-step lookahead: Q[s, a] = sum p * (r + gamma * (1 - terminated) * V[s']), for all s, a at once."""
        o = self.outcomes
        future = o.pad_continue[0] * V[o.pad_next[0]]
        for k in range(1, len(o.pad_next)):
            future += o.pad_continue[k] * V[o.pad_next[k]]
        return (o.reward_as + gamma * future).T

    def step(self, s: int, a: int, rng: np.random.Generator) -> tuple[int, float, bool]:
        """Sample (next_state, reward, terminated); draws from rng only when the outcome is random."""
        outs = self.sampler[s][a]
        if len(outs) == 1:
            return outs[0][1:]
        u = rng.random() * outs[-1][0]
        for cum, ns, r, t in outs:
            if u < cum:
                return ns, r, t
        return outs[-1][1:]

    def cell(self, s: int) -> tuple[int, int]:
        """(row, col) of state s in the grid layout."""
        cols = self.shape[1] if self.shape else self.n_states
        return divmod(s, cols)


def greedy_probs(Q: np.ndarray, atol: float = 1e-9) -> np.ndarray:
    """The greedy policy as probabilities, ties sharing the mass equally (what the arrows show)."""
    best = Q >= Q.max(axis=1, keepdims=True) - atol
    return best / best.sum(axis=1, keepdims=True)


def argmax_random(values, rng: np.random.Generator) -> int:
    """Index of the largest value, ties broken uniformly at random with the passed generator."""
    m = max(values)
    best = [i for i, v in enumerate(values) if v == m]
    return best[0] if len(best) == 1 else best[int(rng.integers(len(best)))]
