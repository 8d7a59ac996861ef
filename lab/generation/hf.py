"""Generation with transformers: streaming chat, batched completion with left padding, log-likelihood scoring.

One `ModelManager` holds the base model; each call names its adapter per row (peft mixed-batch inference), so base
and adapted answers can come from one forward pass. Batches are sorted by prompt length so padding stays small, and
padding is on the left for generation (new tokens follow the prompt directly) but on the right for scoring (causal
attention never sees right padding, so no position ids need fixing). Stop strings use generate()'s own
`stop_strings` criterion, which ends each row on its own.
"""

from __future__ import annotations

import threading
from typing import Iterator, Sequence

from lab.generation.base import Completion, SamplingParams, first_row, harness_split
from lab.generation.streaming import BatchStreamer, cut_at_stop
from lab.models.loading import ModelManager


class TransformersBackend:
    """The Backend protocol on a transformers model held by a ModelManager."""

    name = "transformers"

    def __init__(self, manager: ModelManager, batch_size: int = 32):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        self.manager = manager
        self.batch_size = batch_size

    @property
    def tokenizer(self):
        self.manager.model()
        return self.manager.tokenizer

    def close(self) -> None:
        self.manager.unload()

    def context_length(self) -> int:
        cfg = self.manager.model().config
        return int(getattr(cfg, "max_position_embeddings", 2048))

    def chat_prompt(self, messages: Sequence[dict]) -> str:
        return self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _generate_kwargs(self, params: SamplingParams) -> dict:
        import torch

        if params.seed is not None:
            torch.manual_seed(params.seed)
        kw = dict(max_new_tokens=params.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if params.greedy:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=None)
        if params.stop:
            kw.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        return kw

    def _encode(self, prompts: Sequence[str], padding_side: str):
        # Chat templates already contain their special tokens, and eval prompts are written out in full.
        return self.tokenizer(
            list(prompts), return_tensors="pt", padding=True, padding_side=padding_side, add_special_tokens=False
        )

    def stream_chat(
        self, messages: Sequence[dict], params: SamplingParams, adapter: str | None = None
    ) -> Iterator[str]:
        return first_row(self.stream_many([messages], params, [adapter]))

    def stream_many(
        self, conversations: Sequence[Sequence[dict]], params: SamplingParams, adapters: Sequence[str | None]
    ) -> Iterator[list[str]]:
        """Stream several conversations in one batch (one adapter each); yields a list of deltas per step."""
        import torch

        extra = self.manager.forward_kwargs(list(adapters))  # attaching an adapter wraps the model: do it first
        model = self.manager.model()
        prompts = [self.chat_prompt(m) for m in conversations]
        inputs = self._encode(prompts, "left")
        streamer = BatchStreamer(self.tokenizer, len(prompts), list(params.stop))
        kwargs = dict(**inputs, **self._generate_kwargs(params), **extra, streamer=streamer)

        def work() -> None:
            try:
                with self.manager.generation_lock, torch.inference_mode():
                    model.generate(**kwargs)
                streamer.end()
            except BaseException as exc:  # surfaced in the consumer's thread
                streamer.error(exc)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        yield from streamer
        thread.join()

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, adapter: str | None = None
    ) -> list[Completion]:
        import torch

        self.manager.adapter_name(adapter)  # attaching an adapter wraps the model: do it before taking the model
        model = self.manager.model()
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        results: list[Completion | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            inputs = self._encode([prompts[i] for i in idx], "left")
            with self.manager.generation_lock, torch.inference_mode():
                out = model.generate(**inputs, **self._generate_kwargs(params), **self.manager.forward_kwargs([adapter] * len(idx)))
            width = inputs["input_ids"].shape[1]
            for row, i in enumerate(idx):
                new = out[row, width:].tolist()
                n_prompt = int(inputs["attention_mask"][row].sum())
                results[i] = self._completion(new, n_prompt, params)
        return results  # type: ignore[return-value]

    def _completion(self, new_ids: list[int], n_prompt: int, params: SamplingParams) -> Completion:
        """Cut a row's new tokens at EOS (kept in the count) or at padding added after the row finished."""
        tok = self.tokenizer
        n, ended = len(new_ids), False
        for k, t in enumerate(new_ids):
            if t == tok.eos_token_id:
                n, ended = k + 1, True
                break
            if t == tok.pad_token_id:
                n, ended = k, True
                break
        text, hit_stop = cut_at_stop(tok.decode(new_ids[:n], skip_special_tokens=True), list(params.stop))
        finish = "stop" if ended or hit_stop else "length"
        return Completion(text=text, prompt_tokens=n_prompt, completion_tokens=n, finish_reason=finish)

    def loglikelihood(self, requests: Sequence[tuple[str, str]], adapter: str | None = None) -> list[float]:
        """Sum of log p(continuation | context), tokenised as lm-evaluation-harness does (context and continuation
        encoded separately, trailing spaces of the context moved to the continuation).

        The model reads context + continuation[:-1] and the last len(continuation) positions score the continuation.
        Requests that share that input (MMLU's four answer letters after one question) differ only in the token
        read at the last position, so they share one forward pass, as the harness's grouping does. Rows are
        left-padded with explicit position ids, and only the needed positions' logits are computed
        (`logits_to_keep`): a full vocabulary of logits for every position of a batch would cost gigabytes."""
        import torch

        tok = self.tokenizer
        groups: dict[tuple, list[tuple[int, list[int]]]] = {}
        for i, (context, continuation) in enumerate(requests):
            context, continuation = harness_split(context, continuation)
            ctx = tok(context, add_special_tokens=False)["input_ids"]
            cont = tok(continuation, add_special_tokens=False)["input_ids"]
            if not cont:
                raise ValueError(f"request {i}: the continuation {continuation!r} has no tokens")
            groups.setdefault((tuple(ctx + cont[:-1]), len(cont)), []).append((i, cont))
        scores = [0.0] * len(requests)
        keys = sorted(groups, key=lambda k: len(k[0]), reverse=True)
        for start in range(0, len(keys), self.batch_size):
            batch = keys[start : start + self.batch_size]
            for key, logprobs in zip(batch, self._last_logprobs(batch, adapter)):
                for i, cont in groups[key]:
                    scores[i] = float(logprobs[torch.arange(len(cont)), torch.tensor(cont)].sum())
        return scores

    def _last_logprobs(self, keys: list[tuple], adapter: str | None) -> list:
        """For each (input ids, n): log-probabilities (n x vocab) at the input's last n positions, in one batch."""
        import torch

        self.manager.adapter_name(adapter)
        model = self.manager.model()
        width = max(len(ids) for ids, _ in keys)
        keep = max(n for _, n in keys)
        ids = torch.full((len(keys), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(keys), width), dtype=torch.long)
        for row, (seq, _) in enumerate(keys):
            ids[row, width - len(seq) :] = torch.tensor(seq)
            mask[row, width - len(seq) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        extra = self.manager.forward_kwargs([adapter] * len(keys))
        with self.manager.generation_lock, torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep, **extra).logits
        return [torch.log_softmax(logits[row, keep - n :].float(), dim=-1) for row, (_, n) in enumerate(keys)]

