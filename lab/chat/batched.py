"""Both arena panes in ONE generate call on a transformers model, each row with its own adapter and temperature.

Why one call: on a small GPU or a CPU, decoding a token reads all weights once whatever the batch size, so a batch of
two costs far less than two separate calls (bench/chat_streaming.py measures it). It is also the only safe way to run
two adapters of one peft model at once: peft's mixed-adapter inference (`adapter_names`, peft docs "Inference with
different LoRA adapters in the same batch") registers forward hooks on the shared modules for the duration of a
call, so two concurrent calls on one model would see each other's adapter names. Calls are therefore serialised per
model by the manager's `generation_lock`.

Per-row sampling: generate() takes one temperature for the batch, so the built-in warpers are switched off and
`RowSampling` applies each row's temperature and then the shared top-p (the order generate() itself uses); a row with
temperature 0 keeps only its arg-max token, i.e. greedy decoding inside a sampled batch.
"""

from __future__ import annotations

import threading
from typing import Iterator, Sequence

from lab.generation.base import SamplingParams

def shares_batch(a: SamplingParams, b: SamplingParams) -> bool:
    """Two panes can share one generate call when everything but the temperature is the same."""
    return (a.max_new_tokens, a.top_p, a.seed, a.stop) == (b.max_new_tokens, b.top_p, b.seed, b.stop)


class RowSampling:
    """A generate() logits processor: row i divided by temperature i, then top-p; temperature 0 rows keep arg-max."""

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


def _generate_kwargs(tokenizer, params: Sequence[SamplingParams]) -> dict:
    import torch
    from transformers import LogitsProcessorList

    first = params[0]
    if first.seed is not None:
        torch.manual_seed(first.seed)
    kw = dict(max_new_tokens=first.max_new_tokens, pad_token_id=tokenizer.pad_token_id)
    if all(p.greedy for p in params):
        kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:  # built-in warpers off (temperature 1, top-p 1, top-k 0); RowSampling does both per row
        rows = RowSampling([p.temperature for p in params], first.top_p)
        kw.update(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, logits_processor=LogitsProcessorList([rows]))
    if first.stop:
        kw.update(stop_strings=list(first.stop), tokenizer=tokenizer)
    return kw


def stream_rows(
    backend, conversations: Sequence[Sequence[dict]], params: Sequence[SamplingParams], adapters: Sequence[str | None]
) -> Iterator[list[str]]:
    """Stream several conversations of one TransformersBackend in one batch; yields a list of deltas per step."""
    import torch

    from lab.generation.streaming import BatchStreamer

    if not (len(conversations) == len(params) == len(adapters)) or not conversations:
        raise ValueError("need one params and one adapter per conversation")
    if not all(shares_batch(params[0], p) for p in params):
        raise ValueError("rows of one batch may differ in temperature only")
    manager = backend.manager
    extra = manager.forward_kwargs(list(adapters))  # attaches adapters first: that may wrap the model in peft
    model = manager.model()
    tokenizer = backend.tokenizer
    prompts = [backend.chat_prompt(m) for m in conversations]
    inputs = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    streamer = BatchStreamer(tokenizer, len(prompts), list(params[0].stop))
    lock = manager.generation_lock  # peft's adapter hooks are per call: one call at a time per model

    def work() -> None:
        try:
            with lock, torch.inference_mode():
                model.generate(**inputs, **_generate_kwargs(tokenizer, params), **extra, streamer=streamer)
            streamer.end()
        except BaseException as exc:  # handed to the consumer's thread
            streamer.error(exc)

    thread = threading.Thread(target=work, daemon=True, name="arena-batch")
    thread.start()
    yield from streamer
    thread.join()
