"""The preset worlds: Sutton & Barto's gridworlds, Gymnasium's FrozenLake and a REINFORCEjs-style maze.

Sources: Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.): Example 4.1 (4x4 gridworld, Figure 4.1),
Example 3.5 (5x5 grid with A/B teleports, Figures 3.2 and 3.5), Example 6.5 (Windy Gridworld), Example 6.6 (Cliff
Walking); Gymnasium's toy_text FrozenLake (maps "4x4" and "8x8", is_slippery, TimeLimit 100 and 200 steps);
Karpathy's REINFORCEjs GridWorld demo (a 10x10 world with walls, one +1 goal and -1 cells, gamma 0.9).
"""

from __future__ import annotations

from lab.rl.grid import GridWorld, key

FROZEN_LAKE_MAPS = {
    "4x4": ["SFFF", "FHFH", "FFFH", "HFFG"],
    "8x8": ["SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG"],
}


def gridworld_4x4() -> GridWorld:
    """Example 4.1: terminal corners, -1 per move, undiscounted; the start only matters for sampling methods."""
    return GridWorld(name="4x4 gridworld (Example 4.1)", cells=["T...", "....", "....", "S..T"], step_reward=-1.0)


def teleport_grid() -> GridWorld:
    """Example 3.5: from A every action jumps to A' (+10), from B to B' (+5); -1 for bumping an edge; gamma 0.9."""
    return GridWorld(
        name="5x5 A/B teleports (Example 3.5)",
        cells=["....."] * 4 + ["....S"],
        step_reward=0.0,
        bump_reward=-1.0,
        gamma=0.9,
        teleports={key(0, 1): [4, 1, 10.0], key(0, 3): [2, 3, 5.0]},
        max_steps=100,
    )


def cliff_walking() -> GridWorld:
    """Example 6.6: -1 per step, -100 for stepping into the cliff, which sends the agent back to the start."""
    return GridWorld(
        name="Cliff Walking (Example 6.6)",
        cells=["." * 12] * 3 + ["S" + "C" * 10 + "T"],
        rewards={key(3, c): -100.0 for c in range(1, 11)},
        step_reward=-1.0,
    )


def windy_gridworld() -> GridWorld:
    """Example 6.5: 7x10, wind 0 0 0 1 1 1 2 2 1 0 pushes up, -1 per step until the goal."""
    cells = ["." * 10] * 7
    cells[3] = "S......T.."
    wind = [0, 0, 0, 1, 1, 1, 2, 2, 1, 0]
    return GridWorld(name="Windy Gridworld (Example 6.5)", cells=cells, step_reward=-1.0, wind=wind)


def frozen_lake(size: str = "4x4", slippery: bool = True) -> GridWorld:
    """Gymnasium FrozenLake: reward 1 on reaching G, holes end the episode; 1/3 intended, 1/3 each perpendicular."""
    rows = FROZEN_LAKE_MAPS[size]
    goal = next((r, row.index("G")) for r, row in enumerate(rows) if "G" in row)
    return GridWorld(
        name=f"FrozenLake {size}" + (" (slippery)" if slippery else ""),
        cells=[row.replace("F", ".").replace("H", "T").replace("G", "T") for row in rows],
        rewards={key(*goal): 1.0},
        step_reward=0.0,
        slip=2 / 3 if slippery else 0.0,
        max_steps=100 if size == "4x4" else 200,
    )


def reinforcejs_maze() -> GridWorld:
    """A REINFORCEjs-style 10x10 world: walls, one +1 goal, several -1 cells to walk around, gamma 0.9."""
    cells = [
        "S.........",
        "..........",
        ".####.###.",
        "....#.....",
        "....#..T..",
        "....#.....",
        ".####.###.",
        "..........",
        "..........",
        "..........",
    ]
    penalties = [(3, 6), (3, 7), (5, 6), (5, 8), (4, 5), (8, 4), (7, 1), (1, 5)]
    return GridWorld(
        name="REINFORCEjs-style maze",
        cells=cells,
        rewards={key(4, 7): 1.0, **{key(r, c): -1.0 for r, c in penalties}},
        step_reward=0.0,
        gamma=0.9,
        max_steps=200,
    )


PRESETS = {
    world().name: world
    for world in (gridworld_4x4, teleport_grid, cliff_walking, windy_gridworld, reinforcejs_maze)
}
PRESETS[frozen_lake("4x4").name] = lambda: frozen_lake("4x4")
PRESETS[frozen_lake("8x8").name] = lambda: frozen_lake("8x8")


def preset(name: str) -> GridWorld:
    """A fresh copy of the named preset world."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]()
