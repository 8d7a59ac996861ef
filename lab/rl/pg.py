"""Policy gradients with a tabular softmax policy: REINFORCE (with an optional learned baseline) and one-step
actor-critic.

Sutton & Barto ch. 13: REINFORCE (13.3) and REINFORCE with baseline (13.4), one-step actor-critic (13.5), with
preferences theta[s, a] and pi(a|s) = softmax(theta[s]). For this parameterisation grad ln pi(a|s) with respect to
theta[s] is onehot(a) - pi(.|s), so each update touches one row. These are the ideas RLHF's policy-gradient methods
(PPO, GRPO) build on: the return or advantage scales the log-probability gradient of the action taken.

`AgentConfig.alpha` is the actor's step size, `alpha_critic` the baseline / critic step size (0 turns REINFORCE's
baseline off). Records are `td.Episode`s; `Q` is None and `V` holds the baseline or critic.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lab.rl.env import TabularEnv
from lab.rl.td import AgentConfig, Episode, Update, episode_limit, rollout


def softmax_rows(theta: np.ndarray) -> np.ndarray:
    z = np.exp(theta - theta.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _sample(probs: np.ndarray, rng: np.random.Generator) -> int:
    return int(min(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), side="right"), len(probs) - 1))


def reinforce(env: TabularEnv, cfg: AgentConfig) -> Iterator[Episode]:
    """Monte Carlo policy gradient: theta[s] += alpha gamma^t (G_t - b(s)) (onehot(a) - pi(s))."""
    rng = np.random.default_rng(cfg.seed)
    theta = np.zeros((env.n_states, env.n_actions))
    V = np.zeros(env.n_states)
    for i in range(cfg.episodes):
        states, actions, rewards, term = rollout(env, cfg, lambda s: _sample(softmax_rows(theta[s]), rng), rng)
        G, updates = 0.0, {}
        returns = np.zeros(len(actions))
        for t in range(len(actions) - 1, -1, -1):
            G = cfg.gamma * G + rewards[t]
            returns[t] = G
        for t, (s, a) in enumerate(zip(states, actions)):
            G = returns[t]
            baseline = V[s]
            if cfg.alpha_critic:
                old = V[s]
                V[s] += cfg.alpha_critic * (G - old)
                updates[s] = Update(s, None, rewards[t], states[t + 1], term and t == len(actions) - 1,
                                    returns[t + 1] if t + 1 < len(actions) else 0.0, "G (return from s')",
                                    cfg.gamma, cfg.alpha_critic, old, G, V[s])
            grad = -softmax_rows(theta[s])
            grad[a] += 1.0
            theta[s] += cfg.alpha * cfg.gamma**t * (G - baseline) * grad
        yield Episode(i, V.copy(), None, softmax_rows(theta), states, actions, rewards, 0.0, updates)


def actor_critic(env: TabularEnv, cfg: AgentConfig) -> Iterator[Episode]:
    """One-step actor-critic: delta = r + gamma V(s') - V(s) (no bootstrap if terminated) drives both updates."""
    rng = np.random.default_rng(cfg.seed)
    theta = np.zeros((env.n_states, env.n_actions))
    V = np.zeros(env.n_states)
    for i in range(cfg.episodes):
        s, discount = env.start, 1.0
        states, actions, rewards, updates = [s], [], [], {}
        for _ in range(episode_limit(env, cfg)):
            pi = softmax_rows(theta[s])
            a = _sample(pi, rng)
            s2, r, term = env.step(s, a, rng)
            boot = 0.0 if term else V[s2]
            old = V[s]
            delta = r + cfg.gamma * boot - old
            V[s] = old + cfg.alpha_critic * delta
            grad = -pi
            grad[a] += 1.0
            theta[s] += cfg.alpha * discount * delta * grad
            updates[s] = Update(s, None, r, s2, term, boot, "V(s')", cfg.gamma, cfg.alpha_critic, old, old + delta,
                                V[s])
            discount *= cfg.gamma
            states.append(s2)
            actions.append(a)
            rewards.append(r)
            if term:
                break
            s = s2
        yield Episode(i, V.copy(), None, softmax_rows(theta), states, actions, rewards, 0.0, updates)
