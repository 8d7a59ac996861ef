"""The one interface every generation backend implements, and the sampling options they share.

Chat streams text deltas for one conversation; eval sends many raw prompts at once (the backend batches them) and,
for log-likelihood protocols, scores continuations. `adapter=None` means the base model; a name selects a LoRA
adapter served by the same base weights (peft adapter switching in transformers, LoRARequest in vLLM, the model
name on an OpenAI-compatible server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol, Sequence


@dataclass
class SamplingParams:
    """Decoding options, identical across backends."""

    max_new_tokens: int = 256  # upper bound on generated tokens per sequence
    temperature: float = 0.7  # 0 means greedy decoding
    top_p: float = 1.0  # nucleus sampling mass, in (0, 1]
    seed: int | None = None  # fixes sampling for reproducible answers; None draws fresh randomness
    stop: list[str] = field(default_factory=list)  # generation ends at the first of these strings (not included)

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 32768:
            raise ValueError(f"max_new_tokens must be in [1, 32768]; got {self.max_new_tokens}")
        if not 0.0 <= self.temperature <= 5.0:
            raise ValueError(f"temperature must be in [0, 5]; got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1]; got {self.top_p}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop must be a list of non-empty strings; got {self.stop!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Completion:
    """One finished generation."""

    text: str  # generated text, stop string removed
    prompt_tokens: int  # tokens in the prompt
    completion_tokens: int  # tokens generated
    finish_reason: str  # 'stop' (EOS or stop string) or 'length'


class Backend(Protocol):
    """What chat, eval and benchmarks need from a generation engine."""

    name: str

    def chat_prompt(self, messages: Sequence[dict]) -> str:
        """Render a message list with the tokenizer's chat template, ending with the assistant turn's opening."""
        ...

    def stream_chat(
        self, messages: Sequence[dict], params: SamplingParams, adapter: str | None = None
    ) -> Iterator[str]:
        """Yield text deltas of the assistant's answer as they are produced."""
        ...

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, adapter: str | None = None
    ) -> list[Completion]:
        """Complete many raw prompts at once (batched by the backend); results are in prompt order."""
        ...

    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], adapter: str | None = None
    ) -> list[float]:
        """Sum of log-probabilities of each continuation given its context, in request order."""
        ...


def batch_compatible(rows: Sequence[SamplingParams]) -> bool:
    """Conversations can stream in one generate() call when they share the token budget and stop strings, and their
    sampled rows share top-p and seed (generate() seeds once per call); temperatures are applied per row, and a
    greedy row uses neither top-p nor the seed."""
    if len({(p.max_new_tokens, tuple(p.stop)) for p in rows}) > 1:
        return False
    return len({(p.top_p, p.seed) for p in rows if not p.greedy}) <= 1


def shares_batch(a: SamplingParams, b: SamplingParams) -> bool:
    """Two conversations can stream in one batch (see `batch_compatible`)."""
    return batch_compatible([a, b])


def per_row(params: SamplingParams | Sequence[SamplingParams], n: int) -> list[SamplingParams]:
    """One SamplingParams per row of a batch: a single one applies to all rows."""
    rows = [params] * n if isinstance(params, SamplingParams) else list(params)
    if len(rows) != n:
        raise ValueError(f"need one SamplingParams per row: {n} rows, {len(rows)} params")
    return rows


def first_row(deltas_per_step: Iterator[list[str]]) -> Iterator[str]:
    """The deltas of row 0 of a batched stream: a single conversation streamed through `stream_many`."""
    for deltas in deltas_per_step:
        if deltas[0]:
            yield deltas[0]


def harness_split(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing spaces to the continuation, as lm-evaluation-harness does before tokenising the
    two separately (so ' A' is scored as one token after 'Answer:', not as 'Answer: ' + 'A')."""
    n_space = len(context) - len(context.rstrip(" "))
    return context[: len(context) - n_space], context[len(context) - n_space :] + continuation
