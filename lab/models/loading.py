"""Loading a base model with the options people need on one GPU, and serving its adapters from that one copy.

`load_model` maps a `LoadConfig` onto transformers' own options: dtype, bitsandbytes 4-bit NF4 with double
quantisation (QLoRA's recipe, Dettmers et al. 2023) or 8-bit, and device placement. `ModelManager` keeps one base
model in memory and attaches adapters with peft's multi-adapter API (`load_adapter`), so a 7B in 4-bit plus several
adapters fits a 24 GB card. Requests pick their adapter per call through peft's `adapter_names` argument (mixed-batch
inference), so no request changes global state and two panes can generate at once with different adapters.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lab.models.registry import AdapterError, check_adapter, resolve_model

BASE = "__base__"  # peft's name for "no adapter" in adapter_names


class NotEnoughMemory(RuntimeError):
    """The model does not fit the device; the message says what to try instead."""


@dataclass
class LoadConfig:
    """How to load a base model."""

    model: str = "embedded"  # 'embedded', a hub id or a local folder
    dtype: str = "auto"  # 'auto' (bf16 on GPU, float32 on CPU), 'bfloat16', 'float16' or 'float32'
    quantization: str = "none"  # 'none', '4bit' (NF4, double quant) or '8bit', through bitsandbytes
    device: str = "auto"  # 'auto' (cuda if present, else cpu), 'cpu', 'cuda' or 'cuda:N'

    def __post_init__(self) -> None:
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ValueError(f"dtype must be auto, bfloat16, float16 or float32; got {self.dtype!r}")
        if self.quantization not in ("none", "4bit", "8bit"):
            raise ValueError(f"quantization must be none, 4bit or 8bit; got {self.quantization!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {self.device!r}")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA GPU is visible; use device 'cpu'")
    return device


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def quantization_config(quantization: str, compute_dtype):
    """bitsandbytes settings for 4-bit NF4 with double quantisation (the QLoRA recipe) or 8-bit; None for none."""
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(cfg: LoadConfig):
    """(model, tokenizer) in eval mode; NotEnoughMemory with advice when it does not fit."""
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve_model(cfg.model)
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    kwargs = dict(dtype=dtype, quantization_config=quantization_config(cfg.quantization, dtype))
    kwargs["device_map"] = {"": device}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except torch.cuda.OutOfMemoryError as exc:
        hint = "load it in 4-bit (--quantization 4bit)" if cfg.quantization != "4bit" else "pick a smaller model"
        raise NotEnoughMemory(f"{cfg.model} does not fit on {device}: {hint}, or unload the other model") from exc
    except OSError as exc:
        raise FileNotFoundError(f"could not load {cfg.model!r} ({exc}); check the id or folder") from exc
    model.eval()
    return model, load_tokenizer(path)


class ModelManager:
    """One base model in memory plus its adapters, loaded lazily on first use."""

    def __init__(self, cfg: LoadConfig):
        self.cfg = cfg
        self._model = None
        self.tokenizer = None
        self._adapters: dict[str, str] = {}  # adapter folder -> peft adapter name
        self._lock = threading.RLock()  # guards loading and attaching adapters
        # peft's mixed-batch inference hooks the shared modules for the length of a call, so two concurrent calls
        # on one model would see each other's adapter names: every forward/generate holds this lock.
        self.generation_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def model(self):
        with self._lock:
            if self._model is None:
                self._model, self.tokenizer = load_model(self.cfg)
            return self._model

    def adapter_name(self, adapter: str | None) -> str:
        """The peft adapter name for a folder (attaching it on first use), or '__base__' for None."""
        if adapter is None:
            return BASE
        with self._lock:
            if adapter in self._adapters:
                return self._adapters[adapter]
            info = check_adapter(adapter, self.cfg.model)
            model = self.model()
            name = f"a{len(self._adapters)}"
            try:
                if not self._adapters:
                    from peft import PeftModel

                    self._model = PeftModel.from_pretrained(model, info.path, adapter_name=name)
                    self._model.eval()
                else:
                    model.load_adapter(info.path, adapter_name=name)
            except (RuntimeError, ValueError) as exc:
                raise AdapterError(f"adapter {info.name} does not fit {self.cfg.model}: {exc}") from exc
            self._adapters[adapter] = name
            return name

    def forward_kwargs(self, adapters: list[str | None]) -> dict:
        """Extra generate/forward kwargs selecting one adapter per row (nothing when no adapter was ever attached)."""
        names = [self.adapter_name(a) for a in adapters]
        return {"adapter_names": names} if self._adapters else {}

    def unload(self) -> None:
        """Free the model's memory (it reloads on next use)."""
        import gc

        with self._lock:
            self._model, self.tokenizer, self._adapters = None, None, {}
            gc.collect()
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except ImportError:
                pass
