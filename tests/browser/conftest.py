"""Fixtures for real-browser tests: the app started as a user would start it, and Debian's chromium driven by Playwright.

`playwright install` cannot download browsers here, so the system chromium is used (`LAB_CHROMIUM` overrides the
path). One app process serves the whole browser session to keep the suite fast; each test gets a fresh page.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import free_port, wait_for_url

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory, embedded_path) -> Path:
    """The app's own LAB_HOME, sharing the session's converted embedded model."""
    home = tmp_path_factory.mktemp("browser_lab_home")
    (home / "models").symlink_to(Path(embedded_path).parent, target_is_directory=True)
    return home


@pytest.fixture(scope="session")
def app_url(lab_home: Path):
    """URL of `python app.py` running on the embedded model with a temporary LAB_HOME."""
    port = free_port()
    log = lab_home / "app.log"
    env = {**os.environ, "LAB_HOME": str(lab_home), "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_url(url, proc, log, timeout=180)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: install Debian's chromium (make test does)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh page with the app loaded."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(app_url)
    pg.wait_for_selector("gradio-app", timeout=60_000)
    yield pg
    context.close()
