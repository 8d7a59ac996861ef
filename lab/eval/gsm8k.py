"""GSM8K (Cobbe et al., 2021): grade-school maths word problems with a final number, under two protocols.

`harness-5shot` (lm-evaluation-harness tasks/gsm8k/gsm8k.yaml, v3.0; the Open LLM Leaderboard's GSM8K):
    for each of 5 shots: "Question: {question}\nAnswer: {full worked answer ending '#### N'}\n\n"
    then "Question: {question}\nAnswer:"
greedy, at most 256 new tokens (the harness's max_gen_toks), stopping at "Question:", "</s>" or "<|im_end|>" (and
the tokenizer's EOS). Why: without the stop string a base model writes the next "Question:" itself and the extraction
would read its numbers; the prompt ends at "Answer:" with no space because the shots have " " + answer, so the model's
first token carries the space as it did in the shots. Shots: the harness draws 5 training questions per test question
with `random.Random(1234).sample(train, 5)`, one draw per test question in test order; we replay the same sequence, so
question i gets draw i and a run over the first N questions sees exactly the harness's prompts (a seeded subset keeps
each question's own draw). Scored twice, both reported: strict "#### N" and flexible last number (`extract`).

`seed-0shot` (the seed project's protocol, Qwen2.5-7B at 22.52%): the question alone as the user turn of the chat
template, greedy, up to 512 new tokens, the final number in the reply compared by value with the reference.
"""

from __future__ import annotations

import random

from lab.eval.extract import (
    final_number,
    gsm8k_flexible,
    gsm8k_strict,
    gsm8k_target,
    harness_match,
    numbers_equal,
)
from lab.eval.protocol import Item, Protocol

HARNESS_SEED = 1234  # lm-evaluation-harness's default fewshot_random_seed
HARNESS_STOP = ("Question:", "</s>", "<|im_end|>")

PROTOCOLS = {
    "harness-5shot": Protocol(
        "harness-5shot", "generate", 5, chat_template=False, max_new_tokens=256, stop=HARNESS_STOP,
        summary="lm-evaluation-harness gsm8k: 5 worked shots, stop at 'Question:', strict and flexible match",
    ),
    "seed-0shot": Protocol(
        "seed-0shot", "generate", 0, chat_template=True, max_new_tokens=512,
        summary="seed protocol: zero-shot question as the user turn, final number compared by value",
    ),
}


def turn(question: str) -> str:
    """The harness's doc_to_text: "Question: {question}\\nAnswer:" (question not stripped)."""
    return f"Question: {question}\nAnswer:"


def harness_shot_ids(test_ids: list[int], n_train: int, k: int = 5, seed: int = HARNESS_SEED) -> dict[int, list]:
    """Train indices of the shots for each test id: draw i of Random(seed).sample(range(n_train), k)."""
    rnd = random.Random(seed)
    wanted = set(test_ids)
    draws = {}
    for i in range(max(test_ids, default=-1) + 1):
        picked = rnd.sample(range(n_train), k)
        if i in wanted:
            draws[i] = picked
    return draws


def harness_prompt(row: dict, shots: list[dict]) -> str:
    examples = "".join(f"{turn(s['question'])} {s['answer']}\n\n" for s in shots)
    return examples + turn(row["question"])


def prepare(rows: list[dict], protocol: Protocol, train: list[dict] | None) -> list[Item]:
    """Items for the selected test rows; `train` is the full train split (needed for the 5-shot protocol)."""
    if protocol.shots and not train:
        raise ValueError("the 5-shot GSM8K protocol needs the train split (train.jsonl next to test.jsonl)")
    draws = harness_shot_ids([r["id"] for r in rows], len(train), protocol.shots) if protocol.shots else {}
    items = []
    for row in rows:
        if protocol.shots:
            shot_ids = draws[row["id"]]
            prompt = harness_prompt(row, [train[i] for i in shot_ids])
        else:
            shot_ids, prompt = [], row["question"]
        extra = {"reference": row["answer"], "shot_ids": shot_ids}
        items.append(Item(row["id"], prompt, gsm8k_target(row["answer"]), row["question"], "", extra))
    return items


def fewshot_source(protocol: Protocol, train: list[dict] | None) -> str:
    if protocol.shots == 0:
        return "zero-shot"
    return f"{protocol.shots} train questions per test question, random.Random({HARNESS_SEED}) draws as the harness"


def score_generation(item: Item, text: str, protocol: Protocol) -> dict:
    """Harness protocol: strict (primary) and flexible exact match; seed protocol: final number by value."""
    if protocol.name == "harness-5shot":
        strict, flexible = gsm8k_strict(text), gsm8k_flexible(text)
        reference = item.extra["reference"]
        return {
            "extracted": strict,
            "correct": harness_match(strict, reference),
            "extracted_flexible": flexible,
            "correct_flexible": harness_match(flexible, reference),
        }
    number = final_number(text)
    return {"extracted": number, "correct": numbers_equal(number, item.target)}
