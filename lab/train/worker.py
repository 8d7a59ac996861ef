"""The training child process: `python -m lab.train.worker RUN_DIR` runs the config in RUN_DIR/config.json.

It configures the libraries rather than re-implementing them (trl's SFTTrainer/DPOTrainer, peft's LoraConfig,
transformers' BitsAndBytesConfig for the QLoRA recipe of Dettmers et al., 2023), and reports through files only, so
any browser can re-attach: `metrics.jsonl` gets one JSON object per logging step (loss, learning rate, tokens/s, ETA,
peak memory and whatever trl logs, e.g. DPO's rewards/margins and rewards/accuracies), checkpoints go to
`checkpoints/`, and the result to `adapter/` (LoRA, with `base_model_name_or_path` set to the lab's model id so the
registry lists it under that model) or `model/` (full fine-tuning). Started again on the same folder it resumes from
the last checkpoint. DPO with LoRA uses trl's reference handling: on the base, the reference is the base with the
adapter disabled; on an SFT adapter, trl adds a frozen copy of that adapter as the reference; never a second model.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from lab.train.config import TrainConfig

EXIT_BAD_DATA = 3  # exit code when validation refuses the data (the log lists the problems)


def _now() -> float:
    return time.time()


def is_main_rank() -> bool:
    """True in a single-process run and in rank 0 of an `accelerate launch` run (the one that reports)."""
    return int(os.environ.get("RANK", "0")) == 0


def write_metric(run_dir: Path, record: dict) -> None:
    """Append one JSON line to RUN_DIR/metrics.jsonl from rank 0 (flushed at once: the UI tails this file)."""
    if not is_main_rank():
        return
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"time": round(_now(), 3), **record}) + "\n")


def peak_memory_gb(device: str) -> float:
    """Peak GPU memory allocated by torch on CUDA; peak resident memory of this process on the CPU."""
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def make_metrics_callback(run_dir: Path, device: str):
    """A TrainerCallback writing each trl log record, plus tokens/s, ETA and peak memory, to metrics.jsonl."""
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.t0, self.step0, self.last = _now(), state.global_step, (_now(), None)
            write_metric(run_dir, {"event": "train_begin", "step": state.global_step, "max_steps": state.max_steps})

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = dict(logs or {})
            now, step = _now(), state.global_step
            tokens = logs.get("num_tokens") or state.num_input_tokens_seen or None
            last_t, last_tokens = self.last
            if tokens and last_tokens is not None and now > last_t:
                logs["tokens_per_s"] = (tokens - last_tokens) / (now - last_t)
            self.last = (now, tokens)
            done = step - self.step0
            if done > 0 and state.max_steps:
                logs["eta_s"] = (now - self.t0) / done * (state.max_steps - step)
            logs.update(step=step, max_steps=state.max_steps, peak_mem_gb=peak_memory_gb(device), device=device)
            write_metric(run_dir, logs)

        def on_save(self, args, state, control, **kwargs):
            write_metric(run_dir, {"event": "checkpoint", "step": state.global_step})

    return MetricsCallback()


def pick_device(cfg: TrainConfig) -> str:
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("device 'cuda' was asked for but torch sees no GPU; choose device 'cpu' or 'auto'")
    return "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"


def load_model(cfg: TrainConfig, path: str, device: str, dc=None):
    """The base model (4-bit NF4 for QLoRA), with `base_adapter` attached trainable when given."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    # GPU: bf16 weights and bf16 compute (the QLoRA recipe); fp16 on GPUs without bf16. CPU: float32, because CPUs
    # without bf16 matrix units run bf16 matmuls several times slower than float32.
    if device == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.float32
    # under `accelerate launch` each rank loads its copy onto its own GPU
    place = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if device == "cuda" else device
    kwargs = {"dtype": torch.float32 if cfg.finetune == "full" else dtype, "device_map": {"": place}}
    if dc is not None and dc.strategy != "none":  # FSDP / ZeRO-3 load on rank 0 (or partitioned) and shard themselves
        kwargs["device_map"] = None
    if cfg.finetune == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
            # FSDP and ZeRO-3 shard only floating-point tensors: store the packed 4-bit weights as the compute dtype
            **({"bnb_4bit_quant_storage": dtype} if dc is not None and dc.strategy != "none" else {}),
        )
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if cfg.base_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.base_adapter, is_trainable=True)
    return model


def lora_config(cfg: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )


