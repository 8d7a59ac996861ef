"""Gridworlds as small editable specs that compile to a `TabularEnv`; saved and loaded as JSON.

Cells: '.' free, '#' wall, 'S' start (exactly one), 'T' terminal (ends the episode: goals, FrozenLake holes),
'C' cliff (Sutton & Barto Example 6.6: entering it sends the agent back to the start without ending the episode).
Rules, chosen so the book's and Gymnasium's worlds are all special cases:
- a move off the grid or into a wall leaves the agent in place and pays `bump_reward` (Example 3.5's -1);
- entering a cell pays `rewards["r,c"]` when the cell has one, else `step_reward`;
- `slip` is the chance of not moving as intended, split equally between the two perpendicular moves (Gymnasium's
  FrozenLake `is_slippery` is slip = 2/3: 1/3 intended, 1/3 each perpendicular, in its outcome order);
- `wind[c]` pushes the agent up by that many rows, taken from the column being left (Example 6.5), stopping at the
  top edge or under a wall;
- `teleports["r,c"] = [r2, c2, reward]`: every action from that cell jumps to (r2, c2) paying reward (Example 3.5).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from lab.rl.env import ACTION_DELTAS, TabularEnv

CELL_KINDS = {".": "free", "#": "wall", "S": "start", "T": "terminal", "C": "cliff"}
MAX_SIDE = 100


def key(r: int, c: int) -> str:
    return f"{r},{c}"


@dataclass
class GridWorld:
    """An editable gridworld; `to_env()` gives its dynamics as data."""

    name: str = "custom"  # shown in the preset list and used as the file name
    cells: list[str] = field(default_factory=lambda: ["S...", "....", "....", "...T"])  # one string per row
    rewards: dict[str, float] = field(default_factory=dict)  # "r,c" -> reward for entering that cell
    step_reward: float = -1.0  # reward for entering a cell that has no entry in `rewards`
    bump_reward: float | None = None  # reward for bumping into an edge or wall; None: the step reward
    wind: list[int] = field(default_factory=list)  # upward push per column (empty: no wind), 0..rows-1
    slip: float = 0.0  # probability of moving perpendicular instead of as intended, in [0, 1)
    gamma: float = 1.0  # the task's discount, in [0, 1]
    teleports: dict[str, list] = field(default_factory=dict)  # "r,c" -> [r2, c2, reward]
    max_steps: int | None = None  # episode limit (truncation); None: no limit

    def __post_init__(self) -> None:
        self.cells = [str(row) for row in self.cells]
        if not 1 <= self.rows <= MAX_SIDE or not 1 <= self.cols <= MAX_SIDE:
            raise ValueError(f"cells must be 1..{MAX_SIDE} rows of 1..{MAX_SIDE} columns; got {self.rows}x{self.cols}")
        if any(len(row) != self.cols for row in self.cells):
            raise ValueError("cells: every row must have the same length")
        bad = {ch for row in self.cells for ch in row} - set(CELL_KINDS)
        if bad:
            raise ValueError(f"cells: unknown characters {sorted(bad)}; allowed: {', '.join(CELL_KINDS)}")
        if sum(row.count("S") for row in self.cells) != 1:
            raise ValueError("cells: exactly one start cell 'S' is needed")
        if self.wind and (len(self.wind) != self.cols or any(not 0 <= w < self.rows for w in self.wind)):
            raise ValueError(f"wind: one value per column ({self.cols}), each in 0..{self.rows - 1}")
        if not 0.0 <= self.slip < 1.0:
            raise ValueError(f"slip must be in [0, 1); got {self.slip}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1]; got {self.gamma}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None; got {self.max_steps}")
        for k in list(self.rewards) + list(self.teleports):
            self.parse_key(k)
        for k, (r2, c2, _) in self.teleports.items():
            self.parse_key(key(r2, c2))

    def parse_key(self, k: str) -> tuple[int, int]:
        try:
            r, c = (int(x) for x in k.split(","))
        except ValueError:
            raise ValueError(f"cell key {k!r} must look like 'row,col'") from None
        if not (0 <= r < self.rows and 0 <= c < self.cols):
            raise ValueError(f"cell {k!r} is outside the {self.rows}x{self.cols} grid")
        return r, c

    @property
    def rows(self) -> int:
        return len(self.cells)

    @property
    def cols(self) -> int:
        return len(self.cells[0]) if self.cells else 0

    @property
    def start(self) -> tuple[int, int]:
        r = next(i for i, row in enumerate(self.cells) if "S" in row)
        return r, self.cells[r].index("S")

    def kind(self, r: int, c: int) -> str:
        return self.cells[r][c]

    def to_env(self) -> TabularEnv:
        P = [[self._outcomes(r, c, a) for a in range(4)] for r in range(self.rows) for c in range(self.cols)]
        terminal = {r * self.cols + c for r in range(self.rows) for c in range(self.cols) if self.cells[r][c] in "T#"}
        sr, sc = self.start
        return TabularEnv(
            n_states=self.rows * self.cols,
            n_actions=4,
            P=P,
            start=sr * self.cols + sc,
            shape=(self.rows, self.cols),
            max_steps=self.max_steps,
            terminal=frozenset(terminal),
        )

    def _outcomes(self, r: int, c: int, a: int) -> list:
        s = r * self.cols + c
        if self.cells[r][c] in "T#":  # walls are unreachable; both absorb as Gymnasium's terminal states do
            return [(1.0, s, 0.0, True)]
        if key(r, c) in self.teleports:
            r2, c2, reward = self.teleports[key(r, c)]
            return [(1.0, r2 * self.cols + c2, float(reward), self.cells[r2][c2] == "T")]
        if self.slip == 0.0:
            return [(1.0, *self._move(r, c, a))]
        side = self.slip / 2
        return [(side if b != a else 1.0 - self.slip, *self._move(r, c, b)) for b in ((a - 1) % 4, a, (a + 1) % 4)]

    def _move(self, r: int, c: int, a: int) -> tuple[int, float, bool]:
        """(next_state, reward, terminated) of moving in direction a from (r, c)."""
        dr, dc = ACTION_DELTAS[a]
        r2, c2 = r + dr, c + dc
        bumped = not (0 <= r2 < self.rows and 0 <= c2 < self.cols) or self.cells[r2][c2] == "#"
        if bumped:
            r2, c2 = r, c
        for _ in range(self.wind[c] if self.wind else 0):  # wind of the column being left
            if r2 == 0 or self.cells[r2 - 1][c2] == "#":
                break
            r2 -= 1
        if bumped:
            reward = self.step_reward if self.bump_reward is None else self.bump_reward
        else:
            reward = self.rewards.get(key(r2, c2), self.step_reward)
        kind = self.cells[r2][c2]
        if kind == "C":
            sr, sc = self.start
            return sr * self.cols + sc, float(reward), False
        return r2 * self.cols + c2, float(reward), kind == "T"

    # --- editing: each returns a new, validated world ---

    def with_cell(self, r: int, c: int, kind: str, reward: float | None = None) -> GridWorld:
        """Set cell (r, c) to kind ('.', '#', 'S', 'T', 'C'); `reward` sets its entry reward (None clears it)."""
        if kind not in CELL_KINDS:
            raise ValueError(f"kind must be one of {', '.join(CELL_KINDS)}; got {kind!r}")
        self.parse_key(key(r, c))
        rows = [list(row) for row in self.cells]
        if kind == "S":
            sr, sc = self.start
            rows[sr][sc] = "."
        elif (r, c) == self.start:
            raise ValueError("the start cell cannot be overwritten: place the start elsewhere first")
        rows[r][c] = kind
        rewards = {k: v for k, v in self.rewards.items() if k != key(r, c)}
        if reward is not None:
            rewards[key(r, c)] = float(reward)
        teleports = {k: v for k, v in self.teleports.items() if k != key(r, c) and kind != "#"}
        return replace(self, cells=["".join(row) for row in rows], rewards=rewards, teleports=teleports)

    def resized(self, rows: int, cols: int) -> GridWorld:
        """Crop or pad with free cells; the start moves to (0, 0) if it falls outside."""
        sr, sc = self.start
        old = lambda r, c: self.cells[r][c] if r < self.rows and c < self.cols else "."  # noqa: E731
        grid = [[old(r, c) for c in range(cols)] for r in range(rows)]
        if sr >= rows or sc >= cols:
            grid[0][0] = "S"
        inside = lambda k: all(v < lim for v, lim in zip(map(int, k.split(",")), (rows, cols)))  # noqa: E731
        return replace(
            self,
            cells=["".join(row) for row in grid],
            rewards={k: v for k, v in self.rewards.items() if inside(k)},
            teleports={k: v for k, v in self.teleports.items() if inside(k) and inside(key(v[0], v[1]))},
            wind=(list(self.wind) + [0] * cols)[:cols] if self.wind else [],
        )

    # --- JSON ---

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> GridWorld:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a world file: invalid JSON ({exc})") from None
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"not a world file: unknown fields {sorted(unknown)}")
        return cls(**data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path: str | Path) -> GridWorld:
        return cls.from_json(Path(path).read_text())
