"""Does streaming two arena panes at once keep the speed of one? Tokens per second, one pane vs two, embedded model.

Run by hand: `python bench/chat_streaming.py [--repeats 3] [--max-new-tokens 96]`; writes
bench/results/chat_streaming.json and .md. Modes, each through the code path the Chat tab uses:
- `one_pane`: one `stream_chat` alone (the baseline).
- `two_panes_threaded`: `stream_round` on two copies of the model (`LabContext.pane_replica`), two threads each
  streaming its own generate call: what the tab does on the CPU for one small base model (base vs adapter, or two
  temperatures), and for two different base models anywhere.
- `two_panes_batched`: `stream_round(batch=True)` on one copy, both conversations in one batched generate call with
  per-row adapter and temperature: what the tab does for one base model on a GPU.
Each mode runs with torch using 1 and 2 intra-op threads (`torch.set_num_threads`): on a 2-core machine shared with
other jobs, OpenMP threads that spin-wait on an oversubscribed CPU can slow decoding many times over.
Throughput = answer tokens of all panes / wall time from request to last token. Runs are interleaved (every mode and
thread count once per repeat) so load from other processes hits all alike; the median is reported.
Pane B uses a tiny random LoRA on the same base (as base vs adapter would), made here with peft; in the batched mode
pane B also samples at a different temperature than pane A, the tab's default when there is no adapter yet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.chat.arena import PaneConfig, prepare_pane, stream_pane, stream_round  # noqa: E402
from lab.context import LabContext  # noqa: E402
from lab.generation.base import SamplingParams  # noqa: E402

DEFAULT_THREADS = None  # torch's default, recorded before the sweep changes it
PROMPT_A = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
PROMPT_B = [{"role": "user", "content": "Explain in detail how bread is made, step by step."}]


def make_adapter(folder: Path) -> str:
    """A rank-4 LoRA on q/v projections with random non-zero B, saved as a peft folder."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from lab.models.registry import resolve_model

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(resolve_model("embedded"))
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(folder)
    return str(folder)


def run_once(mode: str, backends: tuple, cfg_a: PaneConfig, cfg_b: PaneConfig) -> dict:
    backend_a, backend_b = backends
    tok = backend_a.tokenizer
    t0 = time.perf_counter()
    if mode == "one_pane":
        text_a, text_b = "".join(stream_pane(backend_a, PROMPT_A, cfg_a)), ""
    else:
        text_a = text_b = ""
        for item in stream_round(backend_a, backend_b, PROMPT_A, PROMPT_B, cfg_a, cfg_b, batch=True):
            text_a += item.delta_a
            text_b += item.delta_b
            if item.error_a or item.error_b:
                raise RuntimeError(item.error_a or item.error_b)
    wall = time.perf_counter() - t0
    tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in (text_a, text_b) if t)
    return {"mode": mode, "tokens": tokens, "wall_s": round(wall, 3), "tokens_per_s": round(tokens / wall, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--threads", default="1,2", help="torch intra-op thread counts to compare, comma-separated")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "chat_streaming"))
    args = p.parse_args()
    import torch

    global DEFAULT_THREADS
    DEFAULT_THREADS = torch.get_num_threads()
    thread_counts = [int(t) for t in args.threads.split(",")]

    ctx = LabContext()
    backend = ctx.backend("embedded")
    second_copy = ctx.backend("embedded", replica=1)  # pane B's copy, as the Chat tab takes it on the CPU
    greedy = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0.0)  # same length every run
    hot = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=1.0, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        adapter = make_adapter(Path(tmp) / "bench_lora")
        setups = {  # mode: (backends, cfg_a, cfg_b)
            "one_pane": ((backend, backend), PaneConfig("embedded", None, greedy), None),
            "two_panes_threaded": ((backend, second_copy), PaneConfig("embedded", None, greedy),
                                   PaneConfig("embedded", adapter, greedy)),
            "two_panes_batched": ((backend, backend), PaneConfig("embedded", None, greedy),
                                  PaneConfig("embedded", adapter, greedy)),
            "two_panes_batched_T0_vs_T1": ((backend, backend), PaneConfig("embedded", None, greedy),
                                           PaneConfig("embedded", adapter, hot)),
        }
        for b in (backend, second_copy):
            prepare_pane(b, adapter)  # as the tab does: load and attach before streaming
        modes = list(setups)
        torch.set_num_threads(min(thread_counts))
        for mode in modes:  # warm-up
            run_once(mode, *setups[mode])
        runs = []
        for repeat in range(args.repeats):
            for threads in thread_counts:
                torch.set_num_threads(threads)
                for mode in modes:
                    runs.append({"threads": threads, **run_once(mode, *setups[mode])})
            write_results(args, runs, modes, thread_counts, repeat + 1)  # partial results survive an interrupted run


def write_results(args, runs: list, modes: list, thread_counts: list, repeats_done: int) -> None:
    import torch

    summary = {
        f"{m} @ {t} thread{'s' if t > 1 else ''}": statistics.median(
            r["tokens_per_s"] for r in runs if r["mode"] == m and r["threads"] == t)
        for t in thread_counts for m in modes
    }
    result = {
        "model": "embedded (SmolLM2-135M-Instruct, float32, transformers)",
        "max_new_tokens": args.max_new_tokens, "repeats": repeats_done,
        "decoding": "greedy (last mode: pane B samples at T=1)",
        "machine": {"cpus": os.cpu_count(), "torch_threads_default": DEFAULT_THREADS,
                    "python": platform.python_version(), "torch": torch.__version__,
                    "loadavg_after": os.getloadavg()},
        "median_tokens_per_s": summary,
        "ratio_two_over_one_same_threads": {
            k: round(v / summary[k.replace(k.split(" @ ")[0], "one_pane")], 2) for k, v in summary.items()},
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result), flush=True)


def markdown(r: dict) -> str:
    lines = [
        "# Chat streaming: two panes vs one (embedded model, CPU)", "",
        f"`python bench/chat_streaming.py --repeats {r['repeats']} --max-new-tokens {r['max_new_tokens']}`; "
        f"{r['machine']['cpus']} CPUs, torch {r['machine']['torch']}, "
        f"{r['decoding']} decoding; load average after the run {r['machine']['loadavg_after'][0]:.1f} "
        "(the machine is shared, so absolute numbers move; the modes were interleaved).", "",
        "| mode @ torch threads | median tokens/s (all panes) | vs one pane, same threads |", "| --- | --- | --- |",
    ]
    for mode, tps in r["median_tokens_per_s"].items():
        ratio = r["ratio_two_over_one_same_threads"][mode]
        lines.append(f"| {mode} | {tps:.1f} | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
