"""Measure peak GPU memory of real trl SFT/DPO training steps on random-weight Qwen2.5 shapes.

Run by hand on a CUDA machine (H100 for the committed numbers). For one model size per process it writes a random
bf16 checkpoint to local disk, loads it the way the lab trains (bf16 for LoRA/full, NF4 + double quant + bf16 compute
quantized at load for QLoRA), and for each grid row hands the base model and a `LoraConfig` to trl's own
`SFTTrainer`/`DPOTrainer` (trl wraps with peft, enables checkpointing, builds the optimizer), runs `--steps` optimizer
steps on synthetic token data and records `torch.cuda.max_memory_allocated` / `max_memory_reserved` over those steps.
Rows that run out of memory are recorded as OOM. One JSON line per row goes to `--out` as soon as it is measured.

Sequence length L means: SFT examples of exactly L tokens; DPO pairs whose prompt+chosen and prompt+rejected are each
L tokens (trl concatenates them, so the policy forward sees 2*batch sequences of L tokens).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

# Qwen2.5 shapes, from the published config.json files (Qwen/Qwen2.5-{0.5B,1.5B,7B}).
QWEN25_SHAPES = {
    "qwen2.5-0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                         intermediate_size=8960, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-3b": dict(hidden_size=2048, num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
                       intermediate_size=11008, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-7b": dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                       intermediate_size=18944, vocab_size=152064, tie_word_embeddings=False),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, vocab_size=2048, tie_word_embeddings=True),
}
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL_LINEAR = ATTENTION + ["gate_proj", "up_proj", "down_proj"]
N_WORDS = 1000  # synthetic word-level vocabulary; token ids stay below every model's vocab


def qwen_config(name: str):
    from transformers import Qwen2Config
    return Qwen2Config(**QWEN25_SHAPES[name], max_position_embeddings=32768, rope_theta=1_000_000.0,
                       rms_norm_eps=1e-6, pad_token_id=0, eos_token_id=1, bos_token_id=None, use_cache=False)


def make_tokenizer():
    """A word-level tokenizer: 'w17' is token 17, so L words are exactly L tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{f"w{i}": i for i in range(3, N_WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def words(rng, n: int) -> str:
    return " ".join(f"w{i}" for i in rng.integers(3, N_WORDS, size=n))


def make_dataset(task: str, seq: int, n: int, seed: int = 0):
    import numpy as np
    from datasets import Dataset
    rng = np.random.default_rng(seed)
    if task == "sft":  # trl appends EOS: seq-1 words + EOS = seq tokens
        return Dataset.from_dict({"text": [words(rng, seq - 1) for _ in range(n)]})
    half = seq // 2
    rows = [{"prompt": words(rng, half), "chosen": " " + words(rng, seq - half - 1),
             "rejected": " " + words(rng, seq - half - 1)} for _ in range(n)]
    return Dataset.from_list(rows)


def save_tokenizer(path: Path, chat_template: str | None = None) -> None:
    tok = make_tokenizer()
    if chat_template:
        tok.chat_template = chat_template
    tok.save_pretrained(path)
    # Without this, AutoTokenizer would build Qwen2's BPE tokenizer from the model type and ignore tokenizer.json.
    tok_cfg = json.loads((path / "tokenizer_config.json").read_text())
    tok_cfg["tokenizer_class"] = "TokenizersBackend"
    (path / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=1))


def save_checkpoint(name: str, path: Path, device: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(qwen_config(name), dtype=torch.bfloat16)
    model.save_pretrained(path)
    save_tokenizer(path)
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def load_base(path: Path, method: str, dtype: str, device: str):
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    kwargs = dict(dtype=torch.float32 if dtype == "fp32" else torch.bfloat16, device_map={"": 0} if device == "cuda" else None)
    if method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
    return AutoModelForCausalLM.from_pretrained(str(path), **kwargs)


def grid(model: str, quick: bool, optim: str = "adamw_torch_fused") -> list[dict]:
    """Rows in priority tiers (every method, task and axis is covered in tier 0-1), grouped by method in a tier."""
    methods = ["qlora", "lora", "full"] if model != "qwen2.5-7b" else ["qlora", "lora"]
    shapes = [(1024, 4, True), (512, 1, True), (2048, 8, True), (1024, 4, False), (512, 1, False),
              (2048, 4, True), (512, 4, True), (1024, 1, True), (1024, 8, True), (2048, 8, False),
              (2048, 1, False), (512, 8, False)]
    tiers = [0, 0, 0, 0, 1, 1, 2, 2, 2, 1, 2, 2]
    rows = []
    for method in methods:
        for task in ("sft", "dpo"):
            base = dict(model=model, method=method, task=task, rank=16, targets="attention", optim=optim, dtype="bf16")
            if method == "full":
                base["targets"] = "-"
            for (seq, batch, ckpt), tier in zip(shapes, tiers):
                rows.append(dict(base, seq=seq, batch=batch, ckpt=ckpt, tier=tier))
            if method != "full":
                for seq, batch, ckpt, tier in [(1024, 4, True, 0), (2048, 8, True, 1), (512, 1, False, 1),
                                               (1024, 4, False, 2)]:
                    rows.append(dict(base, targets="all-linear", seq=seq, batch=batch, ckpt=ckpt, tier=tier))
                rows.append(dict(base, targets="all-linear", rank=64, seq=1024, batch=4, ckpt=True, tier=1))
            rows.append(dict(base, optim="paged_adamw_8bit", seq=1024, batch=4, ckpt=True, tier=1))
    if model == "qwen2.5-7b":  # the lab's full fine-tuning (fp32 master weights) of 7B: expected not to fit 80 GB
        rows.append(dict(model=model, method="full", task="sft", rank=16, targets="-", optim="adamw_torch",
                         dtype="fp32", seq=512, batch=1, ckpt=True, tier=3))
    if quick:
        rows = [r for r in rows if r["tier"] == 0][:: 4]
    order = {m: i for i, m in enumerate(["qlora", "lora", "full"])}
    return sorted(rows, key=lambda r: (r["tier"], order[r["method"]]))


def lab_full_grid(model: str) -> list[dict]:
    """Full fine-tuning as lab.train.worker does it: fp32 weights under bf16 autocast, default torch AdamW."""
    rows = []
    for task in ("sft", "dpo"):
        for seq, batch, ckpt in [(1024, 4, True), (512, 1, True), (2048, 8, True), (1024, 4, False), (512, 1, False)]:
            rows.append(dict(model=model, method="full", task=task, rank=16, targets="-", optim="adamw_torch",
                             dtype="fp32", seq=seq, batch=batch, ckpt=ckpt, tier=0))
        rows.append(dict(rows[-5], optim="adamw_torch_fused", tier=1))
    return rows


def holdout_grid(model: str) -> list[dict]:
    """Shapes and settings the estimator was not fitted on (run after the fit, as an out-of-sample check)."""
    rows = []
    for method, dtype in [("qlora", "bf16"), ("lora", "bf16"), ("full", "fp32")]:
        for task in ("sft", "dpo"):
            base = dict(model=model, method=method, task=task, rank=8, targets="all-linear" if method != "full"
                        else "-", optim="adamw_torch", dtype=dtype, tier=0)
            rows += [dict(base, seq=4096, batch=1, ckpt=True), dict(base, seq=768, batch=2, ckpt=False),
                     dict(base, seq=1536, batch=6, ckpt=True)]
    order = {m: i for i, m in enumerate(["qlora", "lora", "full"])}
    return sorted(rows, key=lambda r: order[r["method"]])


def run_row(trainer_base, row: dict, path: Path, device: str, steps: int):
    """Train `steps` optimizer steps with trl on `trainer_base` and return the memory record."""
    import torch
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer
    common = dict(output_dir="/tmp/vram_run", per_device_train_batch_size=row["batch"], max_steps=steps,
                  learning_rate=1e-5, gradient_checkpointing=row["ckpt"], bf16=device == "cuda",
                  optim=row["optim"], report_to="none", save_strategy="no", logging_steps=1,
                  max_length=row["seq"], dataloader_num_workers=0, seed=0, use_cpu=device == "cpu")
    peft_config = None
    if row["method"] != "full":
        peft_config = LoraConfig(r=row["rank"], lora_alpha=2 * row["rank"], lora_dropout=0.05,
                                 target_modules=ATTENTION if row["targets"] == "attention" else ALL_LINEAR,
                                 task_type="CAUSAL_LM")
    data = make_dataset(row["task"], row["seq"], row["batch"] * steps)
    tok = make_tokenizer()
    if row["task"] == "sft":
        trainer = SFTTrainer(model=trainer_base, args=SFTConfig(**common), train_dataset=data,
                             processing_class=tok, peft_config=peft_config)
    else:
        trainer = DPOTrainer(model=trainer_base, args=DPOConfig(**common, beta=0.1), train_dataset=data,
                             processing_class=tok, peft_config=peft_config)
    rec = dict(row)
    try:
        if device == "cuda":
            torch.cuda.synchronize()
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            rec["alloc_before_gib"] = torch.cuda.memory_allocated() / 2**30
        t0 = time.perf_counter()
        out = trainer.train()
        rec["train_s"] = time.perf_counter() - t0
        rec["loss"] = out.training_loss
        if device == "cuda":
            torch.cuda.synchronize()
            rec["peak_alloc_gib"] = torch.cuda.max_memory_allocated() / 2**30
            rec["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
            free, total = torch.cuda.mem_get_info()
            rec["device_used_end_gib"] = (total - free) / 2**30
        rec["status"] = "ok"
    except torch.OutOfMemoryError:
        rec["status"] = "oom"
    finally:
        model = trainer.model
        trainer.optimizer = None
        trainer.lr_scheduler = None
        del trainer
        restored = unwrap(model, row)
        if row["optim"].startswith("paged") or "8bit" in row["optim"]:
            # Trainer registers every nn.Embedding with bnb's process-wide GlobalOptimManager, which would keep that
            # module (and its weights) alive into the next rows; a training job is one process, so reset it here.
            import bitsandbytes as bnb
            bnb.optim.GlobalOptimManager.get_instance().initialize()
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    return rec, restored


def unwrap(model, row: dict):
    """Give back the bare base model (LoRA layers removed, trl's forward patch and checkpointing undone)."""
    if row["method"] != "full":
        model = model.unload()
    model.__dict__.pop("forward", None)
    if getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()
    try:
        model.disable_input_require_grads()
    except (AttributeError, RuntimeError):
        pass
    model.zero_grad(set_to_none=True)
    return model


def measure(args) -> None:
    import torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    path = Path(args.ckpt_dir) / args.model
    context_gib = None
    if device == "cuda":
        torch.cuda.init()
        free, total = torch.cuda.mem_get_info()
        context_gib = (total - free) / 2**30
    if not (path / "config.json").exists():
        save_checkpoint(args.model, path, device)
    out = open(args.out, "a")
    out.write(json.dumps({"kind": "model", "model": args.model, "config": QWEN25_SHAPES[args.model],
                          "context_gib": context_gib,
                          "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                          "versions": versions()}) + "\n")
    t_start = time.perf_counter()
    base, base_method = None, None
    rows = {"main": lambda: grid(args.model, args.quick, args.optim), "lab-full": lambda: lab_full_grid(args.model),
            "holdout": lambda: holdout_grid(args.model)}[args.set]()
    if args.tiers:
        rows = [r for r in rows if str(r["tier"]) in args.tiers.split(",")]
    for row in rows:
        if time.perf_counter() - t_start > args.budget_s:
            out.write(json.dumps(dict(row, kind="row", status="skipped_time")) + "\n")
            continue
        want = ("qlora" if row["method"] == "qlora" else "plain", row.get("dtype", "bf16"))
        if base_method != want or row["method"] == "full":
            base = None
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()
            base, base_method = load_base(path, row["method"], row.get("dtype", "bf16"), device), want
        rec, base = run_row(base, row, path, device, args.steps)
        rec["kind"] = "row"
        out.write(json.dumps(rec) + "\n")
        out.flush()
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rec.items()}), flush=True)


def versions() -> dict:
    import importlib.metadata as md
    return {p: md.version(p) for p in ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate")}


def summarize(paths: list[str]) -> None:
    """Print one short line per measured row (the device reply keeps only the end of the output)."""
    for path in paths:
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            if r["kind"] == "model":
                print(r["model"], r["device"], "context_gib", r.get("context_gib"), r["versions"])
                continue
            peak = r.get("peak_alloc_gib")
            print(r["model"][7:], r["method"], r.get("dtype", "bf16"), r["task"], r["targets"][:3], r["rank"], r["optim"][:5], r["seq"],
                  r["batch"], int(r["ckpt"]), r["status"], None if peak is None else round(peak, 2),
                  round(r.get("alloc_before_gib", 0), 2), round(r.get("train_s", 0), 1))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(QWEN25_SHAPES))
    p.add_argument("--out", help="JSONL file, appended to")
    p.add_argument("--summary", nargs="+", help="print the rows of these JSONL files and exit")
    p.add_argument("--ckpt-dir", default="/tmp/vram_ckpt")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--budget-s", type=float, default=480.0, help="start no new row after this many seconds")
    p.add_argument("--quick", action="store_true", help="two shapes per method and task (smoke run)")
    p.add_argument("--set", choices=["main", "lab-full", "holdout"], default="main",
                   help="main grid, or full fine-tuning with the lab's fp32 weights and default AdamW")
    p.add_argument("--tiers", help="comma-separated priority tiers to run (default all)")
    p.add_argument("--optim", default="adamw_torch_fused", help="optimizer of the main grid")
    args = p.parse_args(argv)
    if args.summary:
        summarize(args.summary)
    elif args.model and args.out:
        measure(args)
    else:
        p.error("give --model and --out, or --summary")


if __name__ == "__main__":
    sys.exit(main())
