"""RL playground speed: value iteration on a 100x100 world, 500 Q-learning episodes on Cliff Walking, frame rendering,
and the animation's frame rate measured in a real browser (Debian chromium through Playwright).

Targets from the RL issue: value iteration on 100x100 well under 1 s, 500 Q-learning episodes under 1 s, the UI
animating at >= 10 frames per second on the presets. Run by hand from the repo root: `python bench/rl.py`
(add `--no-browser` to skip the browser part). Writes bench/results/rl.json with the machine description and the
load average, since the 2-core machine is often shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.rl import dp, presets, td  # noqa: E402
from lab.rl.grid import GridWorld  # noqa: E402
from lab.rl.playback import start_run  # noqa: E402

RESULT = ROOT / "bench" / "results" / "rl.json"


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numpy

    info["numpy"] = numpy.__version__
    return info


def timed(fn, repeats: int = 5) -> dict:
    """Wall-clock seconds of fn() over repeats: best and median (the best is least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"best_s": round(min(times), 4), "median_s": round(statistics.median(times), 4), "repeats": repeats}


def bench_value_iteration() -> dict:
    cells = ["." * 100 for _ in range(100)]
    cells[0] = "S" + cells[0][1:]
    cells[99] = cells[99][:99] + "T"
    t0 = time.perf_counter()
    env = GridWorld(name="open 100x100", cells=cells).to_env()
    env.outcomes  # noqa: B018  (flattening P into arrays is part of building the model)
    build = time.perf_counter() - t0
    cfg = dp.DPConfig(gamma=1.0, theta=1e-6, max_sweeps=10_000)
    result = dp.value_iteration_fast(env, cfg)
    return {"world": "100x100 open grid, start (0,0), goal (99,99), -1 per step", "states": env.n_states,
            "sweeps": len(result.sweeps), "v_start": float(result.V[env.start]), "build_env_s": round(build, 3),
            "value_iteration": timed(lambda: dp.value_iteration_fast(env, cfg))}


def bench_cliff() -> dict:
    env = presets.cliff_walking().to_env()
    cfg = td.AgentConfig(gamma=1.0, alpha=0.5, epsilon=0.1, episodes=500, seed=0)
    steps = sum(ep.steps for ep in td.q_learning(env, cfg))
    return {"episodes": 500, "steps_total": steps,
            "q_learning": timed(lambda: list(td.q_learning(env, cfg))),
            "sarsa": timed(lambda: list(td.sarsa(env, cfg)))}


def bench_render() -> dict:
    from tabs.rl import _view

    out = {}
    for name, algo in (("Cliff Walking (Example 6.6)", "Q-learning"), ("REINFORCEjs-style maze", "Q-learning"),
                       ("FrozenLake 8x8 (slippery)", "Value iteration")):
        world = presets.preset(name)
        run = start_run(world, algo, dp.DPConfig(gamma=world.gamma), td.AgentConfig(gamma=world.gamma, episodes=200))
        k = len(run.frames) // 2
        t = timed(lambda: _view(world, run, k, True, (1, 1)), repeats=50)
        out[f"{name} / {algo}"] = {"frame_ms_best": round(t["best_s"] * 1000, 2),
                                   "frame_ms_median": round(t["median_s"] * 1000, 2)}
    return out


FPS_JS = """(seconds) => new Promise((resolve) => {
  const el = document.querySelector('#rl-frame-label');
  const seen = [];
  const obs = new MutationObserver(() => {
    const m = el.innerText.match(/frame (\\d+)\\//);
    if (m) seen.push([performance.now(), Number(m[1])]);
  });
  obs.observe(el, {subtree: true, childList: true, characterData: true});
  setTimeout(() => {
    obs.disconnect();
    if (seen.length < 2) return resolve(0);
    const [t0, k0] = seen[0], [t1, k1] = seen[seen.length - 1];
    resolve((k1 - k0) / ((t1 - t0) / 1000));
  }, seconds * 1000);
})"""


# playing: frame 3 or later shown (several updates can land between two polls, so not an exact frame)
STARTED_JS = """() => { const m = document.querySelector('#rl-frame-label').innerText.match(/frame (\\d+)\\//);
  return m && Number(m[1]) >= 3; }"""


def choose_option(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def bench_browser(settings=((12, False), (30, False), (30, True)), seconds: float = 5.0) -> list[dict]:
    """Frames per second shown in chromium for Q-learning on Cliff Walking at several speed settings."""
    import gradio as gr
    from playwright.sync_api import sync_playwright

    from tabs import rl

    with gr.Blocks() as demo:
        with gr.Tab("RL"):
            rl.build(None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue().launch(server_port=port, prevent_thread_lock=True, quiet=True)
    rows = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium"),
                                         args=["--no-sandbox", "--disable-gpu"])
            for fps, inspect in settings:  # a fresh page per setting, as a user opening the app
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(90_000)
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector("#rl-grid rect[data-cell]")
                choose_option(page, "rl-preset", "Cliff Walking (Example 6.6)")
                choose_option(page, "rl-algorithm", "Q-learning")
                page.get_by_label("episodes").fill("1500")
                page.locator("#rl-fps input[type=number]").fill(str(fps))
                page.locator("#rl-fps input[type=number]").press("Enter")
                if inspect:
                    page.locator("#rl-grid rect[data-cell='2,5']").dispatch_event("click")
                page.click("#rl-run")
                page.wait_for_function(STARTED_JS)
                shown = page.evaluate(FPS_JS, seconds)
                rows.append({"speed_setting_fps": fps, "inspector_open": inspect, "shown_fps": round(shown, 1),
                             "load_avg_1min": round(os.getloadavg()[0], 2)})
                page.close()
                print(rows[-1], flush=True)
            browser.close()
    finally:
        demo.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-browser", action="store_true", help="skip the browser frame-rate measurement")
    args = p.parse_args()
    out = {"machine": machine(), "load_avg_1min_start": round(os.getloadavg()[0], 2)}
    out["value_iteration_100x100"] = bench_value_iteration()
    print(json.dumps(out["value_iteration_100x100"]), flush=True)
    out["cliff_walking_500_episodes"] = bench_cliff()
    print(json.dumps(out["cliff_walking_500_episodes"]), flush=True)
    out["frame_render"] = bench_render()
    print(json.dumps(out["frame_render"]), flush=True)
    if not args.no_browser:
        out["browser_animation"] = bench_browser()
    out["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(out, indent=1))
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
