"""Running an eval: a config in, a stream of per-question records and progress out, results saved as they come.

`run_eval(cfg, backend)` loads the questions (`data`), renders them under the chosen protocol (`mmlu`, `gsm8k`),
sorts them longest prompt first (equal lengths share a batch, so padding is small; the longest batch runs first, so an
out-of-memory error shows at once, as lm-evaluation-harness orders its requests) and sends them in chunks to
`backend.generate` (greedy, protocol stop strings, each sequence ending on its own) or `backend.loglikelihood`. After
each chunk it appends the records to `records.jsonl`, rewrites `summary.json` (`results`) and yields an
`EvalProgress`; stopping (the `stop` event, or closing the generator) keeps everything already scored.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

from lab.eval import data, gsm8k, mmlu, results
from lab.eval.protocol import Item, Protocol, choose
from lab.generation.base import SamplingParams

BENCHES = {"mmlu": mmlu, "gsm8k": gsm8k}


@dataclass
class EvalConfig:
    """One eval run: which model, which benchmark under which protocol, on which questions."""

    bench: str = "gsm8k"  # 'gsm8k' or 'mmlu'
    protocol: str = "harness-5shot"  # gsm8k: harness-5shot, seed-0shot; mmlu: harness-0shot, harness-5shot, seed-0shot
    model: str = "embedded"  # base model: 'embedded', a hub id or a folder
    adapter: str | None = None  # peft adapter folder, or None for the base model
    backend: str = "transformers"  # 'transformers', 'vllm' or 'openai' (recorded; the caller builds the backend)
    limit: int | None = 200  # questions to run, >= 1; None for the whole split
    seed: int | None = None  # None: the first `limit` questions (the harness's --limit); int: a seeded sample
    subjects: list[str] = field(default_factory=list)  # MMLU subjects to keep; empty keeps all
    chat_template: bool | None = None  # wrap prompts in the model's chat template; None: the protocol's default
    chunk_size: int = 32  # questions sent to the backend per call (progress and stop granularity), >= 1
    max_new_tokens: int | None = None  # generation budget; None: the protocol's default, else in [1, 4096]
    data: str = "auto"  # 'auto' (local copies, else the hub), a hub name, or a local file/folder

    def __post_init__(self) -> None:
        if self.bench not in BENCHES:
            raise ValueError(f"bench must be one of {sorted(BENCHES)}; got {self.bench!r}")
        choose(BENCHES[self.bench].PROTOCOLS, self.protocol, self.bench)
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 or None (all questions); got {self.limit}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1; got {self.chunk_size}")
        if self.max_new_tokens is not None and not 1 <= self.max_new_tokens <= 4096:
            raise ValueError(f"max_new_tokens must be in [1, 4096] or None; got {self.max_new_tokens}")
        if self.subjects and self.bench != "mmlu":
            raise ValueError("subjects only apply to bench 'mmlu'")
        self.subjects = list(self.subjects or [])
        self.adapter = self.adapter or None

    @property
    def spec(self) -> Protocol:
        return BENCHES[self.bench].PROTOCOLS[self.protocol]

    @property
    def use_chat_template(self) -> bool:
        return self.spec.chat_template if self.chat_template is None else bool(self.chat_template)


def prepare_items(cfg: EvalConfig) -> tuple[list[Item], dict]:
    """The selected questions rendered under the protocol, and facts about the data for the summary."""
    source = data.resolve_source(cfg.bench, cfg.data)
    test = data.load_split(cfg.bench, source, "test")
    rows = data.select(test, cfg.limit, cfg.seed, cfg.subjects)
    if cfg.bench == "mmlu":
        dev = data.load_split("mmlu", source, "dev") if cfg.spec.shots else None
        items = mmlu.prepare(rows, cfg.spec, dev, test)
        shots = mmlu.fewshot_source(cfg.spec, dev)
    else:
        train = data.load_split("gsm8k", source, "train") if cfg.spec.shots else None
        items = gsm8k.prepare(rows, cfg.spec, train)
        shots = gsm8k.fewshot_source(cfg.spec, train)
    return items, {"data_source": source, "split_size": len(test), "fewshot": shots}


def render(items: list[Item], cfg: EvalConfig, backend) -> list[str]:
    """The exact text sent: the prompt, or the prompt as one user turn of the chat template."""
    if not cfg.use_chat_template:
        return [it.prompt for it in items]
    return [backend.chat_prompt([{"role": "user", "content": it.prompt}]) for it in items]


def run_eval(cfg: EvalConfig, backend, stop: threading.Event | None = None):
    """Yield an EvalProgress after each chunk; results are saved under LAB_HOME/evals/<run_id>/ as they come."""
    items, facts = prepare_items(cfg)
    texts = render(items, cfg, backend)
    order = sorted(range(len(items)), key=lambda i: len(texts[i]), reverse=True)
    run = results.RunWriter.start(asdict(cfg), cfg.spec, cfg.use_chat_template, len(items), facts, backend)
    status = "stopped"
    try:
        for start in range(0, len(order), cfg.chunk_size):
            if stop is not None and stop.is_set():
                break
            idx = order[start : start + cfg.chunk_size]
            new = score_chunk(cfg, backend, [items[i] for i in idx], [texts[i] for i in idx])
            run.add(new)
            yield run.progress(new)
        else:
            status = "complete"
    except Exception:
        status = "failed"
        raise
    finally:
        run.finish(status)
    yield run.progress([], finished=True)


def score_chunk(cfg: EvalConfig, backend, items: list[Item], texts: list[str]) -> list[dict]:
    """One backend call for a chunk of questions and one record per question."""
    spec, module = cfg.spec, BENCHES[cfg.bench]
    if spec.kind == "generate":
        params = SamplingParams(
            max_new_tokens=cfg.max_new_tokens or spec.max_new_tokens, temperature=0.0, stop=list(spec.stop)
        )
        outs = backend.generate(texts, params, adapter=cfg.adapter)
        scored = [
            dict(gsm8k.score_generation(it, out.text, spec) if cfg.bench == "gsm8k" else mmlu.score_generation(it, out.text),
                 generation=out.text, prompt_tokens=out.prompt_tokens, completion_tokens=out.completion_tokens,
                 finish_reason=out.finish_reason)
            for it, out in zip(items, outs)
        ]
    else:
        requests = [(text, cont) for text in texts for cont in spec.continuations]
        lls = backend.loglikelihood(requests, adapter=cfg.adapter)
        k = len(spec.continuations)
        count = getattr(backend, "count_tokens", None)
        scored = [
            dict(module.score_loglikelihoods(it, lls[j * k : (j + 1) * k]), generation="",
                 prompt_tokens=count(text) if count else 0, completion_tokens=0, finish_reason="")
            for j, (it, text) in enumerate(zip(items, texts))
        ]
    return [record(it, text, s) for it, text, s in zip(items, texts, scored)]


def record(item: Item, text: str, scored: dict) -> dict:
    """The saved line for one question: what was asked, what came back, what was extracted, right or wrong."""
    base = {"id": item.id, "question": item.question, "prompt": text, "target": item.target}
    if item.subject:
        base.update(subject=item.subject, category=mmlu.category_of(item.subject))
    base.update(scored)
    base["correct"] = bool(base["correct"])
    base["shot_ids"] = item.extra.get("shot_ids", [])
    return base
