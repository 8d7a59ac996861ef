"""The display layer: frames for every algorithm, the inspector's text, the SVG grid and the comparison curves."""

from __future__ import annotations

import numpy as np
import pytest

from lab.rl import dp, presets, td
from lab.rl.algorithms import ALGORITHMS, learning_curves
from lab.rl.playback import start_run
from lab.rl.render import curves_figure, grid_svg, smooth

SMALL = td.AgentConfig(episodes=20, max_steps=200, seed=0)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_algorithm_runs_and_renders(name):
    world = presets.gridworld_4x4()
    run = start_run(world, name, dp.DPConfig(), SMALL)
    assert run.frames and not run.truncated
    svg = grid_svg(world, run.frames[-1], show_q=True, selected=(1, 1))
    assert svg.count("data-cell=") == 16 and "#f59e0b" in svg
    text = run.inspect(len(run.frames) - 1, (1, 2))
    assert "(1,2)" in text


def test_inspector_shows_the_sweep_arithmetic():
    run = start_run(presets.gridworld_4x4(), "Policy evaluation (synchronous)", dp.DPConfig(), SMALL)
    text = run.inspect(1, (0, 1))  # sweep 2 reads v_1 = -1 everywhere but the terminals
    assert "π = 0.250" in text and "0 (terminated)" in text and "**-1.750**" in text


def test_inspector_shows_the_last_q_learning_update():
    run = start_run(presets.cliff_walking(), "Q-learning", dp.DPConfig(), td.AgentConfig(episodes=5, seed=0))
    text = run.inspect(4, (3, 0))
    assert "max_a' Q(s', a')" in text and "←" in text


def test_learning_curves_and_figure():
    env = presets.cliff_walking().to_env()
    curves = list(learning_curves(["Sarsa", "Q-learning"], env, td.AgentConfig(episodes=30), seeds=3))
    assert curves[0].returns.shape == (3, 30)
    mean, lo, hi = curves[0].band()
    assert np.all(lo <= mean) and np.all(mean <= hi)
    fig = curves_figure(curves, window=5)
    assert len(fig.data) == 8  # band + mean, two panels, two algorithms
    assert smooth(np.array([1.0, 3.0, 5.0]), 2).tolist() == [1.0, 2.0, 4.0]


def test_frame_pacer_waits_for_reports():
    import threading

    from lab.rl.playback import FramePacer

    pacer = FramePacer()
    assert pacer.drawn("run1") == -1 and not pacer.wait("run1", 0, timeout=0.05)
    threading.Timer(0.05, pacer.report, args=("run1:3",)).start()
    assert pacer.wait("run1", 3, timeout=2.0) and pacer.drawn("run1") == 3
    pacer.report("garbage")
    assert pacer.drawn("garbage") == -1
