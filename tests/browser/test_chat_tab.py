"""The Chat tab in a real browser: send one prompt, watch both answers stream, vote blind, find the vote in the export."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BOT_TEXT = """(sel) => [...document.querySelectorAll(sel + ' [data-testid="bot"]')].map(e => e.innerText).join('\\n')"""


def bot_text(page, pane: str) -> str:
    return page.evaluate(BOT_TEXT, f"#chat-pane-{pane}")


def words(text: str) -> list[str]:
    return text.replace("*", "").split()


def wait_for_answers(page, timeout_s: float = 480) -> list[tuple[int, int, bool]]:
    """Poll both panes until the vote buttons turn on; returns (len A, len B, votes enabled) samples."""
    samples, deadline = [], time.time() + timeout_s
    while time.time() < deadline:
        enabled = page.is_enabled("#chat-vote-a")
        samples.append((len(bot_text(page, "a")), len(bot_text(page, "b")), enabled))
        if enabled:
            return samples
        time.sleep(0.15)
    raise AssertionError(f"answers did not finish in {timeout_s}s; last samples {samples[-5:]}")


def test_blind_chat_streams_both_votes_and_exports(page, lab_home):
    page.get_by_role("tab", name="Chat").click()
    page.get_by_text("System prompt and sampling (both panes)").click()
    page.fill("#chat-max-new input[type=number]", "12")
    page.press("#chat-max-new input[type=number]", "Enter")
    assert page.is_checked("#chat-blind input")
    assert not page.is_enabled("#chat-vote-a")

    page.fill("#chat-prompt textarea", "Name a colour you like.")
    page.click("#chat-send")
    samples = wait_for_answers(page)
    final_a, final_b = bot_text(page, "a"), bot_text(page, "b")
    assert final_a and final_b
    streaming = [s for s in samples if s[0] and s[1] and not s[2]]
    assert streaming, "never saw both panes holding partial answers while the votes were still off"
    assert streaming[0][:2] != (len(final_a), len(final_b)), "answers did not grow after first appearing"
    assert "hidden until you vote" in page.inner_text("#chat-pane-a")

    page.click("#chat-vote-a")  # the left answer is better
    page.wait_for_function("document.querySelector('#chat-note').innerText.includes('saved')")
    assert "embedded" in page.inner_text("#chat-pane-a")  # names revealed
    assert not page.is_enabled("#chat-vote-a")  # one vote per answer pair

    page.get_by_text("Statistics, votes and exports").click()
    page.click("#chat-export")
    page.wait_for_function(
        "document.querySelector('#chat-export-message').innerText.includes('preference pair')", timeout=60_000)
    rows = [json.loads(line) for line in (lab_home / "exports" / "chat" / "preferences.jsonl").read_text().splitlines()]
    mine = [r for r in rows if r["prompt"][-1]["content"] == "Name a colour you like."]
    assert len(mine) == 1
    assert words(mine[0]["chosen"][0]["content"])[:4] == words(final_a)[:4]  # the left pane's answer won
    assert words(mine[0]["rejected"][0]["content"])[:4] == words(final_b)[:4]
    assert "1 preference pair(s)" in page.inner_text("#chat-export-message")

    # Last, so the refusal's component updates cannot race with typing the real prompt: an empty prompt is refused
    # with a message and nothing is generated.
    page.click("#chat-new-round")
    page.click("#chat-send")
    page.wait_for_function("document.querySelector('#chat-note').innerText.includes('empty')")
    assert not page.is_enabled("#chat-vote-a")
