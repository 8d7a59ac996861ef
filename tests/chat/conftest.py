"""Fixtures for arena tests on the real embedded model: its backend and a tiny LoRA that changes its answers."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def lora(embedded_path, tmp_path_factory) -> str:
    from tests.models.helpers import make_lora

    return str(make_lora(embedded_path, tmp_path_factory.mktemp("chat_lora") / "tiny_lora", scale=0.5))


@pytest.fixture(scope="session")
def backend(embedded_path):
    from lab.context import LabContext

    return LabContext().backend("embedded")
