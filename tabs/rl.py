"""The RL tab: pick or edit a gridworld, run a DP or sampling algorithm, and watch it sweep or learn frame by frame.

Thin by design: controls become `lab.rl` configs, `lab.rl.playback.start_run` computes every frame at once, and a
generator event plays them, rendering one frame per yield (`lab.rl.render.grid_svg`) at the chosen speed; Pause
cancels it. Clicking a cell (a `data-cell` attribute read by a small `js_on_load` listener) inspects its
Bellman backup or, in edit mode, paints it.
"""

from __future__ import annotations

import html
import time
from dataclasses import replace

import gradio as gr

from lab.paths import subdir
from lab.rl.algorithms import ALGORITHMS, SAMPLERS, learning_curves
from lab.rl.dp import DPConfig
from lab.rl.grid import GridWorld
from lab.rl.playback import FramePacer, Run, start_run
from lab.rl.presets import PRESETS, preset
from lab.rl.render import curves_figure, grid_svg
from lab.rl.td import AgentConfig

CLICK_JS = """
element.addEventListener('click', (e) => {
  const cell = e.target.closest('[data-cell]');
  if (cell) trigger('click', {cell: cell.dataset.cell});
});
watch('value', () => {
  const tag = element.querySelector('[data-run]');
  if (tag) server.frame_drawn(tag.dataset.run + ':' + tag.dataset.frame);
});
"""
PACER = FramePacer()


def frame_drawn(message) -> bool:
    """Called from the page after each frame is drawn, with 'token:frame' (the animation waits for these)."""
    PACER.report(message[0] if isinstance(message, list) else message)
    return True


PAINT = {"wall": "#", "free": ".", "start": "S", "terminal": "T", "cliff": "C"}
DEFAULT_PRESET = "4x4 gridworld (Example 4.1)"
NO_RUN = "<i>No run yet: choose an algorithm and press Run.</i>"
SLIDER_EVERY = 10  # while playing, move the frame slider every this many frames (each update costs the browser)


def _configs(gamma, theta, max_sweeps, alpha, alpha_critic, epsilon, decay, min_eps, episodes, max_steps, seed):
    dp_cfg = DPConfig(gamma=gamma, theta=theta, max_sweeps=int(max_sweeps))
    agent = AgentConfig(gamma=gamma, alpha=alpha, alpha_critic=alpha_critic, epsilon=epsilon, epsilon_decay=decay,
                        min_epsilon=min(min_eps, epsilon), episodes=int(episodes), max_steps=int(max_steps),
                        seed=int(seed))
    return dp_cfg, agent


def _view(world: GridWorld, run: Run | None, i, show_q: bool, selected):
    """(frame label + grid as HTML, inspector markdown) for frame i of the run (or the bare world)."""
    if run is None:
        hint = "Click a cell after a run to see its backup." if selected is None else "Run an algorithm first."
        return _grid_html(NO_RUN, grid_svg(world, None, selected=selected)), hint
    fr = run.frame(i)
    label = (f'<b data-run="{run.token}" data-frame="{int(i)}">{html.escape(run.algorithm)}</b> · '
             f"frame {int(i) + 1}/{len(run.frames)} · {html.escape(fr.label)}")
    inspector = run.inspect(i, selected) if selected is not None else "Click a cell to see its backup arithmetic."
    return _grid_html(label, grid_svg(world, fr, show_q=show_q, selected=selected)), inspector


def _grid_html(label: str, svg: str) -> str:
    # one component per frame: the label travels with the grid, halving the updates the browser has to apply;
    # a fixed one-line label keeps the layout (and the buttons below) from jumping while playing
    style = "margin:4px 0;height:1.5em;white-space:nowrap;overflow:hidden;text-overflow:ellipsis"
    return f'<div id="rl-frame-label" style="{style}">{label}</div>{svg}'


def _world_controls(world: GridWorld):
    wind = ",".join(str(w) for w in world.wind)
    return world.rows, world.cols, wind, world.slip, world.step_reward, world.bump_reward, world.max_steps, world.gamma


