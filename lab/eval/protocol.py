"""The shapes every benchmark module shares: a protocol's definition and one prepared question.

A benchmark module (`lab.eval.mmlu`, `lab.eval.gsm8k`) turns data rows into `Item`s under a named `Protocol` and
scores the backend's output for each; the runner only batches, times and saves. A protocol is either generative
(`generate`: greedy completion, then answer extraction) or log-likelihood (`loglikelihood`: the answer is the
continuation with the highest log-probability, as lm-evaluation-harness scores multiple choice).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Protocol:
    """How one benchmark is asked and scored."""

    name: str  # e.g. 'harness-5shot'
    kind: str  # 'generate' or 'loglikelihood'
    shots: int  # worked examples placed before the question
    chat_template: bool  # default for wrapping the prompt in the model's chat template
    max_new_tokens: int = 0  # generation budget ('generate' protocols)
    stop: tuple[str, ...] = ()  # generation ends at the first of these ('generate' protocols)
    continuations: tuple[str, ...] = ()  # scored continuations ('loglikelihood' protocols)
    summary: str = ""  # one line for the results and the UI

    def __post_init__(self) -> None:
        if self.kind not in ("generate", "loglikelihood"):
            raise ValueError(f"kind must be 'generate' or 'loglikelihood'; got {self.kind!r}")
        if self.kind == "loglikelihood" and not self.continuations:
            raise ValueError(f"protocol {self.name}: a loglikelihood protocol needs continuations")


@dataclass
class Item:
    """One question, ready for the backend: the exact text sent and what counts as right."""

    id: int  # position in the full split; pairs questions across runs
    prompt: str  # the rendered prompt, before any chat template
    target: str  # the right answer ('B', '18')
    question: str  # the question alone, for search and display
    subject: str = ""  # MMLU subject ('' for GSM8K)
    extra: dict = field(default_factory=dict)  # protocol details worth keeping (few-shot ids, choices)


def choose(protocols: dict[str, Protocol], name: str, bench: str) -> Protocol:
    """The named protocol, or an error listing the ones that exist."""
    if name not in protocols:
        raise ValueError(f"protocol for {bench} must be one of {sorted(protocols)}; got {name!r}")
    return protocols[name]
