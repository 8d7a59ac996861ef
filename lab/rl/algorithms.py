"""The playground's catalogue: every algorithm by name, what it is, and its run as a stream of display frames.

A `Frame` is what one animation step shows: values, optional action values, the policy, the agent's episode (sampling
methods) and what the backup inspector needs (the values a DP sweep read, or the last sampled update per state).
`learning_curves` runs algorithms over several seeds for the mean-and-band comparison (Sutton & Barto Figure 6.4
compares Sarsa and Q-learning this way), and `greedy_path` follows a greedy policy from the start.
The short texts follow the comparison table of the course notes: model-based vs model-free, bootstrapping or not,
on- vs off-policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from lab.rl import dp, pg, td
from lab.rl.env import TabularEnv, argmax_random


@dataclass(frozen=True)
class Algorithm:
    name: str
    kind: str  # 'dp' (needs the model) or 'sampling' (learns from episodes)
    text: str


ALGORITHMS = {a.name: a for a in [
    Algorithm("Policy evaluation (synchronous)", "dp",
              "Model-based prediction of the random policy: every sweep backs up all states from the previous sweep's "
              "values (two arrays). Bootstraps; no sampling. Sutton & Barto 4.1."),
    Algorithm("Policy evaluation (in-place)", "dp",
              "Same backup, but each state immediately uses values updated earlier in the same sweep; usually "
              "converges in fewer sweeps. Sutton & Barto 4.1."),
    Algorithm("Policy iteration", "dp",
              "Model-based control: evaluate the policy to convergence, make it greedy, repeat until it stops "
              "changing. Few improvements, many evaluation sweeps. Sutton & Barto 4.3."),
    Algorithm("Value iteration", "dp",
              "Model-based control: one sweep of the Bellman optimality backup (max over actions) per iteration; "
              "policy evaluation truncated to one sweep. Sutton & Barto 4.4."),
    Algorithm("Monte Carlo control (first-visit, ε-soft)", "sampling",
              "Model-free and on-policy: averages complete returns of first visits, no bootstrapping, so it waits "
              "for the episode to end; unbiased but high variance. Sutton & Barto 5.4."),
    Algorithm("TD(0) prediction", "sampling",
              "Model-free prediction of the random policy: after every step moves V(s) towards r + γV(s'). "
              "Bootstraps from its own estimate (biased, lower variance than Monte Carlo). Sutton & Barto 6.1."),
    Algorithm("Sarsa", "sampling",
              "Model-free, on-policy TD control: the target uses the action the ε-greedy policy actually takes next, "
              "so it learns the value of exploring and keeps away from risky edges. Sutton & Barto 6.4."),
    Algorithm("Expected Sarsa", "sampling",
              "Like Sarsa but the target averages Q(s', ·) under the ε-greedy policy: same expectation, less "
              "variance. Sutton & Barto 6.6."),
    Algorithm("Q-learning", "sampling",
              "Model-free, off-policy TD control: the target uses max Q(s', ·), learning the greedy policy's values "
              "while behaving ε-greedily (so it walks the cliff edge and falls in more often). Sutton & Barto 6.5."),
    Algorithm("REINFORCE (softmax)", "sampling",
              "Policy gradient: raises the log-probability of each action taken in proportion to the return that "
              "followed (minus a learned baseline if its step size is > 0). Monte Carlo, on-policy. The root of "
              "RLHF's PPO/GRPO updates. Sutton & Barto 13.3-13.4."),
    Algorithm("Actor-critic (one-step, softmax)", "sampling",
              "Policy gradient with a bootstrapped critic: the TD error r + γV(s') − V(s) scales the actor's "
              "log-probability gradient and trains the critic. Sutton & Barto 13.5."),
]}

SAMPLERS = {
    "Monte Carlo control (first-visit, ε-soft)": td.mc_control,
    "TD(0) prediction": td.td_prediction,
    "Sarsa": td.sarsa,
    "Expected Sarsa": td.expected_sarsa,
    "Q-learning": td.q_learning,
    "REINFORCE (softmax)": pg.reinforce,
    "Actor-critic (one-step, softmax)": pg.actor_critic,
}


@dataclass
class Frame:
    """One animation step."""

    label: str  # e.g. 'sweep 3 · Δ = 0.52' or 'episode 12 · return -17'
    V: np.ndarray  # (S,) values to colour cells by
    Q: np.ndarray | None  # (S, A) action values when the method has them
    policy: np.ndarray  # (S, A) action probabilities for the arrows
    path: list[int] = field(default_factory=list)  # states of the agent's episode (sampling methods)
    V_before: np.ndarray | None = None  # DP: the values the sweep's backups read
    backup_policy: np.ndarray | None = None  # DP: the evaluated policy (None: max backup)
    updates: dict = field(default_factory=dict)  # sampling: state -> td.Update, the latest up to this frame


def _dp_sweeps(name: str, env: TabularEnv, cfg: dp.DPConfig) -> Iterator[dp.Sweep]:
    if name.startswith("Policy evaluation"):
        in_place = replace(cfg, in_place=name.endswith("(in-place)"))
        return dp.policy_evaluation(env, dp.uniform_policy(env), in_place)
    if name == "Policy iteration":
        return dp.policy_iteration(env, cfg)
    return dp.value_iteration(env, cfg)


def frames(name: str, env: TabularEnv, dp_cfg: dp.DPConfig, agent_cfg: td.AgentConfig) -> Iterator[Frame]:
    """Run algorithm `name` and yield one frame per sweep (DP) or per episode (sampling)."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of: {', '.join(ALGORITHMS)}")
    if ALGORITHMS[name].kind == "dp":
        for sw in _dp_sweeps(name, env, dp_cfg):
            label = f"{sw.phase} · sweep {sw.k} · Δ = {sw.delta:.4g}" + (" · converged" if sw.done else "")
            evaluated = sw.policy if sw.phase == "evaluation" else None
            if sw.phase == "improvement":
                label = f"policy improvement after sweep {sw.k}" + (" · policy stable" if sw.done else "")
            yield Frame(label, sw.V, env.q_from_v(sw.V, dp_cfg.gamma), sw.policy,
                        V_before=sw.V_before, backup_policy=evaluated)
        return
    latest: dict = {}
    for ep in SAMPLERS[name](env, agent_cfg):
        latest = {**latest, **ep.updates}
        label = f"episode {ep.index + 1} · return {ep.return_:.4g} · {ep.steps} steps"
        if ep.Q is not None and agent_cfg.epsilon:
            label += f" · ε = {ep.epsilon:.3g}"
        yield Frame(label, ep.V, ep.Q, ep.policy, path=ep.states, updates=latest)


