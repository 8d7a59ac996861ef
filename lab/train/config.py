"""One training run's settings: `TrainConfig`, validated on creation and stored as the run folder's config.json.

The UI and the command line build a `TrainConfig`; the child process (`lab.train.worker`) reads it back from JSON and
turns it into peft's `LoraConfig`, transformers' `BitsAndBytesConfig` and trl's `SFTConfig`/`DPOConfig`. Defaults
follow the QLoRA recipe (Dettmers et al., 2023: 4-bit NF4, double quantisation, bf16 compute, LoRA on the attention
projections) and trl's documented defaults (DPO beta 0.1, sigmoid loss).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

METHODS = ("sft", "dpo")
FINETUNES = ("full", "lora", "qlora")
TARGETS = {
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],  # as in the QLoRA seed recipe
    "all-linear": "all-linear",  # peft's shorthand: every linear layer except the output head
}
SCHEDULES = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_min_lr")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "sgd")
DPO_LOSSES = ("sigmoid", "ipo", "hinge", "robust", "apo_zero", "apo_down", "sigmoid_norm")
REPORT_TO = ("none", "tensorboard", "wandb")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Everything one SFT or DPO run needs; JSON-serialisable, validated in __post_init__."""

    dataset: str = ""  # local .jsonl/.json/.parquet/.csv file or a hub dataset name
    model: str = "embedded"  # base model: 'embedded', a hub id or a local folder
    method: str = "sft"  # 'sft' (supervised fine-tuning) or 'dpo' (direct preference optimisation)
    finetune: str = "qlora"  # 'full', 'lora' or 'qlora' (LoRA on a 4-bit NF4 base)
    dataset_config: str | None = None  # hub dataset configuration, e.g. 'main' for openai/gsm8k
    dataset_split: str = "train"  # hub split to read
    data_format: str = "auto"  # 'auto' or one of lab.train.data.FORMATS
    max_rows: int = 0  # use only the first N rows; 0 = all
    drop_bad_rows: bool = False  # train on the valid rows when validation finds problems (else refuse to start)
    lora_r: int = 16  # LoRA rank, 1..1024
    lora_alpha: int = 32  # LoRA scaling numerator (scale = alpha / r), 1..4096
    lora_dropout: float = 0.05  # dropout on the LoRA input, 0..0.9
    lora_targets: str = "attention"  # 'attention' (q,k,v,o projections) or 'all-linear'
    base_adapter: str | None = None  # adapter folder to start from (DPO on top of an SFT adapter)
    learning_rate: float = 2e-4  # peak learning rate, (0, 1)
    lr_schedule: str = "cosine"  # one of SCHEDULES
    warmup_ratio: float = 0.03  # fraction of steps spent warming up, 0..0.5
    num_epochs: float = 1.0  # passes over the data (ignored when max_steps > 0), (0, 1000]
    max_steps: int = 0  # optimizer steps; 0 = use num_epochs
    batch_size: int = 4  # examples per device step, 1..1024
    grad_accum: int = 1  # steps accumulated per optimizer step, 1..1024
    max_length: int = 512  # tokens per example (prompt + answer), 16..131072
    gradient_checkpointing: bool = True  # recompute activations in backward: less memory, ~30% slower
    packing: bool = False  # SFT only: pack several examples into one max_length sequence
    optimizer: str = "adamw_torch"  # one of OPTIMIZERS (8-bit and paged ones need bitsandbytes on a GPU)
    weight_decay: float = 0.0  # AdamW weight decay, 0..1
    seed: int = 0  # seeds data order, LoRA init and dropout
    dpo_beta: float = 0.1  # DPO: strength of the pull towards the reference model, (0, 100]
    dpo_loss: str = "sigmoid"  # DPO loss type, one of DPO_LOSSES
    report_to: str = "none"  # 'none', 'tensorboard' or 'wandb' (when installed)
    logging_steps: int = 1  # log metrics every N optimizer steps, 1..100000
    save_steps: int = 50  # write a checkpoint every N optimizer steps, 1..1000000
    save_total_limit: int = 2  # checkpoints kept on disk, 1..100
    eval_fraction: float = 0.0  # share of rows held out for evaluation, 0..0.5
    eval_steps: int = 50  # evaluate every N steps when eval_fraction > 0, 1..1000000
    device: str = "auto"  # 'auto' (GPU when present), 'cpu' or 'cuda'
    num_gpus: int = 1  # GPUs of this host, 1..64; more than 1 runs through accelerate launch (lab.train.distributed)
    strategy: str = "none"  # 'none' (one GPU, or DDP on several), 'fsdp' (FULL_SHARD) or 'deepspeed-zero3'
    offload_params: bool = False  # fsdp / deepspeed-zero3: parameters (fsdp: also gradients, optimizer) in CPU memory
    offload_optimizer: bool = False  # deepspeed-zero3 only: optimizer states and step in CPU memory
    name: str = ""  # optional label shown in run lists

    def __post_init__(self) -> None:
        _choice("method", self.method, METHODS)
        _choice("finetune", self.finetune, FINETUNES)
        _choice("lora_targets", self.lora_targets, tuple(TARGETS))
        _choice("lr_schedule", self.lr_schedule, SCHEDULES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("dpo_loss", self.dpo_loss, DPO_LOSSES)
        _choice("report_to", self.report_to, REPORT_TO)
        _choice("device", self.device, DEVICES)
        from lab.train.data import FORMATS

        _choice("data_format", self.data_format, ("auto", *FORMATS))
        if not str(self.dataset).strip():
            raise ValueError("dataset must name a local file (.jsonl, .json, .parquet, .csv) or a hub dataset")
        if not str(self.model).strip():
            raise ValueError("model must be 'embedded', a hub id or a local folder")
        _range("max_rows", self.max_rows, 0, 10**9, integer=True)
        _range("lora_r", self.lora_r, 1, 1024, integer=True)
        _range("lora_alpha", self.lora_alpha, 1, 4096, integer=True)
        _range("lora_dropout", self.lora_dropout, 0.0, 0.9)
        _range("warmup_ratio", self.warmup_ratio, 0.0, 0.5)
        _range("max_steps", self.max_steps, 0, 10**8, integer=True)
        _range("batch_size", self.batch_size, 1, 1024, integer=True)
        _range("grad_accum", self.grad_accum, 1, 1024, integer=True)
        _range("max_length", self.max_length, 16, 131072, integer=True)
        _range("weight_decay", self.weight_decay, 0.0, 1.0)
        _range("seed", self.seed, 0, 2**32 - 1, integer=True)
        _range("logging_steps", self.logging_steps, 1, 100000, integer=True)
        _range("save_steps", self.save_steps, 1, 10**6, integer=True)
        _range("save_total_limit", self.save_total_limit, 1, 100, integer=True)
        _range("eval_fraction", self.eval_fraction, 0.0, 0.5)
        _range("eval_steps", self.eval_steps, 1, 10**6, integer=True)
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be in (0, 1); got {self.learning_rate}")
        if self.max_steps == 0 and not 0 < self.num_epochs <= 1000:
            raise ValueError(f"num_epochs must be in (0, 1000] when max_steps is 0; got {self.num_epochs}")
        if not 0 < self.dpo_beta <= 100:
            raise ValueError(f"dpo_beta must be in (0, 100]; got {self.dpo_beta}")
        if self.packing and self.method != "sft":
            raise ValueError("packing applies to method 'sft' only; turn it off for 'dpo'")
        if self.base_adapter and self.finetune == "full":
            raise ValueError("base_adapter needs finetune 'lora' or 'qlora' (full fine-tuning trains the base itself)")
        from lab.train.distributed import DistributedConfig

        DistributedConfig.from_train_config(self)  # validates num_gpus, strategy and the offload flags
        if (self.num_gpus > 1 or self.strategy != "none") and self.device == "cpu":
            raise ValueError("num_gpus > 1 and strategy 'fsdp'/'deepspeed-zero3' need device 'auto' or 'cuda'")
        if self.base_adapter and not (Path(self.base_adapter) / "adapter_config.json").is_file():
            raise ValueError(f"base_adapter {self.base_adapter!r} is not an adapter folder (no adapter_config.json)")

    @property
    def uses_lora(self) -> bool:
        """True for LoRA and QLoRA runs, which train and save an adapter instead of the whole model."""
        return self.finetune in ("lora", "qlora")

    @property
    def target_modules(self) -> list[str] | str:
        """peft's `target_modules` for the chosen `lora_targets`."""
        return TARGETS[self.lora_targets]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        """The config as JSON text; also written to `path` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from a dict, refusing unknown keys so a typo is not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> TrainConfig:
        """Read from a JSON file path or JSON text."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))


def _choice(name: str, value: str, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def _range(name: str, value: float, low: float, high: float, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} in [{low}, {high}]; got {value!r}")
