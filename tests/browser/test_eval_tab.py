"""The Evaluate tab in a real browser: run a 20-question MMLU eval on the embedded model, watch it finish, then open
one question's details (the exact prompt, the per-letter log-likelihoods, the verdict)."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def test_run_twenty_questions_and_open_details(page):
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#eval-bench").get_by_label("mmlu").check()
    _choose(page, "eval-protocol", "harness-0shot")
    _choose(page, "eval-subjects", "global_facts")  # short questions keep this fast on two CPU cores
    page.keyboard.press("Escape")
    page.locator("#eval-limit input").fill("20")
    page.locator("#eval-run").click()
    page.wait_for_function(
        "() => document.querySelector('#eval-progress').innerText.includes('finished')", timeout=480_000
    )
    progress = page.inner_text("#eval-progress")
    assert re.search(r"20/20 questions · accuracy so far \d+\.\d%", progress), progress
    score = page.inner_text("#eval-score")
    assert "MMLU · harness-0shot" in score and "95% CI" in score and "20 questions" in score.replace("20/20", "20")

    page.locator("#eval-qid input").fill("0")
    page.locator("#eval-show-details").click()
    page.wait_for_function(
        "() => /Prompt, exactly as sent|No question/.test(document.querySelector('#eval-details').innerText)")
    details = page.inner_text("#eval-details")
    first_id = re.search(r"No question 0 in this run; ids: \[(\d+)", details)
    if first_id:  # ids are positions in the full test split; open the first one the run has
        page.locator("#eval-qid input").fill(first_id.group(1))
        page.locator("#eval-show-details").click()
        page.wait_for_function(
            "() => document.querySelector('#eval-details').innerText.includes('Prompt, exactly as sent')")
        details = page.inner_text("#eval-details")
    assert "about global facts" in details and "Answer:" in details
    assert re.search(r"[✓✗] (right|wrong)", details) and re.search(r"A: -\d+\.\d{4}", details)
