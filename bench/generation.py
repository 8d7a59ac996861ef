"""Generation throughput: each backend at batch 1 (streaming) and batch 32, against a bare transformers loop.

Run by hand: `python bench/generation.py [--backends transformers,vllm] [--tokens 128]`. Writes
bench/results/generation.json and .md. Every run decodes greedily from the same prompts, so each path generates the
same tokens and tokens/s compare like for like. The bare loop is `model.generate` written out here with no lab code;
the lab's streaming path (thread + streamer + incremental decoding) should lose under 10% against it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, write  # noqa: E402

PROMPTS = [
    "Explain why the sky is blue.",
    "Write a short story about a robot learning to paint.",
    "What are the main causes of the French Revolution?",
    "Give me a recipe for pancakes.",
    "Describe how a bicycle works.",
    "What is the difference between a virus and a bacterium?",
    "Summarise the plot of Romeo and Juliet.",
    "How do airplanes stay in the air?",
]


def chats(n: int) -> list[list[dict]]:
    return [[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}] for i in range(n)]


def timed(fn, repeats: int) -> tuple[float, int]:
    """Best wall time over repeats (least disturbed by other load) and the tokens generated."""
    best, tokens = float("inf"), 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        tokens = fn()
        best = min(best, time.perf_counter() - t0)
    return best, tokens


def bare_transformers(path: str, n_tokens: int, repeats: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def run(batch: int) -> int:
        texts = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats(batch)]
        enc = tok(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=n_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        new = out[:, enc["input_ids"].shape[1] :]
        return int(sum(min(n_tokens, next((k + 1 for k, t in enumerate(r) if t == tok.eos_token_id), len(r))) for r in new.tolist()))

    return {f"batch{b}": timed(lambda b=b: run(b), repeats) for b in (1, 32)}


def lab_backend(kind: str, n_tokens: int, repeats: int) -> dict:
    from lab.context import LabContext
    from lab.generation import SamplingParams

    backend = LabContext(backend_kind=kind).backend()
    params = SamplingParams(max_new_tokens=n_tokens, temperature=0.0)
    count = backend.count_tokens

    def stream() -> int:
        return count("".join(backend.stream_chat(chats(1)[0], params)))

    def batch() -> int:
        return sum(c.completion_tokens for c in backend.generate([backend.chat_prompt(c) for c in chats(32)], params))

    result = {"batch1_stream": timed(stream, repeats), "batch32": timed(batch, repeats)}
    getattr(backend, "close", lambda: None)()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="transformers,vllm")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from lab.models.registry import resolve_model

    rows = {"bare transformers": bare_transformers(resolve_model("embedded"), args.tokens, args.repeats)}
    for kind in args.backends.split(","):
        rows[f"lab {kind}"] = lab_backend(kind, args.tokens, args.repeats)
    table = {name: {k: {"seconds": round(s, 3), "tokens": n, "tokens_per_s": round(n / s, 1)} for k, (s, n) in r.items()}
             for name, r in rows.items()}
    bare1 = table["bare transformers"]["batch1"]["tokens_per_s"]
    lab1 = table["lab transformers"]["batch1_stream"]["tokens_per_s"] if "lab transformers" in table else None
    summary = {"streaming_vs_bare_batch1": round(lab1 / bare1, 3) if lab1 else None}
    path = write("generation", {"max_new_tokens": args.tokens, "repeats": args.repeats, "results": table, **summary})
    lines = ["| path | run | tokens | seconds | tokens/s |", "|---|---|---|---|---|"]
    for name, runs in table.items():
        for run, r in runs.items():
            lines.append(f"| {name} | {run} | {r['tokens']} | {r['seconds']} | {r['tokens_per_s']} |")
    (RESULTS / "generation.md").write_text(
        "# Generation throughput (embedded SmolLM2-135M, greedy)\n\n" + "\n".join(lines)
        + f"\n\nLab streaming vs bare loop at batch 1: {summary['streaming_vs_bare_batch1']}x\n"
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
