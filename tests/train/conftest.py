"""Fixtures for training tests: a temporary LAB_HOME that reuses one converted embedded checkpoint, and tiny data.

Converting the embedded GGUF takes about a minute, so the session's one conversion (tests/conftest.py) is linked into
each test's LAB_HOME.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def embedded_checkpoint(embedded_path) -> Path:
    """The session's converted embedded model (tests/conftest.py converts it once per test run)."""
    return Path(embedded_path)


@pytest.fixture
def lab_home(tmp_path, monkeypatch, embedded_checkpoint):
    home = tmp_path / "lab_home"
    (home / "models").mkdir(parents=True)
    (home / "models" / embedded_checkpoint.name).symlink_to(embedded_checkpoint, target_is_directory=True)
    monkeypatch.setenv("LAB_HOME", str(home))
    yield home
    from lab.train import jobs

    for run in jobs.list_runs():  # a failed test must not leave a job training in the background
        jobs.stop(run.run_dir)


@pytest.fixture(scope="session")
def tokenizer(embedded_checkpoint):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_checkpoint)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


QA = [{"question": f"What is {a} plus {b}?", "answer": f"{a} + {b} = {a + b}. #### {a + b}"}
      for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 2), (9, 1), (4, 4), (6, 3)]]


def user(text):
    return [{"role": "user", "content": text}]


def assistant(text):
    return [{"role": "assistant", "content": text}]


PREFS = [{"prompt": user(f"What is {a} plus {b}?"), "chosen": assistant(str(a + b)), "rejected": assistant(str(a + b + 1))}
         for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]
