"""Command line: `python -m lab.eval --bench gsm8k --protocol harness-5shot --limit 200 --backend vllm`.

Prints one progress line per chunk and the summary; `--compare-base` also runs the base model on the same questions
and prints the flips and paired tests; `--list` shows saved runs; `--compare RUN_A RUN_B` compares two saved runs.
The `if __name__ == "__main__"` guard matters: vLLM's engine starts worker processes that re-import the main module.
"""

from __future__ import annotations

import argparse
import json
import sys

from lab.eval import results
from lab.eval.runner import EvalConfig, run_eval


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.eval", description="Run MMLU or GSM8K on a model or adapter.")
    p.add_argument("--model", default="embedded", help="'embedded', a hub id or a model folder")
    p.add_argument("--adapter", default=None, help="peft adapter folder (default: the base model)")
    p.add_argument("--bench", default="gsm8k", choices=["gsm8k", "mmlu"])
    p.add_argument("--protocol", default=None, help="gsm8k: harness-5shot | seed-0shot; mmlu: harness-0shot | "
                   "harness-5shot | seed-0shot (default: harness-5shot / harness-0shot)")
    p.add_argument("--limit", type=int, default=200, help="number of questions (0 for all)")
    p.add_argument("--seed", type=int, default=None, help="sample the questions with this seed (default: the first)")
    p.add_argument("--subjects", default="", help="comma-separated MMLU subjects")
    p.add_argument("--backend", default="transformers", choices=["transformers", "vllm", "openai"])
    p.add_argument("--openai-base-url", default=None, help="with --backend openai")
    p.add_argument("--tensor-parallel-size", type=int, default=1,
                   help="with --backend vllm: split the model over this many GPUs (must divide its attention heads)")
    p.add_argument("--chat-template", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--chunk-size", type=int, default=32, help="questions per backend call")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--data", default="auto", help="'auto', a hub name or a local file/folder")
    p.add_argument("--compare-base", action="store_true", help="also run the base model and compare")
    p.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="compare two saved runs and exit")
    p.add_argument("--list", action="store_true", help="list saved runs and exit")
    return p.parse_args(argv)


def config_from(args, adapter: str | None) -> EvalConfig:
    protocol = args.protocol or ("harness-5shot" if args.bench == "gsm8k" else "harness-0shot")
    return EvalConfig(
        bench=args.bench, protocol=protocol, model=args.model, adapter=adapter, backend=args.backend,
        limit=args.limit or None, seed=args.seed, subjects=[s for s in args.subjects.split(",") if s.strip()],
        chat_template={"auto": None, "on": True, "off": False}[args.chat_template], chunk_size=args.chunk_size,
        max_new_tokens=args.max_new_tokens, data=args.data,
    )


def run_and_print(cfg: EvalConfig, backend) -> dict:
    summary = {}
    for p in run_eval(cfg, backend):
        print(f"[{p.done}/{p.total}] accuracy {p.accuracy:.3f}  {p.questions_per_s:.2f} q/s  "
              f"{p.tokens_per_s:.0f} tok/s", file=sys.stderr, flush=True)
        summary = p.summary or summary
    score = summary["score"]
    line = f"{summary['run_id']}: {score['accuracy']:.4f} ({score['correct']}/{score['n']}), 95% CI {score['ci95']}"
    if "score_flexible" in summary:
        line += f"; flexible {summary['score_flexible']['accuracy']:.4f}"
    print(line)
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for s in results.list_runs():
            print(f"{s['run_id']}  {s['status']}  {s.get('score', {}).get('accuracy', 0):.4f}  n={s.get('done', 0)}")
        return 0
    if args.compare:
        print(json.dumps(results.compare_runs(*args.compare), indent=1))
        return 0
    from lab.context import LabContext

    ctx = LabContext(model=args.model, backend_kind=args.backend, openai_base_url=args.openai_base_url,
                     tensor_parallel_size=args.tensor_parallel_size)
    backend = ctx.backend()
    adapted = run_and_print(config_from(args, args.adapter), backend)
    if args.compare_base and args.adapter:
        base = run_and_print(config_from(args, None), backend)
        print(json.dumps(results.compare_runs(base["run_id"], adapted["run_id"]), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
