"""The app as a new user meets it: tabs load, a question gets the embedded model's answer, streamed in."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.browser


def test_tabs_are_there(page):
    from playwright.sync_api import expect

    for title in ("Chat", "Evaluate", "Train", "RL"):  # expect() waits for the tabs to render
        expect(page.get_by_role("tab", name=title, exact=True)).to_have_count(1)


def test_answer_streams_into_the_chat(page):
    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat-prompt textarea").fill("What is the capital of France?")
    page.locator("#chat-send").click()
    pane = page.locator("#chat-pane-a")
    seen: list[int] = []
    deadline = time.time() + 240
    while time.time() < deadline:
        text = pane.inner_text()
        if len(text) > 0 and (not seen or len(text) != seen[-1]):
            seen.append(len(text))
        if page.locator("#chat-vote-a").is_enabled():  # votes unlock once both answers are complete
            break
        time.sleep(0.1)
    answers = pane.inner_text() + page.locator("#chat-pane-b").inner_text()
    assert "Paris" in answers  # the greedy pane answers "The capital of France is Paris."
    assert len(seen) >= 3, f"answer appeared all at once, not streamed (lengths seen: {seen})"
