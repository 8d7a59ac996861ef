"""Generation with transformers: streaming chat, batched completion with left padding, log-likelihood scoring.

One `ModelManager` holds the base model; each call names its adapter per row (peft mixed-batch inference), so base
and adapted answers can come from one forward pass. Batches are sorted by prompt length so padding stays small, and
padding is on the left for generation (new tokens follow the prompt directly) but on the right for scoring (causal
attention never sees right padding, so no position ids need fixing). Stop strings use generate()'s own
`stop_strings` criterion, which ends each row on its own.

Streaming several conversations in ONE generate call (the chat arena's two panes): on a GPU, decoding a token reads
all weights once whatever the batch size, so a batch of two costs far less than two calls (on a small CPU it does
not: see lab/context.py and bench/results/chat_streaming.md). It is also the only safe way to run two adapters of one peft model at once: peft's
mixed-adapter inference (`adapter_names`) hooks the shared modules for the duration of a call, so calls on one model
are serialised by the manager's `generation_lock`. generate() takes one temperature per call, so when rows differ in
temperature the built-in warpers are switched off and `RowSampling` applies each row's own.
"""

from __future__ import annotations

import threading
from typing import Iterator, Sequence

from lab.generation.base import Completion, SamplingParams, batch_compatible, first_row, harness_split, per_row
from lab.generation.streaming import BatchStreamer, cut_at_stop
from lab.models.loading import ModelManager


class RowSampling:
    """A generate() logits processor: row i divided by temperature i, then top-p (the order generate() uses); rows
    with temperature 0 keep only their arg-max token, i.e. greedy decoding inside a sampled batch."""

    def __init__(self, temperatures: Sequence[float], top_p: float):
        self.temperatures = list(temperatures)
        self.top_p = top_p

    def __call__(self, input_ids, scores):
        import torch
        from transformers.generation.logits_process import TopPLogitsWarper

        temps = torch.tensor(self.temperatures, dtype=scores.dtype, device=scores.device)
        greedy = temps == 0
        scaled = scores / torch.where(greedy, torch.ones_like(temps), temps)[:, None]
        if self.top_p < 1.0:
            scaled = TopPLogitsWarper(self.top_p)(input_ids, scaled)
        if bool(greedy.any()):
            best = scores.argmax(dim=-1, keepdim=True)
            only_best = torch.full_like(scaled, float("-inf")).scatter(-1, best, 0.0)
            scaled = torch.where(greedy[:, None], only_best, scaled)
        return scaled


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

    def _generate_kwargs(self, rows: Sequence[SamplingParams]) -> dict:
        """generate() options for a batch of rows that are `batch_compatible`."""
        import torch
        from transformers import LogitsProcessorList

        if not batch_compatible(rows):
            raise ValueError("rows of one batch must share max_new_tokens and stop, and sampled rows top_p and seed")
        sampled = [p for p in rows if not p.greedy]
        kw = dict(max_new_tokens=rows[0].max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if not sampled:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            if sampled[0].seed is not None:
                torch.manual_seed(sampled[0].seed)
            if len(sampled) == len(rows) and len({p.temperature for p in rows}) == 1:
                kw.update(do_sample=True, temperature=sampled[0].temperature, top_p=sampled[0].top_p, top_k=None)
            else:  # built-in warpers off (temperature 1, top-p 1, top-k 0); RowSampling does both per row
                processor = RowSampling([p.temperature for p in rows], sampled[0].top_p)
                kw.update(do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                          logits_processor=LogitsProcessorList([processor]))
        if rows[0].stop:
            kw.update(stop_strings=list(rows[0].stop), tokenizer=self.tokenizer)
        return kw

    def _encode(self, prompts: Sequence[str], padding_side: str):
        # Chat templates already contain their special tokens, and eval prompts are written out in full.
        return self.tokenizer(
            list(prompts), return_tensors="pt", padding=True, padding_side=padding_side, add_special_tokens=False
        ).to(self.manager.model().device)

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
        """Stream several conversations in one generate call, each with its own adapter and sampling parameters
        (which may differ in temperature only); yields a list of per-row deltas per step."""
        import torch

        if not conversations or len(adapters) != len(conversations):
            raise ValueError("need at least one conversation and one adapter (or None) per conversation")
        rows = per_row(params, len(conversations))
        gen_kwargs = self._generate_kwargs(rows)  # validates the rows before anything is loaded
        extra = self.manager.forward_kwargs(list(adapters))  # attaching an adapter wraps the model: do it first
        model = self.manager.model()
        prompts = [self.chat_prompt(m) for m in conversations]
        inputs = self._encode(prompts, "left")
        streamer = BatchStreamer(self.tokenizer, len(prompts), list(rows[0].stop))
        kwargs = dict(**inputs, **gen_kwargs, **extra, streamer=streamer)

        def work() -> None:
            try:
                with self.manager.generation_lock, torch.inference_mode():
                    model.generate(**kwargs)
                streamer.end()
            except BaseException as exc:  # surfaced in the consumer's thread
                streamer.error(exc)

        thread = threading.Thread(target=work, daemon=True, name="generate")
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
                out = model.generate(**inputs, **self._generate_kwargs([params]), **self.manager.forward_kwargs([adapter] * len(idx)))
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
                    scores[i] = float(logprobs[torch.arange(len(cont)), torch.tensor(cont)].sum())  # on the CPU
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
            ids, mask, positions = (t.to(model.device) for t in (ids, mask, positions))
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep, **extra).logits
        return [torch.log_softmax(logits[row, keep - n :].float(), dim=-1).cpu() for row, (_, n) in enumerate(keys)]

