"""QLoRA SFT tokens/s on random-weight Qwen2.5-7B: a bare trl script against the lab's job runner, same settings.

Run by hand on a CUDA machine: `python bench/train_throughput.py all --out results.json`. `prepare` writes a random bf16
Qwen2.5-7B checkpoint (tokenizer: bench/vram_measure.py's word-level one plus a minimal chat template) and a JSONL of
conversational prompt-completion rows of exactly `--seq` tokens. `bare` trains it with a plain trl script (QLoRA NF4
double quant, bf16 compute, LoRA r16/alpha 32/dropout 0.05 on q,k,v,o; lab.train's defaults); `lab` trains the same
data through `python -m lab.train` (child process, metrics file, as from the app). Both throughputs are computed the
same way from (time, num_tokens) logged at every optimizer step: tokens between step `--warmup` and the last step over
the wall time between them, so model loading, data preparation and the first steps' warm-up are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vram_measure  # noqa: E402  (bench/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
PROMPT_WORDS = 128


LETTERS = "abcdefghijklmnopqrstuvwxyz"


def save_byte_level_tokenizer(path: Path) -> None:
    """A byte-level BPE tokenizer whose every two-letter word is one token.

    The lab and trl load the tokenizer with AutoTokenizer, which for a Qwen2 config builds Qwen2's byte-level BPE from
    tokenizer.json's vocabulary and merges: a word-level tokenizer would come back empty, this one survives.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {"<pad>": 0, "<eos>": 1}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    merges = []
    for a in LETTERS:
        vocab["\u0120" + a] = len(vocab)
        merges.append(("\u0120", a))
        for b in LETTERS:
            for first in ("\u0120" + a, a):
                vocab[first + b] = len(vocab)
                merges.append((first, b))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)


def alpha_words(rng, n: int) -> str:
    """n two-letter words: n tokens for the tokenizer above."""
    idx = rng.integers(0, 26, size=(n, 2))
    return " ".join(LETTERS[i] + LETTERS[j] for i, j in idx)


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def prepare(work: Path, seq: int, rows: int, model: str) -> None:
    import numpy as np
    ckpt = work / model
    if not (ckpt / "config.json").exists():
        vram_measure.save_checkpoint(model, ckpt, "cuda" if _cuda() else "cpu")
    save_byte_level_tokenizer(ckpt)
    rng = np.random.default_rng(0)
    with open(work / "data.jsonl", "w") as f:
        for _ in range(rows):
            # the template adds one separator token after each message: seq tokens in all
            prompt = [{"role": "user", "content": alpha_words(rng, PROMPT_WORDS)}]
            completion = [{"role": "assistant", "content": alpha_words(rng, seq - PROMPT_WORDS - 2)}]
            f.write(json.dumps({"prompt": prompt, "completion": completion}) + "\n")


def bare(work: Path, seq: int, batch: int, steps: int, model_name: str = "qwen2.5-7b") -> list[dict]:
    """The plain trl script: what a user would write from trl's and peft's documentation."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    ckpt = work / model_name
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(ckpt, quantization_config=quant, dtype=torch.bfloat16,
                                                 device_map={"": 0} if _cuda() else None)
    records: list[dict] = []

    class Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            records.append({"time": time.time(), "step": state.global_step, **(logs or {})})

    args = SFTConfig(output_dir=str(work / "bare_out"), per_device_train_batch_size=batch, max_steps=steps,
                     learning_rate=2e-4, lr_scheduler_type="cosine", warmup_steps=0.03, optim="adamw_torch",
                     max_length=seq, gradient_checkpointing=True, bf16=_cuda(), logging_steps=1,
                     completion_only_loss=True, report_to="none", save_strategy="no", disable_tqdm=True,
                     dataloader_num_workers=0, seed=0)
    peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=vram_measure.ATTENTION,
                             bias="none", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=load_dataset("json", data_files=str(work /
                         "data.jsonl"), split="train"), processing_class=AutoTokenizer.from_pretrained(ckpt),
                         peft_config=peft_config, callbacks=[Log()])
    trainer.train()
    if _cuda():
        records.append({"event": "peak", "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30})
    return records


def lab(work: Path, seq: int, batch: int, steps: int, model: str) -> list[dict]:
    """The same run through the lab: `python -m lab.train --config cfg.json` (job runner, child process)."""
    home = work / "lab_home"
    cfg = {"dataset": str(work / "data.jsonl"), "model": str(work / model), "method": "sft",
           "finetune": "qlora", "max_steps": steps, "batch_size": batch, "max_length": seq, "optimizer": "adamw_torch",
           "gradient_checkpointing": True, "save_steps": 1_000_000, "logging_steps": 1, "device": "cuda" if _cuda() else "cpu"}
    (work / "lab_cfg.json").write_text(json.dumps(cfg))
    env = {**os.environ, "LAB_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "lab.train", "--config", str(work / "lab_cfg.json")], cwd=ROOT, env=env,
                   check=True)
    runs = sorted((home / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    print((runs[-1] / "log.txt").read_text()[-3000:], flush=True)
    return [json.loads(line) for line in (runs[-1] / "metrics.jsonl").read_text().splitlines()]


def throughput(records: list[dict], warmup: int) -> dict:
    """Tokens/s between step `warmup` and the last logged step, from logged wall times and trl's num_tokens."""
    steps = [r for r in records if "num_tokens" in r and "step" in r]
    first = next(r for r in steps if r["step"] >= warmup)
    last = steps[-1]
    peak = max((r.get("peak_mem_gb") or 0.0) for r in records)
    return {"tokens_per_s": (last["num_tokens"] - first["num_tokens"]) / (last["time"] - first["time"]),
            "steps_timed": last["step"] - first["step"], "tokens_timed": last["num_tokens"] - first["num_tokens"],
            "peak_mem_gib": peak or None}


