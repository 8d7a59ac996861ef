"""Where the lab keeps what it writes: one folder, `LAB_HOME`.

Everything the app produces (converted models, adapters, the preference database, eval results, training runs) lives
under it, so a user can back up, move or delete the lab's state as one folder. The default is `~/.adaptation-lab`;
the `LAB_HOME` environment variable or the app's `--lab-home` flag changes it.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_LAB_HOME = Path("~/.adaptation-lab").expanduser()


def lab_home() -> Path:
    """The lab's folder, created on first use."""
    home = Path(os.environ.get("LAB_HOME") or DEFAULT_LAB_HOME).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def subdir(name: str) -> Path:
    """A named folder under LAB_HOME (models, adapters, evals, runs), created on first use."""
    path = lab_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    return subdir("models")


def adapters_dir() -> Path:
    return subdir("adapters")


def evals_dir() -> Path:
    return subdir("evals")


def runs_dir() -> Path:
    return subdir("runs")


def prefs_db() -> Path:
    return lab_home() / "preferences.sqlite"
