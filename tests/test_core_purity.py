"""The core never imports gradio: every lab module imports in a fresh interpreter without pulling gradio in."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import lab

ROOT = Path(__file__).resolve().parents[1]


def lab_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(lab.__path__, "lab.") if not m.name.endswith("__main__"))


def test_every_lab_module_imports_without_gradio():
    modules = lab_modules()
    assert "lab.models.registry" in modules and "lab.generation.hf" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('gradio' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
