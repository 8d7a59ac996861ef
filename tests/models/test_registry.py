"""Registry: model strings, the embedded conversion cache, adapter discovery and base checks."""

from __future__ import annotations

import json
import os

import pytest

from lab.models import embedded
from lab.models.registry import (
    AdapterError,
    ModelNotFound,
    check_adapter,
    list_adapters,
    read_adapter,
    resolve_model,
)
from tests.models.helpers import make_lora


def test_embedded_resolves_to_a_valid_checkpoint(embedded_path):
    assert os.path.isfile(os.path.join(embedded_path, "config.json"))
    assert embedded.is_valid(embedded.checkpoint_dir())


def test_valid_cache_is_not_converted_again(embedded_path):
    weights = os.path.join(embedded_path, "model.safetensors")
    before = os.stat(weights).st_mtime_ns
    assert resolve_model("embedded") == embedded_path
    assert os.stat(weights).st_mtime_ns == before


@pytest.mark.slow
def test_corrupt_cache_is_converted_again(tmp_path, monkeypatch, embedded_path):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setenv("LAB_HOME", str(home))
    import shutil

    target = home / "models" / embedded.NAME
    shutil.copytree(embedded_path, target)
    weights = target / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(1000)  # an interrupted copy or conversion
    assert not embedded.is_valid(target)
    assert resolve_model("embedded") == str(target)
    assert embedded.is_valid(target)
    assert weights.stat().st_size == os.stat(os.path.join(embedded_path, "model.safetensors")).st_size


def test_hub_ids_and_folders(tmp_path):
    assert resolve_model("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    with pytest.raises(ModelNotFound, match="unknown model"):
        resolve_model("not a model")
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve_model(str(tmp_path))


def test_adapters_are_listed_newest_first(fresh_lab_home, embedded_path):
    first = make_lora(embedded_path, fresh_lab_home / "adapters" / "first", seed=1)
    run_adapter = make_lora(embedded_path, fresh_lab_home / "runs" / "run-2" / "adapter", seed=2)
    os.utime(first / "adapter_config.json", (1, 1))
    (fresh_lab_home / "adapters" / "broken").mkdir()  # no adapter_config.json: not offered
    found = list_adapters()
    assert [a.name for a in found] == ["run-2", "first"]
    assert found[0].path == str(run_adapter.resolve())
    assert [a.name for a in list_adapters("embedded")] == ["run-2", "first"]


def test_broken_adapter_folders_say_what_is_wrong(tmp_path):
    with pytest.raises(AdapterError, match="no adapter_config.json"):
        read_adapter(tmp_path)
    (tmp_path / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterError, match="not valid JSON"):
        read_adapter(tmp_path)
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(AdapterError, match="no adapter weights"):
        read_adapter(tmp_path)


def test_adapter_for_another_architecture_is_refused(tmp_path, embedded_path):
    from transformers import LlamaConfig

    other = tmp_path / "other-model"
    LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, vocab_size=1000).save_pretrained(other)
    adapter = make_lora(embedded_path, tmp_path / "adapter", base_name=str(other))
    with pytest.raises(AdapterError, match="does not match"):
        check_adapter(adapter, "embedded")
    data = json.loads((adapter / "adapter_config.json").read_text())
    data["base_model_name_or_path"] = embedded_path  # the converted folder is the embedded model
    (adapter / "adapter_config.json").write_text(json.dumps(data))
    assert check_adapter(adapter, "embedded").base_model == embedded_path
