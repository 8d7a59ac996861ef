"""The lab's shared state for one running app or script: which model, which backend, and the lock on the GPU.

One `LabContext` is made at start-up and handed to every tab. It owns the backends (built lazily, one per kind) so
that the base model is loaded once and serves every adapter, and a lock that serialises GPU-heavy work (model
loading, eval batches) so two browsers cannot load two large models at once.

The chat arena's two panes on one base model share it on a GPU (both answers in one batch). On the CPU a small model
gets a second copy for pane B instead (`pane_replica`): there a batch of two rows costs about twice one row (MKL's
matrix-vector product runs 2-2.5x faster than its two-row product), so batching gains nothing, while two copies
streaming in two threads use both cores (bench/results/chat_streaming.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lab.generation import Backend, make_backend
from lab.models.registry import DEFAULT_MODEL

SMALL_MODEL_BYTES = 2 * 2**30  # on the CPU, models up to this size get a second copy for the arena's pane B


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

    def backend(self, model: str | None = None, kind: str | None = None, replica: int = 0) -> Backend:
        """The backend serving `model` (default: the context's model), built on first use and then reused;
        `replica` > 0 names a further copy of a transformers model (see `pane_replica`)."""
        model = model or self.model
        kind = kind or self.backend_kind
        if replica and kind != "transformers":
            raise ValueError("only transformers backends have replicas")
        key = (kind, model, replica)
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

    def pane_replica(self, model_a: str, model_b: str) -> int:
        """Which copy of its model the arena's pane B uses: 1 (a second copy) when both panes use the same small
        model on the CPU, else 0 (the shared one, batched with pane A). Loads pane A's model to decide."""
        if model_a != model_b or self.backend_kind != "transformers":
            return 0
        model = self.backend(model_a).manager.model()
        if model.device.type != "cpu":
            return 0
        size = sum(p.numel() * p.element_size() for p in model.parameters())
        return 1 if size <= SMALL_MODEL_BYTES else 0

    def unload(self, model: str) -> None:
        """Drop every backend of `model`, freeing its memory."""
        with self.gpu_lock:
            for key in [k for k in self._backends if k[1] == model]:
                backend = self._backends.pop(key)
                close = getattr(backend, "close", None)
                if close:
                    close()