@dataclass
class Curves:
    """Per-episode return and length of one algorithm over seeds: arrays (n_seeds, episodes)."""

    name: str
    returns: np.ndarray
    steps: np.ndarray

    def band(self, which: str = "returns") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, mean - std, mean + std) over seeds, per episode."""
        data = getattr(self, which)
        mean, std = data.mean(axis=0), data.std(axis=0)
        return mean, mean - std, mean + std


def learning_curves(names: list[str], env: TabularEnv, cfg: td.AgentConfig, seeds: int) -> Iterator[Curves]:
    """For each sampling algorithm: returns and steps per episode with seeds cfg.seed .. cfg.seed + seeds - 1."""
    if not 1 <= seeds <= 100:
        raise ValueError(f"seeds must be in 1..100; got {seeds}")
    for name in names:
        if name not in SAMPLERS:
            raise ValueError(f"{name!r} does not learn from episodes; choose from: {', '.join(SAMPLERS)}")
        runs = [list(SAMPLERS[name](env, replace(cfg, seed=cfg.seed + i))) for i in range(seeds)]
        returns = np.array([[ep.return_ for ep in run] for run in runs])
        steps = np.array([[ep.steps for ep in run] for run in runs])
        yield Curves(name, returns, steps)


def greedy_path(env: TabularEnv, Q: np.ndarray, rng: np.random.Generator, max_steps: int = 1000) -> list[int]:
    """States visited following argmax Q (ties at random) from the start until termination or max_steps."""
    s, path = env.start, [env.start]
    for _ in range(max_steps):
        s, _, term = env.step(s, argmax_random(list(Q[s]), rng), rng)
        path.append(s)
        if term:
            break
    return path