def _play_controls():
    with gr.Row():
        back = gr.Button("◀ Step", elem_id="rl-back", size="sm")
        play = gr.Button("▶ Play", elem_id="rl-play", size="sm", variant="primary")
        pause = gr.Button("⏸ Pause", elem_id="rl-pause", size="sm")
        step = gr.Button("Step ▶", elem_id="rl-step", size="sm")
    with gr.Row():
        fps = gr.Slider(1, 30, value=12, step=1, label="Speed (frames per second)", elem_id="rl-fps")
        frame = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="rl-frame")
    show_q = gr.Checkbox(label="Show Q per action (triangles)", value=False)
    return back, play, pause, step, fps, frame, show_q


def _algorithm_controls():
    algo = gr.Dropdown(list(ALGORITHMS), value="Value iteration", label="Algorithm", elem_id="rl-algorithm")
    about = gr.Markdown(ALGORITHMS["Value iteration"].text)
    with gr.Row():
        gamma = gr.Slider(0, 1, value=1.0, step=0.01, label="gamma (discount)")
        theta = gr.Number(1e-6, label="theta (DP stop when Δ < theta)", minimum=0)
        sweeps = gr.Number(1000, label="max sweeps (DP)", precision=0, minimum=1)
    with gr.Row():
        alpha = gr.Slider(0.01, 1, value=0.5, step=0.01, label="alpha (step size / actor)")
        alpha_c = gr.Slider(0, 1, value=0.1, step=0.01, label="critic / baseline step size")
        epsilon = gr.Slider(0, 1, value=0.1, step=0.01, label="epsilon")
    with gr.Row():
        decay = gr.Slider(0.9, 1, value=1.0, step=0.001, label="epsilon decay per episode")
        min_eps = gr.Slider(0, 1, value=0.0, step=0.01, label="min epsilon")
        episodes = gr.Number(300, label="episodes", precision=0, minimum=1, maximum=100_000)
    with gr.Row():
        max_steps = gr.Number(10_000, label="max steps per episode", precision=0, minimum=1)
        seed = gr.Number(0, label="seed", precision=0)
    params = [gamma, theta, sweeps, alpha, alpha_c, epsilon, decay, min_eps, episodes, max_steps, seed]
    return algo, about, params


def _editor_controls():
    with gr.Accordion("Edit world", open=False):
        mode = gr.Radio(["inspect", *PAINT], value="inspect", label="Clicking a cell will", elem_id="rl-click-mode")
        reward = gr.Number(None, label="reward for entering painted cells (empty: the step reward)")
        with gr.Row():
            rows = gr.Number(4, label="rows", precision=0, minimum=1, maximum=30)
            cols = gr.Number(4, label="columns", precision=0, minimum=1, maximum=30)
            wind = gr.Textbox(label="wind per column (comma-separated, empty: none)")
        with gr.Row():
            slip = gr.Slider(0, 0.99, value=0, step=0.01, label="slip probability")
            step_r = gr.Number(-1, label="step reward")
            bump = gr.Number(None, label="bump reward (empty: step reward)")
            limit = gr.Number(None, label="episode step limit (empty: none)", precision=0)
        apply = gr.Button("Apply world settings")
        with gr.Row():
            save = gr.Button("Save world as JSON")
            saved = gr.File(label="Saved world", interactive=False)
            load = gr.File(label="Load a world (.json)", file_types=[".json"], type="filepath")
    return mode, reward, [rows, cols, wind, slip, step_r, bump, limit], apply, save, saved, load


def _compare_controls():
    with gr.Accordion("Compare learning curves over seeds", open=False):
        with gr.Row():
            algos = gr.CheckboxGroup(list(SAMPLERS), value=["Sarsa", "Q-learning"], label="Algorithms")
            seeds = gr.Slider(1, 30, value=5, step=1, label="seeds")
            window = gr.Slider(1, 50, value=10, step=1, label="smoothing window (episodes)")
        go = gr.Button("Run comparison", elem_id="rl-compare")
        plot = gr.Plot(label="Learning curves")
    return algos, seeds, window, go, plot


