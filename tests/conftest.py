"""Shared test fixtures: one LAB_HOME for the session, so the embedded model is converted once per test run.

Tests that need an isolated LAB_HOME (a fresh preference store, no adapters) use `fresh_lab_home`, which shares the
converted models folder with the session's by a symlink instead of converting again (a conversion takes a minute on
this 2-core machine).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

_SESSION_HOME = Path(os.environ.get("LAB_TEST_HOME", "")) if os.environ.get("LAB_TEST_HOME") else None


def pytest_configure(config):
    global _SESSION_HOME
    if _SESSION_HOME is None:
        import tempfile

        _SESSION_HOME = Path(tempfile.mkdtemp(prefix="lab_test_home_"))
    _SESSION_HOME.mkdir(parents=True, exist_ok=True)
    os.environ["LAB_HOME"] = str(_SESSION_HOME)


@pytest.fixture(scope="session")
def session_lab_home() -> Path:
    return _SESSION_HOME


@pytest.fixture(scope="session")
def embedded_path(session_lab_home) -> str:
    """Folder of the converted embedded model (converted on first use in this session)."""
    from lab.models.registry import resolve_model

    return resolve_model("embedded")


@pytest.fixture
def fresh_lab_home(tmp_path, monkeypatch, embedded_path) -> Path:
    """An empty LAB_HOME for one test, sharing the session's converted models."""
    home = tmp_path / "lab_home"
    home.mkdir()
    (home / "models").symlink_to(Path(embedded_path).parent, target_is_directory=True)
    monkeypatch.setenv("LAB_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: tests read MMLU/GSM8K from ../shared/data beside the repo")
    return SHARED_DATA
