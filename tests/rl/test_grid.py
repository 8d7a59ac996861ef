"""Gridworld compilation rules (Gymnasium's FrozenLake and CliffWalking, the book's wind and teleports), editing and
JSON save/load."""

from __future__ import annotations

import pytest

from lab.rl import presets
from lab.rl.grid import GridWorld

THIRD = pytest.approx(1 / 3)


def test_frozen_lake_transitions_follow_gymnasium():
    env = presets.frozen_lake("4x4").to_env()
    # gymnasium: for b in [(a-1)%4, a, (a+1)%4]; from state 0 LEFT -> UP (stay), LEFT (stay), DOWN (to 4)
    assert [(p, ns, r, t) for p, ns, r, t in env.P[0][0]] == [(THIRD, 0, 0.0, False), (THIRD, 0, 0.0, False),
                                                               (THIRD, 4, 0.0, False)]
    # state 14 RIGHT -> DOWN (stay), RIGHT (goal 15: reward 1, terminated), UP (to 10)
    assert env.P[14][2] == [(THIRD, 14, 0.0, False), (THIRD, 15, 1.0, True), (THIRD, 10, 0.0, False)]
    assert env.P[5][1] == [(1.0, 5, 0.0, True)]  # hole: Gymnasium's absorbing terminal entry
    assert env.P[10][1][1] == (THIRD, 14, 0.0, False)
    assert env.P[9][3][1] == (THIRD, 5, 0.0, True)  # moving up from 9 into hole 5 ends the episode with 0


def test_cliff_sends_back_to_start_without_ending():
    env = presets.cliff_walking().to_env()
    start = 36
    assert env.P[start][2] == [(1.0, start, -100.0, False)]  # RIGHT from the start steps into the cliff
    assert env.P[35][1] == [(1.0, 47, -1.0, True)]  # DOWN from above the goal


def test_wind_is_taken_from_the_column_being_left():
    env = presets.windy_gridworld().to_env()
    # (3,6) RIGHT: column 6 has wind 2, so (3,7) shifted up to (1,7); (3,2) RIGHT: column 2 has no wind
    assert env.P[36][2] == [(1.0, 17, -1.0, False)]
    assert env.P[32][2] == [(1.0, 33, -1.0, False)]


def test_teleports_and_bump_reward_of_example_3_5():
    env = presets.teleport_grid().to_env()
    assert all(env.P[1][a] == [(1.0, 21, 10.0, False)] for a in range(4))  # A -> A' with +10
    assert env.P[3][0] == [(1.0, 13, 5.0, False)]  # B -> B' with +5
    assert env.P[0][3] == [(1.0, 0, -1.0, False)]  # off the grid: stay, -1


def test_editing_and_json_round_trip(tmp_path):
    w = presets.gridworld_4x4().with_cell(1, 1, "#").with_cell(2, 2, "T", reward=5.0).with_cell(0, 1, "S")
    assert w.cells[3][0] == "." and w.start == (0, 1)
    env = w.to_env()
    assert env.P[4 + 0][2] == [(1.0, 4, -1.0, False)]  # (1,0) RIGHT into the wall: stay, step reward
    assert env.P[2 * 4 + 1][2] == [(1.0, 10, 5.0, True)]
    loaded = GridWorld.load(w.save(tmp_path / "w.json"))
    assert loaded == w
    bigger = w.resized(5, 6)
    assert bigger.rows == 5 and bigger.cols == 6 and bigger.start == (0, 1)


def test_world_errors_are_readable():
    with pytest.raises(ValueError, match="exactly one start"):
        GridWorld(cells=["..", ".T"])
    with pytest.raises(ValueError, match="wind: one value per column"):
        GridWorld(cells=["S.", ".T"], wind=[1])
    with pytest.raises(ValueError, match="start cell cannot be overwritten"):
        presets.gridworld_4x4().with_cell(3, 0, "#")
    with pytest.raises(ValueError, match="not a world file"):
        GridWorld.from_json('{"cells": ["S"], "colour": 1}')