def _edited_world(world: GridWorld, rows, cols, wind, slip, step_r, bump, limit, gamma) -> GridWorld:
    world = world.resized(int(rows), int(cols))
    winds = [int(w) for w in wind.replace(" ", "").split(",") if w] if wind else []
    return replace(world, name="custom", wind=winds, slip=float(slip), step_reward=float(step_r),
                   bump_reward=None if bump is None else float(bump),
                   max_steps=None if limit is None else int(limit), gamma=float(gamma))


def build(ctx) -> None:
    world0 = preset(DEFAULT_PRESET)
    world = gr.State(world0)
    run = gr.State(None)
    selected = gr.State(None)
    idx = gr.State(0)  # the frame shown; the slider mirrors it (not on every animation frame)
    with gr.Row():
        with gr.Column(scale=3):
            grid = gr.HTML(_grid_html(NO_RUN, grid_svg(world0, None)), js_on_load=CLICK_JS, elem_id="rl-grid",
                           server_functions=[frame_drawn])
            back, play, pause, step, fps, frame, show_q = _play_controls()
        with gr.Column(scale=2):
            name = gr.Dropdown(list(PRESETS), value=DEFAULT_PRESET, label="World", elem_id="rl-preset")
            algo, about, params = _algorithm_controls()
            run_btn = gr.Button("Run", variant="primary", elem_id="rl-run")
            status = gr.Markdown()
            inspector = gr.Markdown("Click a cell to see its backup arithmetic.", elem_id="rl-backup")
    mode, reward, world_fields, apply, save, saved, load = _editor_controls()
    algos, seeds, window, compare, plot = _compare_controls()
    _wire(locals())


def _wire(c: dict) -> None:
    """Connect the events; `c` is build()'s namespace of components."""
    view_out = [c["grid"], c["inspector"]]
    frame_out = [*view_out, c["idx"], c["frame"]]
    gamma = c["params"][0]

    def on_preset(name):
        w = preset(name)
        return (w, None, None, *_view(w, None, 0, False, None), 0, gr.update(value=0, maximum=1), w.gamma,
                *_world_controls(w)[:-1], f"Loaded **{w.name}**.")

    c["name"].change(on_preset, c["name"], [c["world"], c["run"], c["selected"], *frame_out, gamma,
                                          *c["world_fields"], c["status"]])
    c["algo"].change(lambda a: ALGORITHMS[a].text, c["algo"], c["about"])

    def on_run(world, algorithm, show_q, sel, *values):
        try:
            dp_cfg, agent = _configs(*values)
            result = start_run(world, algorithm, dp_cfg, agent)
        except ValueError as exc:
            gr.Warning(str(exc))
            return None, *_view(world, None, 0, show_q, sel), 0, gr.update(value=0, maximum=1), f"⚠️ {exc}"
        note = f" (only the first {len(result.frames)} frames kept)" if result.truncated else ""
        slider = gr.update(value=0, maximum=max(1, len(result.frames) - 1))
        message = f"Ran **{algorithm}**: {len(result.frames)} frames{note}."
        return result, *_view(world, result, 0, show_q, sel), 0, slider, message

    def animate(world, run, i, fps, show_q, sel):
        if run is None:
            return
        last, start = len(run.frames) - 1, time.perf_counter()
        first = 0 if int(i) >= last else int(i) + 1
        for k in range(first, last + 1):
            if k > 3 and not PACER.wait(run.token, k - 4, timeout=5.0):  # at most four frames in flight
                return  # the page stopped drawing (closed or hidden): stop streaming to it
            grid, inspector = _view(world, run, k, show_q, sel)
            every = k % SLIDER_EVERY == 0 or k == last
            # the inspector's Markdown is costly to redraw: refresh it every third frame while playing
            text = inspector if sel is not None and (k % 3 == 0 or k == last) else gr.skip()
            yield grid, text, k, (k if every else gr.skip())
            # keep to the schedule start + n / fps rather than sleeping a fixed gap after each frame's work
            time.sleep(max(0.0, start + (k - first + 1) / fps - time.perf_counter()))

    # a generator event streams the frames (measured faster than a gr.Timer, whose every tick is a new request),
    # paced by the page's reports of drawn frames so a slow browser is never flooded
    anim_in = [c["world"], c["run"], c["idx"], c["fps"], c["show_q"], c["selected"]]
    ran = c["run_btn"].click(on_run, [c["world"], c["algo"], c["show_q"], c["selected"], *c["params"]],
                             [c["run"], *frame_out, c["status"]])
    playing = ran.then(animate, anim_in, frame_out)
    played = c["play"].click(animate, anim_in, frame_out)
    stop = [playing, played]
    c["pause"].click(lambda i: i, c["idx"], c["frame"], cancels=stop)

    def stepper(delta):
        def move(world, run, i, show_q, sel):
            n = len(run.frames) if run else 1
            k = max(0, min(n - 1, int(i) + delta))
            return *_view(world, run, k, show_q, sel), k, k
        return move

    step_in = [c["world"], c["run"], c["idx"], c["show_q"], c["selected"]]
    c["step"].click(stepper(1), step_in, frame_out, cancels=stop)
    c["back"].click(stepper(-1), step_in, frame_out, cancels=stop)
    scrub_in = [c["world"], c["run"], c["frame"], c["show_q"], c["selected"]]
    c["frame"].release(stepper(0), scrub_in, frame_out, cancels=stop)
    c["show_q"].change(stepper(0), step_in, frame_out)

    def on_click(world, run, i, show_q, mode, reward, evt: gr.EventData):
        r, col = (int(x) for x in evt.cell.split(","))
        if mode == "inspect":
            return world, run, (r, col), *_view(world, run, i, show_q, (r, col)), gr.update()
        try:
            world = world.with_cell(r, col, PAINT[mode], reward if mode in ("terminal", "cliff", "free") else None)
        except ValueError as exc:
            gr.Warning(str(exc))
            return world, run, None, *_view(world, run, i, show_q, None), f"⚠️ {exc}"
        return world, None, None, *_view(world, None, 0, show_q, None), "World edited: press Run again."

    c["grid"].click(on_click, [c["world"], c["run"], c["idx"], c["show_q"], c["mode"], c["reward"]],
                    [c["world"], c["run"], c["selected"], *view_out, c["status"]])
    _wire_editor(c, view_out, gamma)
    _wire_compare(c, gamma)


