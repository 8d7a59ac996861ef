"""Unit tests of lab.rl on hand-written two- and three-state MDPs whose answers are worked out by hand here."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lab.rl import dp, explain, pg, td
from lab.rl.env import TabularEnv, argmax_random

GAMMA = 0.9


def two_state() -> TabularEnv:
    """State 0: 'stay' pays +1 and stays; 'exit' pays +5 and terminates. Its terminated outcome names state 0 itself,
    so only masking with `terminated` (not a terminal-state convention) gives q(0, exit) = 5."""
    P = [
        [[(1.0, 0, 1.0, False)], [(1.0, 0, 5.0, True)]],
        [[(1.0, 1, 0.0, True)], [(1.0, 1, 0.0, True)]],
    ]
    return TabularEnv(n_states=2, n_actions=2, P=P, action_names=("stay", "exit"), terminal=frozenset({1}))


def three_state() -> TabularEnv:
    """One action. s0 -> s1 w.p. 0.8 (else stays); s1 -> terminal s2 with +1 w.p. 0.8, else back to s0."""
    P = [
        [[(0.8, 1, 0.0, False), (0.2, 0, 0.0, False)]],
        [[(0.8, 2, 1.0, True), (0.2, 0, 0.0, False)]],
        [[(1.0, 2, 0.0, True)]],
    ]
    return TabularEnv(n_states=3, n_actions=1, P=P, action_names=("go",), terminal=frozenset({2}))


def bandit() -> TabularEnv:
    """One decision: action 0 pays 1, action 1 pays 0, both end the episode."""
    P = [[[(1.0, 1, 1.0, True)], [(1.0, 1, 0.0, True)]], [[(1.0, 1, 0.0, True)], [(1.0, 1, 0.0, True)]]]
    return TabularEnv(n_states=2, n_actions=2, P=P, action_names=("good", "bad"), terminal=frozenset({1}))


def three_state_values(gamma: float) -> tuple[float, float]:
    # V0 = g(0.8 V1 + 0.2 V0)  =>  V0 = 0.8 g V1 / (1 - 0.2 g);   V1 = 0.8 + 0.2 g V0
    k = 0.8 * gamma / (1 - 0.2 * gamma)
    v1 = 0.8 / (1 - 0.2 * gamma * k)
    return k * v1, v1


def test_env_rejects_probabilities_not_summing_to_one():
    with pytest.raises(ValueError, match=r"P\[0\]\[0\] probabilities must sum to 1"):
        TabularEnv(n_states=1, n_actions=1, P=[[[(0.5, 0, 0.0, True)]]])


def test_q_from_v_masks_bootstrap_with_terminated():
    Q = two_state().q_from_v(np.array([10.0, 0.0]), GAMMA)
    assert Q[0] == pytest.approx([1 + GAMMA * 10, 5.0])


def test_value_iteration_two_state_optimum():
    env = two_state()
    res = dp.run_to_end(env, dp.value_iteration(env, dp.DPConfig(gamma=GAMMA, theta=1e-10)), GAMMA)
    assert res.V[0] == pytest.approx(1 / (1 - GAMMA), abs=1e-8)  # staying forever: 1 + 0.9 + 0.81 + ... = 10 > 5
    assert res.policy[0].tolist() == [1.0, 0.0]
    assert res.sweeps[0].V[0] == 5.0 and res.sweeps[1].V[0] == pytest.approx(5.5)  # max(1 + 0, 5), max(1 + 4.5, 5)


def test_policy_evaluation_random_policy_two_state():
    env = two_state()
    for in_place in (False, True):
        cfg = dp.DPConfig(gamma=GAMMA, theta=1e-12, in_place=in_place)
        V = list(dp.policy_evaluation(env, dp.uniform_policy(env), cfg))[-1].V
        assert V[0] == pytest.approx(3 / 0.55, abs=1e-9)  # v = 0.5 (1 + 0.9 v) + 0.5 * 5


def test_sync_and_in_place_agree_and_in_place_is_not_slower_three_state():
    env, cfg = three_state(), dp.DPConfig(gamma=GAMMA, theta=1e-12)
    sync = list(dp.policy_evaluation(env, dp.uniform_policy(env), cfg))
    in_place_cfg = dp.DPConfig(gamma=GAMMA, theta=1e-12, in_place=True)
    inplace = list(dp.policy_evaluation(env, dp.uniform_policy(env), in_place_cfg))
    v0, v1 = three_state_values(GAMMA)
    for run in (sync, inplace):
        assert run[-1].V == pytest.approx([v0, v1, 0.0], abs=1e-9)
    assert len(inplace) <= len(sync)


def test_policy_iteration_matches_value_iteration():
    env = two_state()
    cfg = dp.DPConfig(gamma=GAMMA, theta=1e-12)
    pi = list(dp.policy_iteration(env, cfg))
    assert pi[-1].phase == "improvement" and pi[-1].done
    assert pi[-1].V[0] == pytest.approx(10.0, abs=1e-8)
    assert pi[-1].policy[0].tolist() == [1.0, 0.0]


def test_finite_horizon_value_iteration_three_state():
    # with theta = 0, k sweeps from V = 0 give the k-step value: after 2 steps only s1's immediate +1 w.p. 0.8 counts
    env = three_state()
    sweeps = list(dp.value_iteration(env, dp.DPConfig(gamma=1.0, theta=0.0, max_sweeps=2)))
    assert len(sweeps) == 2
    assert sweeps[-1].V[:2] == pytest.approx([0.8 * 0.8, 0.8 + 0.2 * 0.0])


def test_bellman_backup_numbers():
    env = two_state()
    b = explain.bellman_backup(env, np.array([10.0, 0.0]), 0, GAMMA)
    assert [ab.q for ab in b.actions] == pytest.approx([10.0, 5.0]) and b.result == pytest.approx(10.0)
    assert b.actions[1].terms[0].v_next == 0.0 and b.actions[1].terms[0].terminated
    text = explain.format_backup(env, b)
    assert "0 (terminated)" in text and "max(10.000, 5.000) = **10.000**" in text
    e = explain.bellman_backup(env, np.array([10.0, 0.0]), 0, GAMMA, policy=dp.uniform_policy(env))
    assert e.result == pytest.approx(0.5 * 10 + 0.5 * 5)


def test_argmax_ties_are_random_and_reproducible():
    picks = [argmax_random([1.0, 1.0, 0.0], np.random.default_rng(s)) for s in range(50)]
    assert set(picks) == {0, 1}
    again = [argmax_random([1.0, 1.0, 0.0], np.random.default_rng(s)) for s in range(50)]
    assert picks == again


@pytest.mark.parametrize("method", ["sarsa", "expected_sarsa", "q_learning"])
def test_td_control_learns_bandit(method):
    cfg = td.AgentConfig(gamma=1.0, alpha=0.1, epsilon=1.0, episodes=400, seed=3)
    last = list(td.td_control(bandit(), cfg, method))[-1]
    assert last.Q[0] == pytest.approx([1.0, 0.0], abs=0.01)
    assert last.policy[0].tolist() == [1.0, 0.0]


def test_single_update_arithmetic():
    first = next(td.q_learning(bandit(), td.AgentConfig(alpha=0.5, epsilon=0.0, episodes=1, seed=0)))
    u = first.updates[0]  # ties at 0 broken by the generator; either action: Q <- 0 + 0.5 (r - 0)
    assert u.target == u.reward and u.new == pytest.approx(0.5 * u.reward) and u.bootstrap == 0.0


def test_mc_control_and_td_prediction():
    mc = list(td.mc_control(bandit(), td.AgentConfig(epsilon=0.5, episodes=300, seed=1)))[-1]
    assert mc.Q[0].tolist() == [1.0, 0.0]  # first-visit averages of deterministic returns
    cfg = td.AgentConfig(gamma=GAMMA, alpha=0.02, episodes=3000, seed=2)
    V = list(td.td_prediction(three_state(), cfg))[-1].V
    assert V[:2] == pytest.approx(three_state_values(GAMMA), abs=0.05)


@pytest.mark.parametrize("algo", [pg.reinforce, pg.actor_critic])
def test_policy_gradients_prefer_the_better_arm(algo):
    cfg = td.AgentConfig(gamma=1.0, alpha=0.2, alpha_critic=0.1, episodes=400, seed=0)
    last = list(algo(bandit(), cfg))[-1]
    assert last.policy[0, 0] > 0.95


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="alpha must be in"):
        td.AgentConfig(alpha=0.0)
    with pytest.raises(ValueError, match="gamma must be in"):
        dp.DPConfig(gamma=1.5)


def test_lab_rl_does_not_import_gradio():
    code = ("import sys, lab.rl.algorithms, lab.rl.playback, lab.rl.render, lab.rl.presets; "
            "assert 'gradio' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
