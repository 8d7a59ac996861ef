"""The RL tab in a real browser: pick a preset, run value iteration and Q-learning, watch the animation, pause and step
it, and check that the backup inspector follows the clicked cell and the frame. Frame-rate figures come from
bench/rl.py (speed checks live in bench, not in tests, so a busy CI machine cannot fail them)."""

from __future__ import annotations

import re
import time

import pytest

from bench.rl import FPS_JS, choose_option  # the same page measurement and dropdown handling as the benchmark

pytestmark = pytest.mark.browser

LABEL = "#rl-frame-label"


def _frame_number(page) -> int | None:
    m = re.search(r"frame (\d+)/(\d+)", page.inner_text(LABEL))
    return int(m.group(1)) if m else None


def _measure_fps(page, seconds: float = 3.0) -> float:
    """Frames advanced per second while playing, timed in the page by watching the frame label change."""
    return page.evaluate(FPS_JS, seconds)


def _click_cell(page, cell: str) -> None:
    # a real click event through the tab's listener; dispatched because the SVG is replaced on every frame, so
    # Playwright's wait for a stable element could time out while the animation plays
    page.locator(f"#rl-grid rect[data-cell='{cell}']").dispatch_event("click")


def open_rl_tab(page) -> None:
    page.get_by_role("tab", name="RL").click()
    page.wait_for_selector("#rl-grid rect[data-cell]")


def run_value_iteration_on_cliff(page) -> None:
    choose_option(page, "rl-preset", "Cliff Walking (Example 6.6)")
    page.wait_for_function("document.querySelectorAll('#rl-grid rect[data-cell]').length === 48")
    choose_option(page, "rl-algorithm", "Value iteration")
    page.click("#rl-run")
    page.wait_for_function(f"document.querySelector('{LABEL}').innerText.includes('converged')")
    assert "Value iteration" in page.inner_text(LABEL)
    _click_cell(page, "2,5")
    backup = "document.querySelector('#rl-backup').innerText"
    page.wait_for_function(f"{backup}.includes('optimality backup of state (2,5)')")
    text = page.inner_text("#rl-backup")
    assert "max(" in text and "left" in text and "up" in text


def run_q_learning_and_animate(page) -> float:
    choose_option(page, "rl-algorithm", "Q-learning")
    page.locator("#rl-fps input[type=number]").fill("30")
    page.locator("#rl-fps input[type=number]").press("Enter")
    page.get_by_label("episodes").fill("1500")  # long enough that the animation is still playing when paused
    page.click("#rl-run")
    page.wait_for_function(f"document.querySelector('{LABEL}').innerText.includes('Q-learning')")
    page.wait_for_function("document.querySelector('#rl-backup').innerText.includes('Last update at (2,5)')")
    first = page.inner_text("#rl-backup")
    fps = _measure_fps(page)
    assert page.locator("#rl-grid polyline.rl-path").count() == 1  # the agent's episode is drawn
    assert page.inner_text("#rl-backup") != first  # the inspector follows the animation
    page.click("#rl-pause")
    time.sleep(0.5)
    paused = _frame_number(page)
    time.sleep(0.6)
    assert _frame_number(page) == paused
    page.click("#rl-step")
    page.wait_for_function(f"document.querySelector('{LABEL}').innerText.includes('frame {paused + 1}/')")
    return fps


def test_rl_tab_value_iteration_and_q_learning(page):
    open_rl_tab(page)
    run_value_iteration_on_cliff(page)
    fps = run_q_learning_and_animate(page)
    print(f"RL tab animation: {fps:.1f} frames per second")
    # the animation advances; its speed (>= 10 fps on a machine not shared) is measured by bench/rl.py
    assert fps > 0
