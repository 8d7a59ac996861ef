"""Dynamic programming on a known model: policy evaluation, policy iteration, value iteration.

Sutton & Barto ch. 4: iterative policy evaluation (4.1, synchronous "two-array" and in-place sweeps), policy
iteration (4.3), value iteration (4.4). The synchronous backups are vectorised over all states and actions at once
through `TabularEnv.q_from_v` (a weighted bincount over the flattened transitions), so a 100x100 world is a handful of
array operations per sweep. The in-place variant is inherently sequential (each state sees values updated earlier in
the same sweep), so it loops over states in Python and is meant for small worlds.

Every function yields one `Sweep` record per sweep (values, greedy policy, delta) so the UI can animate them; the
`*_result` helpers run to the end and return the history. Greedy policies share probability equally among tied
actions (the arrows show ties); agents that act break ties at random with their own generator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lab.rl.env import TabularEnv, greedy_probs

TIE_ATOL = 1e-6


@dataclass
class DPConfig:
    """Settings of the dynamic-programming algorithms."""

    gamma: float = 1.0  # discount, in [0, 1]; 1 needs episodes that end (terminal states reachable)
    theta: float = 1e-6  # stop when the largest value change of a sweep is below theta, >= 0
    max_sweeps: int = 1000  # hard limit on sweeps, 1..1_000_000 (also the horizon when theta is 0)
    in_place: bool = False  # policy evaluation: update values in place (Gauss-Seidel) instead of two arrays

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1]; got {self.gamma}")
        if self.theta < 0:
            raise ValueError(f"theta must be >= 0; got {self.theta}")
        if not 1 <= self.max_sweeps <= 1_000_000:
            raise ValueError(f"max_sweeps must be in 1..1000000; got {self.max_sweeps}")


@dataclass
class Sweep:
    """One sweep of a DP algorithm."""

    k: int  # sweeps done so far (1-based), counting every evaluation sweep
    V: np.ndarray  # (S,) state values after the sweep
    V_before: np.ndarray  # (S,) values the sweep's backups read (the inspector shows this arithmetic)
    policy: np.ndarray  # (S, A) action probabilities: the policy evaluated, or the greedy policy
    delta: float  # largest absolute value change in this sweep
    phase: str  # 'evaluation', 'improvement' or 'value iteration'
    done: bool = False  # True on the last record


@dataclass
class DPResult:
    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray
    sweeps: list[Sweep]

    @property
    def deltas(self) -> list[float]:
        return [s.delta for s in self.sweeps]


def uniform_policy(env: TabularEnv) -> np.ndarray:
    """The equiprobable random policy."""
    return np.full((env.n_states, env.n_actions), 1.0 / env.n_actions)


def _in_place_sweep(env: TabularEnv, policy: np.ndarray, V: np.ndarray, gamma: float) -> None:
    for s in range(env.n_states):
        total = 0.0
        for a, outs in enumerate(env.P[s]):
            if policy[s, a]:
                q = sum(p * (r + (0.0 if t else gamma * V[ns])) for p, ns, r, t in outs)
                total += policy[s, a] * q
        V[s] = total


def policy_evaluation(
    env: TabularEnv, policy: np.ndarray, cfg: DPConfig, V0: np.ndarray | None = None, k0: int = 0
) -> Iterator[Sweep]:
    """Iterative policy evaluation of `policy` (S x A probabilities): one record per sweep until delta < theta."""
    V = np.zeros(env.n_states) if V0 is None else np.array(V0, dtype=float)
    for k in range(k0 + 1, k0 + cfg.max_sweeps + 1):
        before = V.copy()
        if cfg.in_place:
            _in_place_sweep(env, policy, V, cfg.gamma)
        else:
            V = (policy * env.q_from_v(V, cfg.gamma)).sum(axis=1)
        delta = float(np.max(np.abs(V - before)))
        done = delta < cfg.theta or k == k0 + cfg.max_sweeps
        yield Sweep(k=k, V=V.copy(), V_before=before, policy=policy, delta=delta, phase="evaluation", done=done)
        if done:
            return


def policy_iteration(env: TabularEnv, cfg: DPConfig, max_iterations: int = 100) -> Iterator[Sweep]:
    """Evaluate, improve greedily, repeat until the greedy policy stops changing (ties compared as sets)."""
    policy = uniform_policy(env)
    V = np.zeros(env.n_states)
    k = 0
    for _ in range(max_iterations):
        for sweep in policy_evaluation(env, policy, cfg, V0=V, k0=k):
            k, V = sweep.k, sweep.V
            sweep.done = False
            yield sweep
        new_policy = greedy_probs(env.q_from_v(V, cfg.gamma), atol=TIE_ATOL)
        stable = bool(np.array_equal(new_policy > 0, policy > 0))
        policy = new_policy
        yield Sweep(k=k, V=V.copy(), V_before=V.copy(), policy=policy, delta=0.0, phase="improvement", done=stable)
        if stable:
            return


def value_iteration(env: TabularEnv, cfg: DPConfig) -> Iterator[Sweep]:
    """V <- max_a sum p (r + gamma V'), all states at once, until delta < theta (or max_sweeps: a finite horizon)."""
    V = np.zeros(env.n_states)
    for k in range(1, cfg.max_sweeps + 1):
        Q = env.q_from_v(V, cfg.gamma)
        new_V = Q.max(axis=1)
        delta = float(np.max(np.abs(new_V - V)))
        done = delta < cfg.theta or k == cfg.max_sweeps
        policy = greedy_probs(env.q_from_v(new_V, cfg.gamma), atol=TIE_ATOL)
        yield Sweep(k=k, V=new_V, V_before=V, policy=policy, delta=delta, phase="value iteration", done=done)
        V = new_V
        if done:
            return


def value_iteration_fast(env: TabularEnv, cfg: DPConfig) -> DPResult:
    """Value iteration without per-sweep policies (for big worlds): only V and delta per sweep are kept."""
    V = np.zeros(env.n_states)
    sweeps = []
    for k in range(1, cfg.max_sweeps + 1):
        new_V = env.q_from_v(V, cfg.gamma).max(axis=1)
        delta = float(np.max(np.abs(new_V - V)))
        done = delta < cfg.theta or k == cfg.max_sweeps
        sweeps.append(Sweep(k=k, V=new_V, V_before=V, policy=np.empty((0, 0)), delta=delta, phase="value iteration",
                            done=done))
        V = new_V
        if done:
            break
    Q = env.q_from_v(V, cfg.gamma)
    return DPResult(V=V, Q=Q, policy=greedy_probs(Q, atol=TIE_ATOL), sweeps=sweeps)


def run_to_end(env: TabularEnv, sweeps: Iterator[Sweep], gamma: float) -> DPResult:
    """Collect a sweep iterator into a DPResult with the final V, Q and policy."""
    history = list(sweeps)
    last = history[-1]
    return DPResult(V=last.V, Q=env.q_from_v(last.V, gamma), policy=last.policy, sweeps=history)