def _wire_editor(c: dict, view_out: list, gamma) -> None:
    def on_apply(world, g, *fields):
        try:
            new = _edited_world(world, *fields, g)
        except (ValueError, TypeError) as exc:  # TypeError: a number field left empty
            gr.Warning(str(exc))
            return world, gr.update(), *_view(world, None, 0, False, None), f"⚠️ {exc}"
        return new, None, *_view(new, None, 0, False, None), "World settings applied: press Run again."

    c["apply"].click(on_apply, [c["world"], gamma, *c["world_fields"]],
                     [c["world"], c["run"], *view_out, c["status"]])

    def on_save(world, g):
        safe = "".join(ch if ch.isalnum() else "_" for ch in world.name).strip("_") or "world"
        return str(replace(world, gamma=float(g)).save(subdir("rl_worlds") / f"{safe}.json"))

    c["save"].click(on_save, [c["world"], gamma], c["saved"])

    def on_load(path):
        if not path:
            return (gr.update(),) * (5 + len(c["world_fields"]) + 1)
        try:
            w = GridWorld.load(path)
        except (ValueError, TypeError) as exc:
            gr.Warning(f"Could not load the world: {exc}")
            return (gr.update(),) * (5 + len(c["world_fields"])) + (f"⚠️ Could not load the world: {exc}",)
        return (w, None, *_view(w, None, 0, False, None), w.gamma, *_world_controls(w)[:-1], f"Loaded **{w.name}**.")

    c["load"].change(on_load, c["load"], [c["world"], c["run"], *view_out, gamma, *c["world_fields"], c["status"]])


def _wire_compare(c: dict, gamma) -> None:
    def on_compare(world, names, seeds, window, *values):
        if not names:
            raise gr.Error("Pick at least one algorithm to compare.")
        try:
            _, agent = _configs(*values)
            curves = list(learning_curves(names, world.to_env(), agent, int(seeds)))
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        return curves_figure(curves, int(window))

    c["compare"].click(on_compare, [c["world"], c["algos"], c["seeds"], c["window"], *c["params"]], c["plot"])