def trainer_args(cfg: TrainConfig, run_dir: Path, device: str, has_eval: bool) -> dict:
    """Keyword arguments shared by SFTConfig and DPOConfig (both are transformers TrainingArguments)."""
    import torch

    report = cfg.report_to
    if report != "none" and not _installed(report):
        print(f"report_to {report!r} is not installed; logging to metrics.jsonl only", flush=True)
        report = "none"
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run_dir / "tensorboard"))
    return dict(
        output_dir=str(run_dir / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_schedule,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps or -1,
        optim=cfg.optimizer,
        weight_decay=cfg.weight_decay,
        max_length=cfg.max_length,
        gradient_checkpointing=cfg.gradient_checkpointing,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=cfg.eval_steps,
        report_to=report,
        bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
        fp16=device == "cuda" and not torch.cuda.is_bf16_supported(),
        use_cpu=device == "cpu",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def load_examples(cfg: TrainConfig, tokenizer, run_dir: Path):
    """Validated trl-format examples as (train, eval) datasets; exits with EXIT_BAD_DATA on refused data."""
    import datasets

    from lab.train import data

    rows = data.load_rows(cfg.dataset, cfg.dataset_split, cfg.dataset_config, cfg.max_rows)
    examples, report = data.prepare(rows, cfg.method, cfg.data_format, tokenizer, cfg.max_length)
    print(report.summary(), flush=True)
    write_metric(run_dir, {"event": "data", "rows": len(rows), "examples": len(examples),
                           "problems": len(report.problems), "format": report.data_format})
    if report.problems and not cfg.drop_bad_rows:
        print("Refusing to train on data with problems; fix them or set drop_bad_rows.", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_DATA)
    if not examples:
        print("No usable examples left after validation.", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_DATA)
    ds = datasets.Dataset.from_list(examples)
    if cfg.eval_fraction > 0 and len(ds) >= 4:
        split = ds.train_test_split(test_size=cfg.eval_fraction, seed=cfg.seed)
        return split["train"], split["test"]
    return ds, None


def build_trainer(cfg: TrainConfig, run_dir: Path, device: str, path: str, dc=None):
    """The trl trainer for this config, with the metrics callback attached."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_ds, eval_ds = load_examples(cfg, tokenizer, run_dir)
    peft_config = lora_config(cfg) if cfg.uses_lora and not cfg.base_adapter else None
    common = trainer_args(cfg, run_dir, device, eval_ds is not None)
    if dc is not None:
        from lab.train.distributed import trainer_overrides

        common.update(trainer_overrides(dc))
    if cfg.method == "sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(packing=cfg.packing, completion_only_loss=True, **common)
        trainer_cls = SFTTrainer
    else:
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(beta=cfg.dpo_beta, loss_type=[cfg.dpo_loss], **common)
        trainer_cls = DPOTrainer
    # The args exist before the model: with ZeRO-3 they switch on deepspeed.zero.Init for from_pretrained, and they
    # start the process group FSDP's rank-0-only loading (fsdp_cpu_ram_efficient_loading) needs.
    model = load_model(cfg, path, device, dc)
    return trainer_cls(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[make_metrics_callback(run_dir, device)],
    )


def save_result(cfg: TrainConfig, trainer, run_dir: Path, dc=None) -> Path:
    """Save the adapter (default adapter only, not trl's 'ref' copy) or the full model; returns its folder."""
    model = trainer.model
    sharded = dc is not None and dc.strategy != "none"
    if sharded and getattr(trainer.accelerator.state, "fsdp_plugin", None) is not None:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")  # one loadable folder
    if cfg.uses_lora:
        out = run_dir / "adapter"
        if sharded:  # every rank takes part in gathering the shards; rank 0 writes
            trainer.save_model(str(out))
        elif is_main_rank():
            model.save_pretrained(out, selected_adapters=["default"])
        trainer.accelerator.wait_for_everyone()
        if not is_main_rank():
            return out
        config_path = out / "adapter_config.json"
        adapter_cfg = json.loads(config_path.read_text())
        adapter_cfg["base_model_name_or_path"] = cfg.model
        config_path.write_text(json.dumps(adapter_cfg, indent=2))
    else:
        out = run_dir / "model"
        trainer.save_model(str(out))
    if is_main_rank():
        trainer.processing_class.save_pretrained(out)
    return out


def run(run_dir: Path) -> None:
    from transformers.trainer_utils import get_last_checkpoint

    from lab.models.registry import resolve_model

    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # progress bars would flood log.txt; metrics.jsonl carries the progress
    datasets.disable_progress_bars()
    from lab.train.distributed import DistributedConfig, die_with_parent

    cfg = TrainConfig.from_json(run_dir / "config.json")
    dc = DistributedConfig.from_train_config(cfg)
    if dc.distributed:
        die_with_parent()  # torchrun gave this rank its own session: Stop must still reach it
    device = pick_device(cfg)
    path = resolve_model(cfg.model)
    print(f"Training {cfg.method} / {cfg.finetune} of {cfg.model} ({path}) on {device}", flush=True)
    trainer = build_trainer(cfg, run_dir, device, path, dc)
    checkpoints = run_dir / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if last:
        print(f"Resuming from {last}", flush=True)
    result = trainer.train(resume_from_checkpoint=last)
    out = save_result(cfg, trainer, run_dir, dc)
    write_metric(run_dir, {"event": "done", "step": trainer.state.global_step, "train_loss": result.training_loss,
                           "output": str(out), "peak_mem_gb": peak_memory_gb(device)})
    print(f"Saved to {out}", flush=True)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m lab.train.worker RUN_DIR")
    run(Path(argv[0]))


if __name__ == "__main__":
    main()
