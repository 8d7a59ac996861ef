"""A finished run kept for playback: its frames plus what the backup inspector needs to explain any cell.

The UI runs an algorithm once (fast: milliseconds to a second on the presets), keeps the frames, and then animates,
steps or scrubs through them; the inspector explains a cell at the displayed frame: the Bellman backup the sweep made
there (DP, from the values the sweep read) or the last sampled update there (Monte Carlo, TD, policy gradients).
`FramePacer` keeps a streamed animation in step with the page drawing it.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

from lab.rl import dp, explain, td
from lab.rl.algorithms import ALGORITHMS, Frame, frames
from lab.rl.env import TabularEnv
from lab.rl.grid import GridWorld

MAX_FRAMES = 5000


@dataclass
class Run:
    """An algorithm's frames on one world."""

    world: GridWorld
    env: TabularEnv
    algorithm: str
    gamma: float
    frames: list[Frame]
    truncated: bool = False  # True when the run had more than MAX_FRAMES frames (the rest were not kept)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # identifies the run to the page drawing it

    def frame(self, i: int) -> Frame:
        return self.frames[max(0, min(int(i), len(self.frames) - 1))]

    def inspect(self, i: int, cell: tuple[int, int]) -> str:
        """Markdown explaining cell (row, col) at frame i."""
        r, c = cell
        s = r * self.world.cols + c
        fr = self.frame(i)
        if self.world.cells[r][c] == "#":
            return f"({r},{c}) is a wall: the agent never stands there."
        if ALGORITHMS[self.algorithm].kind == "dp":
            if fr.V_before is None:
                return "No backup recorded for this frame."
            backup = explain.bellman_backup(self.env, fr.V_before, s, self.gamma, fr.backup_policy)
            return explain.format_backup(self.env, backup) + "\n\n*(values read: those before this sweep)*"
        update = fr.updates.get(s)
        if update is None:
            return f"No update at ({r},{c}) yet: the agent has not acted there up to this episode."
        return explain.format_update(self.env, update)


def start_run(world: GridWorld, algorithm: str, dp_cfg: dp.DPConfig, agent_cfg: td.AgentConfig) -> Run:
    """Run `algorithm` on `world` to the end (at most MAX_FRAMES frames kept)."""
    env = world.to_env()
    kept = []
    truncated = False
    for fr in frames(algorithm, env, dp_cfg, agent_cfg):
        if len(kept) == MAX_FRAMES:
            truncated = True
            break
        kept.append(fr)
    gamma = dp_cfg.gamma if ALGORITHMS[algorithm].kind == "dp" else agent_cfg.gamma
    return Run(world, env, algorithm, gamma, kept, truncated)


class FramePacer:
    """Back-pressure for a streamed animation: the page reports each frame it has drawn ('token:frame'), and the
    producer waits for those reports, so frames are never sent much faster than a slow browser can draw them."""

    def __init__(self, max_runs: int = 1000) -> None:
        self._drawn: dict[str, int] = {}
        self._lock = threading.Lock()
        self._max_runs = max_runs

    def report(self, message: str) -> None:
        token, _, frame = str(message).rpartition(":")
        if token and frame.isdigit():
            with self._lock:
                if len(self._drawn) >= self._max_runs:
                    self._drawn.clear()
                self._drawn[token] = int(frame)

    def drawn(self, token: str) -> int:
        """The last frame reported drawn for this run, -1 if none."""
        return self._drawn.get(token, -1)

    def wait(self, token: str, frame: int, timeout: float = 2.0) -> bool:
        """Block until `frame` of run `token` is drawn; False after `timeout` seconds (the page may not report)."""
        deadline = time.perf_counter() + timeout
        while self.drawn(token) < frame:
            if time.perf_counter() > deadline:
                return False
            time.sleep(0.005)
        return True
