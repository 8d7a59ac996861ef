"""Collect the raw H100 measurements into bench/results/vram_h100.json and write bench/results/vram.md.

Reads bench/results/vram_raw/*.jsonl (written by bench/vram_measure.py on the device), corrects the early runs for a
measurement artefact (below), predicts every row with lab.train.vram and writes the committed results. CPU only.

Artefact: transformers' Trainer registers every nn.Embedding with bitsandbytes' process-wide GlobalOptimManager when
the optimizer is a bitsandbytes one; that keeps the embedding of each discarded base model alive in a process that
measures many rows. The first runs (files `*_main.jsonl` of 0.5B and 1.5B) had no reset, so each row carries the
embeddings (vocab x hidden x 2 bytes) of the earlier bases that ran a paged optimizer; that constant is subtracted
(`leak_gib`; it is visible in `alloc_before_gib`, which is constant per configuration once corrected). Later runs
reset the manager between rows. A training job is one process with one model, so it never leaks this way.

    python bench/vram_report.py
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lab.train import vram  # noqa: E402

RAW = ROOT / "bench" / "results" / "vram_raw"
OUT_JSON = ROOT / "bench" / "results" / "vram_h100.json"
OUT_MD = ROOT / "bench" / "results" / "vram.md"
FIXED_FILES = ("_7b_", "_labfull", "_tier2", "_holdout")  # runs made after the GlobalOptimManager reset was added


def read_raw() -> tuple[list[dict], dict, dict]:
    rows, models, header = [], {}, {}
    for path in sorted(RAW.glob("*.jsonl")):
        leaked, current, current_paged = 0.0, None, False
        fixed = any(tag in path.name for tag in FIXED_FILES)
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec["kind"] == "model":
                models[rec["model"]] = dict(rec["config"], model_type="qwen2")
                header = {k: rec[k] for k in ("device", "versions", "context_gib")}
                emb = rec["config"]["vocab_size"] * rec["config"]["hidden_size"] * 2 / vram.GIB
                continue
            if rec["status"] not in ("ok", "oom"):
                continue
            want = ("qlora" if rec["method"] == "qlora" else "plain", rec.get("dtype", "bf16"))
            if current is not None and (want != current or rec["method"] == "full"):
                leaked += emb if current_paged and not fixed else 0.0
                current_paged = False
            current = want
            current_paged = current_paged or rec["optim"].startswith("paged")
            rec = dict(rec, dtype=rec.get("dtype", "bf16"), leak_gib=leaked, source=path.name)
            rows.append(rec)
    return rows, models, header


def plan_of(row: dict) -> vram.TrainPlan:
    return vram.TrainPlan(finetune=row["method"], method=row["task"], lora_r=row["rank"],
                          lora_targets="attention" if row["targets"] == "-" else row["targets"],
                          batch_size=row["batch"], max_length=row["seq"], gradient_checkpointing=row["ckpt"],
                          optimizer=row["optim"], weights_dtype=row["dtype"])


def accelerate_training_gib(config: dict, dtype: str) -> float:
    """accelerate estimate-memory's training figure for this model (its largest of model/grads/optimizer/step)."""
    from accelerate import init_empty_weights
    from accelerate.commands.estimate import estimate_training_usage
    from accelerate.utils import calculate_maximum_sizes
    from transformers import AutoModelForCausalLM, Qwen2Config

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(Qwen2Config(**{k: v for k, v in config.items() if k != "model_type"}))
    total, _ = calculate_maximum_sizes(model)
    usage = estimate_training_usage(total, "float32" if dtype == "fp32" else "bfloat16")
    return max(usage.values()) / vram.GIB


def build() -> dict:
    rows, models, header = read_raw()
    out = []
    for r in rows:
        est = vram.estimate_peak_memory(vram.ModelShape.from_config(models[r["model"]]), plan_of(r))
        row = {k: r[k] for k in ("model", "method", "task", "targets", "rank", "optim", "dtype", "seq", "batch",
                                 "ckpt", "status", "leak_gib", "source")}
        if r["status"] == "ok":
            row["measured_alloc_gib"] = r["peak_alloc_gib"] - r["leak_gib"]
            row["measured_reserved_gib"] = r["peak_reserved_gib"] - r["leak_gib"]
            row["rel_error"] = (est.total - row["measured_alloc_gib"]) / row["measured_alloc_gib"]
            row["train_s_2_steps"] = r.get("train_s")
        row["predicted"] = est.as_dict()
        out.append(row)
    return {"what": "peak torch.cuda.max_memory_allocated over 2 optimizer steps of trl SFT/DPO on random-weight "
                    "Qwen2.5 shapes; measured_* have the GlobalOptimManager artefact removed (see vram_report.py)",
            **header, "models": models, "rows": out}


def _fmt_row(r: dict) -> str:
    p = r["predicted"]
    meas = f"{r['measured_alloc_gib']:.2f}" if r["status"] == "ok" else "OOM"
    err = f"{100 * r['rel_error']:+.1f}%" if r["status"] == "ok" else f"device total {p['device_total']:.1f}"
    return (f"| {r['model'][8:]} | {r['method']} {r['dtype']} | {r['task']} | {r['targets']} r{r['rank']} | "
            f"{r['optim']} | {r['seq']} | {r['batch']} | {'on' if r['ckpt'] else 'off'} | {meas} | {p['total']:.2f} | "
            f"{err} | {p['weights']:.2f} / {p['activations']:.2f} / {p['gradients'] + p['optimizer_states']:.2f} |")


