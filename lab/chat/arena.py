"""One arena round on real backends: fit each pane's conversation into its model's context, then stream both answers.

Two ways to stream a pair, chosen per round:
- batched: when both panes use the same backend (same base model) and sampling that differs at most in temperature,
  both conversations go into one `stream_many` call (per-row adapter and temperature), so the weights are read once
  per step for both answers; on a GPU a batch of two costs little more than one (bench/chat_streaming.py).
- threaded: otherwise (different base models, or pane B on its own copy of a small model on the CPU, which
  `LabContext.pane_replica` decides), two threads stream independently (`stream_pair`). Generation on one
  transformers model is serialised by `generation_lock` (peft's per-call adapter hooks are not thread-safe), so two
  panes on the same model that cannot share a batch answer one after the other rather than corrupt each other.
A batched round that fails before its first token (e.g. an adapter that does not fit the model) is retried threaded,
so the error lands in the pane it belongs to. A failure in the middle of a batched round ends both answers, since
they are one computation; the message is shown in both panes and nothing is saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

from lab.chat.conversation import PairDelta, Trimmed, stream_pair, trim_to_context
from lab.generation.base import SamplingParams, shares_batch


@dataclass
class PaneConfig:
    """What answers in one pane."""

    model: str  # base model: 'embedded', a hub id or a folder
    adapter: str | None = None  # peft adapter folder, None for the base model
    params: SamplingParams = field(default_factory=SamplingParams)  # decoding options of this pane

    def __post_init__(self) -> None:
        if not self.model or not self.model.strip():
            raise ValueError("model must name a base model ('embedded', a hub id or a folder)")
        if self.adapter is not None and not str(self.adapter).strip():
            raise ValueError("adapter must be a folder path or None for the base model")


def fit_to_context(backend, messages: Sequence[dict], max_new_tokens: int) -> Trimmed:
    """Trim the oldest turns so the rendered prompt plus the answer fit the model's context.

    Backends that cannot count tokens (no `count_tokens`/`context_length`) get the messages unchanged; their server
    reports an over-long prompt itself, and the pane shows that error.
    """
    count = getattr(backend, "count_tokens", None)
    context = getattr(backend, "context_length", None)
    if count is None or context is None:
        return Trimmed(list(messages), 0, 0)
    budget = int(context()) - max_new_tokens
    return trim_to_context(messages, lambda msgs: count(backend.chat_prompt(msgs)), budget)


def prepare_pane(backend, adapter: str | None) -> None:
    """Load the base model and attach the pane's adapter before streaming, so loading time and load errors (an
    adapter for another base model, say) are reported before the round starts, and two panes never attach adapters
    while the other is generating. Backends without a local ModelManager (vLLM, HTTP) load on their own."""
    manager = getattr(backend, "manager", None)
    if manager is None:
        return
    manager.model()
    if adapter is not None:
        manager.adapter_name(adapter)


def can_batch(backend_a, backend_b, cfg_a: PaneConfig, cfg_b: PaneConfig) -> bool:
    """Both panes fit one `stream_many` call: the same backend, sampling differing at most in temperature."""
    return backend_a is backend_b and hasattr(backend_a, "stream_many") and shares_batch(cfg_a.params, cfg_b.params)


def stream_pane(backend, messages: Sequence[dict], cfg: PaneConfig) -> Iterator[str]:
    """One pane's text deltas."""
    return backend.stream_chat(messages, cfg.params, adapter=cfg.adapter)


def _stream_batched(backend, messages_a, messages_b, cfg_a: PaneConfig, cfg_b: PaneConfig) -> Iterator[PairDelta]:
    """Yield PairDeltas from one batched stream; raises only if it fails before producing anything."""
    started = False
    try:
        rows = backend.stream_many([messages_a, messages_b], [cfg_a.params, cfg_b.params], [cfg_a.adapter, cfg_b.adapter])
        for delta_a, delta_b in rows:
            started = True
            if delta_a or delta_b:
                yield PairDelta(delta_a, delta_b, False, False, None, None)
    except Exception as exc:
        if not started:
            raise
        message = f"{type(exc).__name__}: {exc} (both answers came from one batched call)"
        yield PairDelta("", "", True, True, message, message)
        return
    yield PairDelta("", "", True, True, None, None)


def stream_round(
    backend_a, backend_b, messages_a: Sequence[dict], messages_b: Sequence[dict],
    cfg_a: PaneConfig, cfg_b: PaneConfig, batch: bool = True,
) -> Iterator[PairDelta]:
    """Stream pane A's and pane B's answers together (batched when possible and `batch`, else threaded)."""
    if batch and can_batch(backend_a, backend_b, cfg_a, cfg_b):
        stream = _stream_batched(backend_a, messages_a, messages_b, cfg_a, cfg_b)
        try:
            first = next(stream)
        except StopIteration:
            return
        except Exception:  # failed before any token: retry unbatched so the error reaches the right pane
            first = None
        if first is not None:
            yield first
            yield from stream
            return
    yield from stream_pair(
        lambda: stream_pane(backend_a, messages_a, cfg_a), lambda: stream_pane(backend_b, messages_b, cfg_b)
    )
