"""Drawings of the playground: the grid as SVG (values, policy arrows, Q per action, the agent's episode) and the
learning curves as a plotly figure (mean line and a ±1 std band over seeds, per algorithm).

SVG text is built directly (no plotting library) because a frame must render in a few milliseconds for a smooth
animation; each cell's rect carries `data-cell="r,c"` so the page can report which cell was clicked. Arrow lengths
are proportional to the action's probability, so tied greedy actions show several shorter arrows (REINFORCEjs's
GridWorld demo draws policies this way).
"""

from __future__ import annotations

import numpy as np

from lab.rl.algorithms import Curves, Frame
from lab.rl.grid import GridWorld, key

# unit vectors (dx, dy) in screen coordinates for left, down, right, up
ARROWS = ((-1, 0), (0, 1), (1, 0), (0, -1))
WALL, CLIFF, GOAL, HOLE = "#3b3b3b", "#7a4a2a", "#2e8b57", "#1f2937"


def _colour(v: float, scale: float) -> str:
    """White at 0, green for positive, red for negative values, saturating at |v| = scale."""
    x = max(-1.0, min(1.0, v / scale)) if scale > 0 else 0.0
    if x >= 0:
        return f"rgb({int(255 - 155 * x)},{int(255 - 55 * x)},{int(255 - 155 * x)})"
    return f"rgb({int(255 + 25 * x)},{int(255 + 155 * x)},{int(255 + 155 * x)})"


def _cell_size(world: GridWorld, width: int) -> int:
    return max(6, min(72, width // max(world.cols, 1)))


def _value_scale(world: GridWorld, V: np.ndarray) -> float:
    free = [V[r * world.cols + c] for r in range(world.rows) for c in range(world.cols) if world.cells[r][c] in ".SC"]
    return float(max((abs(v) for v in free), default=0.0)) or 1.0


def _special_fill(world: GridWorld, r: int, c: int) -> str | None:
    kind = world.cells[r][c]
    if kind == "#":
        return WALL
    if kind == "C":
        return CLIFF
    if kind == "T":
        return GOAL if world.rewards.get(key(r, c), world.step_reward) > world.step_reward else HOLE
    return None


def _q_triangles(x: float, y: float, cs: int, q: np.ndarray, scale: float, text: bool) -> list[str]:
    cx, cy = x + cs / 2, y + cs / 2
    corners = {0: ((x, y), (x, y + cs)), 1: ((x, y + cs), (x + cs, y + cs)),
               2: ((x + cs, y + cs), (x + cs, y)), 3: ((x + cs, y), (x, y))}
    out = []
    for a, ((x1, y1), (x2, y2)) in corners.items():
        out.append(f'<polygon points="{cx},{cy} {x1},{y1} {x2},{y2}" fill="{_colour(q[a], scale)}" '
                   f'stroke="#ccc" stroke-width="0.5" pointer-events="none"/>')
        if text:
            dx, dy = ARROWS[a]
            out.append(f'<text x="{cx + dx * cs * 0.3:.1f}" y="{cy + dy * cs * 0.3 + 3:.1f}" font-size="{cs / 7:.1f}" '
                       f'text-anchor="middle" pointer-events="none">{q[a]:.2f}</text>')
    return out


def _arrows(x: float, y: float, cs: int, probs: np.ndarray) -> list[str]:
    cx, cy, out = x + cs / 2, y + cs / 2, []
    for a, p in enumerate(probs):
        if p > 0.01:
            dx, dy = ARROWS[a]
            length = cs * 0.4 * p
            out.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{cx + dx * length:.1f}" y2="{cy + dy * length:.1f}" '
                       f'stroke="#222" stroke-width="{max(1.0, cs / 30):.1f}" marker-end="url(#rl-head)" '
                       f'pointer-events="none"/>')
    return out


def _label(world: GridWorld, r: int, c: int) -> str:
    if (r, c) == world.start:
        return "S"
    if key(r, c) in world.teleports:
        return "A" if world.teleports[key(r, c)][2] >= max(t[2] for t in world.teleports.values()) else "B"
    return ""


def grid_svg(world: GridWorld, frame: Frame | None, show_q: bool = False, selected: tuple | None = None,
             width: int = 600) -> str:
    """The world with the frame's values, policy and episode; `selected` (row, col) is outlined."""
    cs = _cell_size(world, width)
    W, H = cs * world.cols, cs * world.rows
    V = frame.V if frame is not None else np.zeros(world.rows * world.cols)
    scale = _value_scale(world, V)
    Qs = frame.Q if frame is not None and show_q and frame.Q is not None else None
    q_scale = float(np.abs(Qs).max()) or 1.0 if Qs is not None else 1.0
    text = cs >= 34
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             f'class="rl-grid" style="user-select:none">',
             '<defs><marker id="rl-head" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="4" markerHeight="4" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#222"/></marker></defs>']
    for r in range(world.rows):
        for c in range(world.cols):
            s, x, y = r * world.cols + c, c * cs, r * cs
            fill = _special_fill(world, r, c) or _colour(V[s], scale)
            parts.append(f'<rect data-cell="{r},{c}" x="{x}" y="{y}" width="{cs}" height="{cs}" fill="{fill}" '
                         f'stroke="#999" stroke-width="0.5" style="cursor:pointer"/>')
            if world.cells[r][c] in "#TC":  # the agent never stands in these cells: no values or arrows
                reward = world.rewards.get(key(r, c))
                if text and reward is not None:
                    parts.append(f'<text x="{x + cs / 2}" y="{y + cs / 2 + 4}" font-size="{cs / 4:.0f}" fill="#fff" '
                                 f'text-anchor="middle" pointer-events="none">{reward:+g}</text>')
                continue
            if Qs is not None:
                parts += _q_triangles(x, y, cs, Qs[s], q_scale, text)
            if frame is not None:
                parts += _arrows(x, y, cs, frame.policy[s])
            label = _label(world, r, c)
            if text and label:
                parts.append(f'<text x="{x + 4}" y="{y + cs / 4 + 2}" font-size="{cs / 5:.0f}" font-weight="bold" '
                             f'pointer-events="none">{label}</text>')
            if text and frame is not None and Qs is None:
                parts.append(f'<text x="{x + cs / 2}" y="{y + cs - 4}" font-size="{cs / 6:.0f}" text-anchor="middle" '
                             f'pointer-events="none">{V[s]:.2f}</text>')
    if frame is not None and len(frame.path) > 1:
        parts.append(_path(world, frame.path, cs))
    if selected is not None:
        r, c = selected
        parts.append(f'<rect x="{c * cs + 1.5}" y="{r * cs + 1.5}" width="{cs - 3}" height="{cs - 3}" fill="none" '
                     f'stroke="#f59e0b" stroke-width="3" pointer-events="none"/>')
    parts.append("</svg>")
    return "".join(parts)


