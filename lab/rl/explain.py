"""Show the arithmetic: a state's Bellman backup with the actual numbers, and the last TD/MC update at a state.

The backup follows Sutton & Barto's equations (3.14 for v_pi, 3.19 for v_*): for each action, each outcome's
probability times (reward + gamma * value of the next state), the bootstrap dropped when the outcome terminates;
then the policy-weighted sum (evaluation) or the max (optimality). `format_*` turn them into Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lab.rl.env import TabularEnv
from lab.rl.td import Update


@dataclass
class Term:
    """One outcome of one action: prob * (reward + gamma * [not terminated] * V[next])."""

    prob: float
    next_state: int
    reward: float
    terminated: bool
    v_next: float
    value: float


@dataclass
class ActionBackup:
    action: int
    pi: float | None  # the policy's probability (evaluation), None for the max backup
    terms: list[Term]
    q: float


@dataclass
class Backup:
    state: int
    gamma: float
    kind: str  # 'expectation' (sum over pi) or 'optimality' (max over actions)
    actions: list[ActionBackup]
    result: float


def bellman_backup(env: TabularEnv, V: np.ndarray, s: int, gamma: float, policy: np.ndarray | None = None) -> Backup:
    """The backup of state s from values V: expectation under `policy` (S x A), or the max when policy is None."""
    if not 0 <= s < env.n_states:
        raise ValueError(f"state must be in 0..{env.n_states - 1}; got {s}")
    actions = []
    for a, outs in enumerate(env.P[s]):
        terms = []
        for p, ns, r, t in outs:
            v_next = 0.0 if t else float(V[ns])
            terms.append(Term(p, ns, r, t, v_next, p * (r + gamma * v_next)))
        pi = None if policy is None else float(policy[s, a])
        actions.append(ActionBackup(a, pi, terms, sum(term.value for term in terms)))
    if policy is None:
        result = max(ab.q for ab in actions)
        kind = "optimality"
    else:
        result = sum(ab.pi * ab.q for ab in actions)
        kind = "expectation"
    return Backup(s, gamma, kind, actions, result)


def _state_name(env: TabularEnv, s: int) -> str:
    if env.shape is None:
        return f"s{s}"
    r, c = env.cell(s)
    return f"({r},{c})"


def format_backup(env: TabularEnv, b: Backup) -> str:
    """Markdown: one line per action with each outcome's numbers, then the sum or max."""
    name = _state_name(env, b.state)
    lines = [f"**Bellman {b.kind} backup of state {name}** (gamma = {b.gamma:g})", ""]
    if b.state in env.terminal:
        lines.append("Terminal state: no reward follows, V = 0.")
    for ab in b.actions:
        parts = []
        for t in ab.terms:
            boot = "0 (terminated)" if t.terminated else f"{b.gamma:g} × {t.v_next:.3f}"
            parts.append(f"{t.prob:.3g} × ({t.reward:g} + {boot}) [→ {_state_name(env, t.next_state)}]")
        pi = "" if ab.pi is None else f"π = {ab.pi:.3f}, "
        lines.append(f"- **{env.action_names[ab.action]}**: {pi}q = " + " + ".join(parts) + f" = **{ab.q:.3f}**")
    if b.kind == "optimality":
        qs = ", ".join(f"{ab.q:.3f}" for ab in b.actions)
        lines += ["", f"V({name}) = max({qs}) = **{b.result:.3f}**"]
    else:
        ws = " + ".join(f"{ab.pi:.3f} × {ab.q:.3f}" for ab in b.actions if ab.pi)
        lines += ["", f"V({name}) = Σ π q = {ws} = **{b.result:.3f}**"]
    return "\n".join(lines)


def format_update(env: TabularEnv, u: Update) -> str:
    """Markdown for one sampled update: value <- old + step × (target − old), with target's parts."""
    s, s2 = _state_name(env, u.state), _state_name(env, u.next_state)
    lhs = f"Q({s}, {env.action_names[u.action]})" if u.action is not None else f"V({s})"
    boot = "0 (terminated)" if u.terminated else f"{u.gamma:g} × {u.bootstrap:.3f}  [{u.bootstrap_label}]"
    return "\n".join([
        f"**Last update at {s}**: took {env.action_names[u.action] if u.action is not None else 'an action'}, "
        f"got reward {u.reward:g}, reached {s2}",
        "",
        f"- target = r + γ·next = {u.reward:g} + {boot} = **{u.target:.3f}**",
        f"- {lhs} ← {u.old:.3f} + {u.step:.3g} × ({u.target:.3f} − {u.old:.3f}) = **{u.new:.3f}**",
    ])
