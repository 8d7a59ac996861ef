"""The Train tab in a real browser: check tiny data, launch a LoRA job on the embedded model, and watch the loss curve
grow as the job logs steps; then open the page again and find the run re-attached."""

from __future__ import annotations

import json

import pytest

from tests.train.conftest import QA, write_jsonl

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POINTS_JS = """() => {
  const el = document.querySelector('#train-plot .js-plotly-plot');
  if (!el || !el.data) return 0;
  const loss = el.data.find((t) => t.name === 'loss');
  return loss ? loss.x.length : 0;
}"""


def _fill(page, key: str, value) -> None:
    box = page.locator(f"#train-{key} input, #train-{key} textarea").first
    box.fill(str(value))
    box.press("Tab")


def test_launch_tiny_job_and_see_the_loss_curve_move(page, lab_home, tmp_path):
    data_file = write_jsonl(tmp_path / "qa.jsonl", QA)
    page.get_by_role("tab", name="Train").click()
    _fill(page, "dataset", data_file)
    page.locator("#train-finetune").get_by_text("lora", exact=True).click()
    page.get_by_text("Hyper-parameters").click()
    for key, value in {"max_steps": 2, "batch_size": 1, "max_length": 64, "save_steps": 1, "name": "browser"}.items():
        _fill(page, key, value)
    page.locator("#train-gradient_checkpointing input").uncheck()
    page.get_by_role("button", name="Check data").click()
    page.wait_for_function("() => document.querySelector('#train-report textarea').value.includes('no problems')")
    page.locator("#train-launch").click()
    page.wait_for_function(f"({POINTS_JS})() >= 1", timeout=300_000)
    page.wait_for_function(f"({POINTS_JS})() >= 2", timeout=300_000)
    page.wait_for_function("() => document.querySelector('#train-status').innerText.includes('finished')",
                           timeout=120_000)
    assert "adapter saved" in page.inner_text("#train-status")
    run = next((lab_home / "runs").glob("*-browser"))
    assert json.loads((run / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == "embedded"
    page.reload()
    page.get_by_role("tab", name="Train").click()
    page.wait_for_function(f"({POINTS_JS})() >= 2", timeout=60_000)