def _path(world: GridWorld, path: list[int], cs: int) -> str:
    pts = " ".join(f"{(s % world.cols) * cs + cs / 2:.0f},{(s // world.cols) * cs + cs / 2:.0f}" for s in path[-400:])
    end = path[-1]
    ex, ey = (end % world.cols) * cs + cs / 2, (end // world.cols) * cs + cs / 2
    width = max(1.5, cs / 14)
    return (f'<polyline class="rl-path" points="{pts}" fill="none" stroke="#2563eb" stroke-width="{width:.1f}" '
            f'stroke-opacity="0.6" stroke-linejoin="round" pointer-events="none"/>'
            f'<circle cx="{ex}" cy="{ey}" r="{cs / 6:.1f}" fill="#2563eb" pointer-events="none"/>')


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    if window <= 1:
        return x
    c = np.cumsum(np.insert(x, 0, 0.0))
    n = np.minimum(np.arange(1, len(x) + 1), window)
    return (c[1:] - c[np.arange(1, len(x) + 1) - n]) / n


def curves_figure(curves: list[Curves], window: int = 10):
    """Return and steps per episode: mean over seeds with a ±1 std band, one colour per algorithm."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Return per episode", "Steps per episode"))
    for i, cv in enumerate(curves):
        colour = palette[i % len(palette)]
        n = cv.returns.shape[0]
        for col, which in ((1, "returns"), (2, "steps")):
            mean, lo, hi = (smooth(a, window) for a in cv.band(which))
            x = np.arange(1, len(mean) + 1)
            fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                                     fillcolor=colour, opacity=0.2, line=dict(width=0), hoverinfo="skip",
                                     showlegend=False, legendgroup=cv.name), row=1, col=col)
            fig.add_trace(go.Scatter(x=x, y=mean, line=dict(color=colour), name=f"{cv.name} (mean of {n} seeds)",
                                     legendgroup=cv.name, showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(title_text="episode")
    fig.update_layout(height=380, margin=dict(l=40, r=10, t=40, b=40), legend=dict(orientation="h", y=-0.25))
    return fig
