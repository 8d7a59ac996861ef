"""The lab's shared state for one running app or script: which model, which backend, and the lock on the GPU.

One `LabContext` is made at start-up and handed to every tab. It owns the backends (built lazily, one per kind) so
that the base model is loaded once and serves every adapter, and a lock that serialises GPU-heavy work (model
loading, eval batches) so two browsers cannot load two large models at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lab.generation import Backend, make_backend
from lab.models.registry import DEFAULT_MODEL


@dataclass
class LabContext:
    """Settings the app was started with plus lazily built backends."""

    model: str = DEFAULT_MODEL  # base model: 'embedded', a hub id or a local folder
    backend_kind: str = "transformers"  # 'transformers', 'vllm' or 'openai'
    quantization: str = "none"  # 'none', '4bit' or '8bit' (bitsandbytes), transformers backend only
    openai_base_url: str | None = None  # for backend 'openai': e.g. http://127.0.0.1:8000/v1
    tensor_parallel_size: int = 1  # backend 'vllm': GPUs each model is split over (must divide its heads), 1..64
    gpu_lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _backends: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.backend_kind not in ("transformers", "vllm", "openai"):
            raise ValueError(f"backend_kind must be 'transformers', 'vllm' or 'openai'; got {self.backend_kind!r}")
        if self.quantization not in ("none", "4bit", "8bit"):
            raise ValueError(f"quantization must be 'none', '4bit' or '8bit'; got {self.quantization!r}")
        tp = self.tensor_parallel_size
        if isinstance(tp, bool) or not isinstance(tp, int) or not 1 <= tp <= 64:
            raise ValueError(f"tensor_parallel_size must be an integer in [1, 64]; got {tp!r}")
        if self.backend_kind == "openai" and not self.openai_base_url:
            raise ValueError("backend 'openai' needs openai_base_url, e.g. http://127.0.0.1:8000/v1")

    def backend(self, model: str | None = None, kind: str | None = None) -> Backend:
        """The backend serving `model` (default: the context's model), built on first use and then reused."""
        model = model or self.model
        kind = kind or self.backend_kind
        key = (kind, model)
        with self.gpu_lock:
            if key not in self._backends:
                if kind == "transformers":
                    from lab.models.loading import LoadConfig, ModelManager

                    manager = ModelManager(LoadConfig(model=model, quantization=self.quantization))
                    self._backends[key] = make_backend("transformers", manager)
                elif kind == "vllm":
                    self._backends[key] = make_backend("vllm", model=model,
                                                       tensor_parallel_size=self.tensor_parallel_size)
                else:
                    self._backends[key] = make_backend("openai", base_url=self.openai_base_url, model=model)
            return self._backends[key]

    def unload(self, model: str) -> None:
        """Drop every backend of `model`, freeing its memory."""
        with self.gpu_lock:
            for key in [k for k in self._backends if k[1] == model]:
                backend = self._backends.pop(key)
                close = getattr(backend, "close", None)
                if close:
                    close()