def write_markdown(data: dict) -> str:
    ok = [r for r in data["rows"] if r["status"] == "ok"]
    oom = [r for r in data["rows"] if r["status"] == "oom"]
    worst = max(ok, key=lambda r: abs(r["rel_error"]))
    ratios = [r["measured_reserved_gib"] / r["measured_alloc_gib"] for r in ok]
    lines = ["# VRAM estimator vs measured peak memory (H100 80GB)", "",
             f"Device {data['device']}; {data['versions']}. CUDA context (outside torch's allocator): "
             f"{data['context_gib']:.2f} GiB.", "",
             "Measured: `torch.cuda.max_memory_allocated` over 2 optimizer steps of trl's own SFTTrainer/DPOTrainer "
             "(bench/vram_measure.py). Predicted: `lab.train.vram.estimate_peak_memory(...).total`, which predicts "
             "that same quantity; `fits()` adds the context, the allocator cache and paged optimizer states.", "",
             f"- rows measured: {len(ok)} ok, {len(oom)} out of memory",
             f"- mean |error| {100 * statistics.mean(abs(r['rel_error']) for r in ok):.1f}%, "
             f"rows over 10%: {sum(abs(r['rel_error']) > 0.10 for r in ok)}",
             f"- worst case: {100 * worst['rel_error']:+.1f}% ({_fmt_row(worst).strip('| ')})",
             f"- every OOM row predicted not to fit 80 GiB: "
             f"{all(vram.fits(vram.MemoryEstimate(**{k: v for k, v in r['predicted'].items() if k != 'device_total'}), 80.0) is False for r in oom)}",
             f"- max_memory_reserved / max_memory_allocated: median {statistics.median(ratios):.3f}, "
             f"max {max(ratios):.3f}", "",
             "The coefficients were fitted on the rows of the `*_main`, `*_tier2` and `*_labfull` files. The "
             "`*_holdout` rows (Qwen2.5-3B, a shape never fitted, and 7B at seq 4096 / 768 / 1536, batch 1 / 2 / 6, "
             "rank 8, all-linear) were measured afterwards against predictions written before the run "
             "(vram_holdout_predictions.json):", ""]
    lines += holdout_section(data)
    lines += accelerate_section(data)
    lines += ["## All rows", "",
              "| model | method | task | targets | optimizer | seq | batch | ckpt | measured GiB | predicted GiB | "
              "error | weights / activations / grads+states |", "|" + "---|" * 12]
    lines += [_fmt_row(r) for r in data["rows"]]
    return "\n".join(lines) + "\n"


def holdout_section(data: dict) -> list[str]:
    pre = json.loads((ROOT / "bench" / "results" / "vram_holdout_predictions.json").read_text())["rows"]
    key = ("model", "method", "task", "seq", "batch", "ckpt")
    measured = {tuple(r[k] for k in key): r for r in data["rows"] if "holdout" in r["source"]}
    errors = []
    for p in pre:
        r = measured[tuple(p[k] for k in key)]
        if r["status"] == "ok":
            errors.append((p["predicted_total_gib"] - r["measured_alloc_gib"]) / r["measured_alloc_gib"])
    n_oom = sum(r["status"] == "oom" for r in measured.values())
    return [f"- hold-out rows: {len(errors)} measured against the predictions written beforehand: worst "
            f"{100 * max(errors, key=abs):+.1f}%, mean |error| {100 * statistics.mean(map(abs, errors)):.1f}%; "
            f"{n_oom} more (7B full fine-tuning in fp32) ran out of memory, as the estimator predicts.", ""]


def accelerate_section(data: dict) -> list[str]:
    lines = ["## accelerate `estimate-memory` on the same runs", "",
             "accelerate reports, per dtype, the largest of model / gradients / optimizer / step sizes for full "
             "training (16 bytes per parameter in fp32, 8 in bf16), no activations, no LoRA or QLoRA (N/A), no DPO "
             "reference model. Its figure against the measured peak of full fine-tuning (1024 x 4, checkpointing on and off):", "",
             "| model | dtype | task | measured GiB | accelerate GiB | accelerate error | ours error |",
             "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        if (r["method"] == "full" and r["status"] == "ok" and r["seq"] == 1024 and r["batch"] == 4
                and r["optim"] in ("adamw_torch", "adamw_torch_fused")):
            acc = accelerate_training_gib(data["models"][r["model"]], r["dtype"])
            m = r["measured_alloc_gib"]
            lines.append(f"| {r['model'][8:]} | {r['dtype']} | {r['task']} ({r['optim']}, ckpt "
                         f"{'on' if r['ckpt'] else 'off'}) | {m:.2f} | {acc:.2f} | "
                         f"{100 * (acc - m) / m:+.0f}% | {100 * r['rel_error']:+.1f}% |")
    return lines + [""]


def main() -> None:
    data = build()
    OUT_JSON.write_text(json.dumps(data, indent=1) + "\n")
    OUT_MD.write_text(write_markdown(data))
    print(OUT_MD.read_text()[:1800])


if __name__ == "__main__":
    main()
