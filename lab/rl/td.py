"""Model-free learning from sampled episodes: first-visit MC control, TD(0), Sarsa, Expected Sarsa, Q-learning.

Sutton & Barto: on-policy first-visit MC control for epsilon-soft policies (5.4), tabular TD(0) prediction (6.1),
Sarsa (6.4), Q-learning (6.5), Expected Sarsa (6.6). The environment is only sampled (`TabularEnv.step`), never read.
Bootstraps are masked with `terminated`; hitting the episode limit (truncation) just stops, keeping the bootstrap.

Each algorithm is a generator yielding one `Episode` record: the values after the episode, its trajectory, return and
length, and the last update made at each state (the inspector shows that arithmetic). The inner loops use Python
lists rather than numpy rows: per-step work on 4 numbers is far cheaper in plain Python than through numpy calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from lab.rl.env import TabularEnv, argmax_random


@dataclass
class AgentConfig:
    """Settings of the sampling (model-free) algorithms."""

    gamma: float = 1.0  # discount, in [0, 1]
    alpha: float = 0.5  # step size, in (0, 1]; the actor's step size for policy gradients
    epsilon: float = 0.1  # exploration of the epsilon-greedy / epsilon-soft policy, in [0, 1]
    epsilon_decay: float = 1.0  # epsilon is multiplied by this after each episode, in (0, 1]
    min_epsilon: float = 0.0  # floor for the decayed epsilon, in [0, epsilon]
    episodes: int = 500  # number of episodes, 1..100_000
    max_steps: int = 10_000  # per-episode step limit (the world's own limit applies if smaller), >= 1
    alpha_critic: float = 0.1  # step size of the learned state values (baseline / critic), in [0, 1]
    seed: int = 0  # seed of the numpy Generator that drives exploration and the environment

    def __post_init__(self) -> None:
        checks = [
            ("gamma", 0.0 <= self.gamma <= 1.0, "[0, 1]"),
            ("alpha", 0.0 < self.alpha <= 1.0, "(0, 1]"),
            ("epsilon", 0.0 <= self.epsilon <= 1.0, "[0, 1]"),
            ("epsilon_decay", 0.0 < self.epsilon_decay <= 1.0, "(0, 1]"),
            ("min_epsilon", 0.0 <= self.min_epsilon <= self.epsilon, "[0, epsilon]"),
            ("episodes", 1 <= self.episodes <= 100_000, "1..100000"),
            ("max_steps", self.max_steps >= 1, ">= 1"),
            ("alpha_critic", 0.0 <= self.alpha_critic <= 1.0, "[0, 1]"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name} must be in {allowed}; got {getattr(self, name)}")

    def epsilon_at(self, episode: int) -> float:
        return max(self.min_epsilon, self.epsilon * self.epsilon_decay**episode)


@dataclass
class Update:
    """One learning update at `state`: value <- old + step * (target - old)."""

    state: int
    action: int | None  # None for state-value updates (TD(0), critics)
    reward: float
    next_state: int
    terminated: bool
    bootstrap: float  # the estimate of the next state used in the target (0 when terminated)
    bootstrap_label: str  # how it was formed, e.g. 'max_a Q(s\', a)'
    gamma: float
    step: float  # alpha, or 1/N for Monte Carlo averages
    old: float
    target: float
    new: float


@dataclass
class Episode:
    """What one episode did and left behind."""

    index: int  # 0-based episode number
    V: np.ndarray  # (S,) state values (max_a Q for control methods)
    Q: np.ndarray | None  # (S, A) action values, None for state-value methods
    policy: np.ndarray  # (S, A) the (greedy or softmax) policy after the episode
    states: list[int]  # visited states, start to end
    actions: list[int]
    rewards: list[float]
    epsilon: float
    updates: dict[int, Update] = field(default_factory=dict)  # last update per state in this episode

    @property
    def return_(self) -> float:
        return float(sum(self.rewards))

    @property
    def steps(self) -> int:
        return len(self.actions)


def epsilon_greedy(q_row: list, epsilon: float, rng: np.random.Generator) -> int:
    if epsilon > 0 and rng.random() < epsilon:
        return int(rng.integers(len(q_row)))
    return argmax_random(q_row, rng)


def epsilon_greedy_probs(Q: np.ndarray, epsilon: float) -> np.ndarray:
    """epsilon/|A| everywhere plus 1 - epsilon shared by the greedy (tied) actions."""
    best = Q >= Q.max(axis=1, keepdims=True)
    return epsilon / Q.shape[1] + (1 - epsilon) * best / best.sum(axis=1, keepdims=True)


def episode_limit(env: TabularEnv, cfg: AgentConfig) -> int:
    return min(cfg.max_steps, env.max_steps or cfg.max_steps)


def _record(i, Q, states, actions, rewards, eps, updates) -> Episode:
    q = np.array(Q)
    best = q >= q.max(axis=1, keepdims=True)
    return Episode(i, q.max(axis=1), q, best / best.sum(axis=1, keepdims=True), states, actions, rewards, eps, updates)


def td_control(env: TabularEnv, cfg: AgentConfig, method: str = "q_learning") -> Iterator[Episode]:
    """Sarsa ('sarsa'), Expected Sarsa ('expected_sarsa') or Q-learning ('q_learning') with an epsilon-greedy policy."""
    if method not in ("sarsa", "expected_sarsa", "q_learning"):
        raise ValueError(f"method must be 'sarsa', 'expected_sarsa' or 'q_learning'; got {method!r}")
    rng = np.random.default_rng(cfg.seed)
    Q = [[0.0] * env.n_actions for _ in range(env.n_states)]
    gamma, alpha, limit, n_a = cfg.gamma, cfg.alpha, episode_limit(env, cfg), env.n_actions
    label = {"sarsa": "Q(s', a')", "expected_sarsa": "sum_a' pi(a'|s') Q(s', a')", "q_learning": "max_a' Q(s', a')"}
    for i in range(cfg.episodes):
        eps = cfg.epsilon_at(i)
        s = env.start
        a = epsilon_greedy(Q[s], eps, rng)
        states, actions, rewards, updates = [s], [], [], {}
        for _ in range(limit):
            s2, r, term = env.step(s, a, rng)
            a2 = epsilon_greedy(Q[s2], eps, rng)
            row = Q[s2]
            if term:
                boot = 0.0
            elif method == "sarsa":
                boot = row[a2]
            elif method == "q_learning":
                boot = max(row)
            else:
                # greedy (tied) actions share 1 - eps and each hold the max, so ties need no special case
                boot = eps / n_a * sum(row) + (1 - eps) * max(row)
            old = Q[s][a]
            target = r + gamma * boot
            Q[s][a] = old + alpha * (target - old)
            updates[s] = Update(s, a, r, s2, term, boot, label[method], gamma, alpha, old, target, Q[s][a])
            states.append(s2)
            actions.append(a)
            rewards.append(r)
            if term:
                break
            s, a = s2, a2
        yield _record(i, Q, states, actions, rewards, eps, updates)


def sarsa(env: TabularEnv, cfg: AgentConfig) -> Iterator[Episode]:
    return td_control(env, cfg, "sarsa")


def expected_sarsa(env: TabularEnv, cfg: AgentConfig) -> Iterator[Episode]:
    return td_control(env, cfg, "expected_sarsa")


def q_learning(env: TabularEnv, cfg: AgentConfig) -> Iterator[Episode]:
    return td_control(env, cfg, "q_learning")


def mc_control(env: TabularEnv, cfg: AgentConfig) -> Iterator[Episode]:
    """On-policy first-visit Monte Carlo control: Q(s, a) is the average of first-visit returns; epsilon-soft policy."""
    rng = np.random.default_rng(cfg.seed)
    Q = [[0.0] * env.n_actions for _ in range(env.n_states)]
    counts = [[0] * env.n_actions for _ in range(env.n_states)]
    for i in range(cfg.episodes):
        eps = cfg.epsilon_at(i)
        states, actions, rewards, terms = rollout(env, cfg, lambda s: epsilon_greedy(Q[s], eps, rng), rng)
        first = {}
        for t, sa in enumerate(zip(states, actions)):
            first.setdefault(sa, t)
        G, updates, last = 0.0, {}, len(actions) - 1
        for t in range(last, -1, -1):
            G_next, G = G, cfg.gamma * G + rewards[t]
            s, a = states[t], actions[t]
            if first[(s, a)] == t:
                counts[s][a] += 1
                old = Q[s][a]
                Q[s][a] = old + (G - old) / counts[s][a]
                end = terms and t == last
                updates.setdefault(s, Update(s, a, rewards[t], states[t + 1], end, G_next, "G (return from s')",
                                             cfg.gamma, 1 / counts[s][a], old, G, Q[s][a]))
        yield _record(i, Q, states, actions, rewards, eps, updates)


def rollout(env: TabularEnv, cfg: AgentConfig, act, rng) -> tuple[list, list, list, bool]:
    """One episode under `act(state) -> action`; returns states (one longer), actions, rewards, terminated."""
    s = env.start
    states, actions, rewards = [s], [], []
    term = False
    for _ in range(episode_limit(env, cfg)):
        a = act(s)
        s, r, term = env.step(s, a, rng)
        states.append(s)
        actions.append(a)
        rewards.append(r)
        if term:
            break
    return states, actions, rewards, term


def td_prediction(env: TabularEnv, cfg: AgentConfig, policy: np.ndarray | None = None) -> Iterator[Episode]:
    """TD(0) estimate of V for `policy` (S x A probabilities; default the equiprobable random policy)."""
    rng = np.random.default_rng(cfg.seed)
    pi = np.full((env.n_states, env.n_actions), 1 / env.n_actions) if policy is None else np.asarray(policy)
    cum = np.cumsum(pi, axis=1).tolist()
    V = [0.0] * env.n_states

    def act(s: int) -> int:
        u = rng.random() * cum[s][-1]
        return next(a for a, c in enumerate(cum[s]) if u < c)

    for i in range(cfg.episodes):
        s = env.start
        states, actions, rewards, updates = [s], [], [], {}
        for _ in range(episode_limit(env, cfg)):
            a = act(s)
            s2, r, term = env.step(s, a, rng)
            boot = 0.0 if term else V[s2]
            old = V[s]
            V[s] = old + cfg.alpha * (r + cfg.gamma * boot - old)
            updates[s] = Update(s, None, r, s2, term, boot, "V(s')", cfg.gamma, cfg.alpha, old,
                                r + cfg.gamma * boot, V[s])
            states.append(s2)
            actions.append(a)
            rewards.append(r)
            if term:
                break
            s = s2
        yield Episode(i, np.array(V), None, pi, states, actions, rewards, 0.0, updates)
