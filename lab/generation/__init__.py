"""Generation backends behind one interface: transformers, vLLM in-process, and an OpenAI-compatible HTTP endpoint."""

from lab.generation.base import Backend, Completion, SamplingParams

__all__ = ["Backend", "Completion", "SamplingParams", "make_backend"]


def make_backend(kind: str, manager=None, **kwargs) -> Backend:
    """Build a backend by name: 'transformers', 'vllm' or 'openai' (heavy imports happen here, not at app start)."""
    if kind == "transformers":
        from lab.generation.hf import TransformersBackend

        return TransformersBackend(manager, **kwargs)
    if kind == "vllm":
        from lab.generation.vllm_backend import VLLMBackend

        return VLLMBackend(**kwargs)
    if kind == "openai":
        from lab.generation.openai_http import OpenAIBackend

        return OpenAIBackend(**kwargs)
    raise ValueError(f"backend must be one of 'transformers', 'vllm', 'openai'; got {kind!r}")