def write_markdown(summary: dict, path: Path) -> None:
    st = summary["settings"]
    lines = ["# QLoRA SFT throughput: bare trl script vs the lab's job runner", "",
             f"{summary['device']}; {summary['versions']}.", "",
             f"Random-weight {st['model']} (NF4, double quant, bf16 compute; LoRA r16/alpha 32/dropout 0.05 on q,k,v,o), "
             f"sequences of {st['seq']} tokens, batch {st['batch']}, gradient checkpointing, adamw_torch, "
             f"{st['steps']} optimizer steps; tokens/s over steps {st['warmup']}..{st['steps']} from the logged wall "
             "time and trl's num_tokens (bench/train_throughput.py). Bare and lab runs alternate, each in a fresh "
             "process.", "", "| run | side | tokens/s | tokens timed | peak allocated GiB |", "|---|---|---|---|---|"]
    for r in summary["runs"]:
        lines.append(f"| {r['repeat']} | {r['side']} | {r['tokens_per_s']:.0f} | {r['tokens_timed']:.0f} | "
                     f"{r['peak_mem_gib']:.2f} |")
    lines += ["", f"Mean: bare {summary['bare_tokens_per_s_mean']:.0f} tokens/s, lab "
              f"{summary['lab_tokens_per_s_mean']:.0f} tokens/s: lab / bare = {summary['lab_over_bare']:.3f} "
              "(the issue asks for at least 0.90)."]
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["all", "bare", "lab", "report"], help="'report' rewrites the .md of --out")
    p.add_argument("--work", default="/tmp/throughput")
    p.add_argument("--out", required=True)
    p.add_argument("--model", default="qwen2.5-7b", choices=sorted(vram_measure.QWEN25_SHAPES))
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2, help="bare and lab runs alternate this many times")
    args = p.parse_args(argv)
    if args.what == "report":
        write_markdown(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".md"))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    prepare(work, args.seq, args.batch * args.steps, args.model)
    sides = ["bare", "lab"] if args.what == "all" else [args.what]
    results = []
    for i in range(args.repeats):
        for side in sides:
            if side == "bare":  # a fresh process, like the lab's job, so both start from an empty GPU
                out = work / f"bare_{i}.json"
                code = "import sys, json; sys.path.insert(0, 'bench'); import train_throughput as t; " \
                       f"json.dump(t.bare(t.Path({str(work)!r}), {args.seq}, {args.batch}, {args.steps}, {args.model!r}), " \
                       f"open({str(out)!r}, 'w'))"
                subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
                records = json.loads(out.read_text())
            else:
                records = lab(work, args.seq, args.batch, args.steps, args.model)
            results.append({"side": side, "repeat": i, **throughput(records, args.warmup)})
            print(json.dumps(results[-1]), flush=True)
            Path(args.out).write_text(json.dumps({"partial": True, "runs": results}, indent=2))
    summary = {"settings": {k: getattr(args, k) for k in ("model", "seq", "batch", "steps", "warmup")}, "runs": results}
    for side in sides:
        vals = [r["tokens_per_s"] for r in results if r["side"] == side]
        summary[f"{side}_tokens_per_s_mean"] = sum(vals) / len(vals)
    if len(sides) == 2:
        summary["lab_over_bare"] = summary["lab_tokens_per_s_mean"] / summary["bare_tokens_per_s_mean"]
    summary["device"] = __import__("torch").cuda.get_device_name() if _cuda() else "cpu"
    summary["versions"] = vram_measure.versions()
    Path(args.out).write_text(json.dumps(summary, indent=2))
    if len(sides) == 2:
        write_markdown(summary, Path(args.out).with_suffix(".md"))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
