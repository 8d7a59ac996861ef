"""Peak GPU memory of an SFT or DPO training run, predicted from the model's config alone (no weights loaded).

`estimate_peak_memory(shape, plan)` returns a `MemoryEstimate` whose `total` (GiB) predicts
`torch.cuda.max_memory_allocated()` of a training step run the way lab.train.worker runs it: trl's SFTTrainer /
DPOTrainer (trl 1.16), peft LoRA, bitsandbytes NF4 for QLoRA, transformers' SDPA attention. The CUDA context
(~0.5 GiB, outside torch's allocator) and the allocator's cached-but-free blocks are reported apart and added by
`fits()` before comparing with a card's memory.

The terms are counted from the architecture, as in Korthikanti et al., "Reducing Activation Recomputation in Large
Transformer Models" (2022, section 4: activation bytes per token and layer, a multiple of the hidden and MLP widths)
and the ZeRO paper's accounting of mixed-precision Adam (Rajbhandari et al., 2020: weights, gradients, two moments).
What the code libraries add on top is fitted on H100 measurements (bench/vram_measure.py, committed in
bench/results/vram_h100.json) as a handful of bytes-per-element coefficients below, not per configuration:
- trl 1.16 never materialises the (tokens x vocab) logits: its fused LM head scores 4096-token x 32768-vocab fp32
  tiles (freed before the layers' backward, so they add nothing measurable at the peak); the full-vocabulary fp32
  logits that published calculators count (152k x tokens x 4 bytes for Qwen) never exist here. DPO's
  chosen+rejected doubling acts on the activations; its reference forward runs under no_grad.
- trl casts QLoRA adapters to bf16; peft keeps plain-LoRA adapters in fp32 (`autocast_adapter_dtype`).
- DPO with LoRA takes its reference from the same weights with the adapter disabled (no copy); full-model DPO loads
  a second model in the policy's dtype. lab.train loads full fine-tuning in fp32 (bf16 autocast), LoRA in bf16.
- torch's foreach AdamW (`adamw_torch`) holds one parameter-sized temporary during the step; fused AdamW a small one;
  paged bitsandbytes optimizers keep their states in CUDA managed memory, which max_memory_allocated does not see.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

GIB = 2**30
CARDS_GIB = {"RTX 4090D 24 GB": 24.0, "A100 40 GB": 40.0, "A100 80 GB": 80.0, "H100 80 GB": 80.0}
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "sgd")
FUSED_TILE_TOKENS, FUSED_TILE_VOCAB = 4096, 32768  # trl.kernels.chunked_logprob tile (tokens x vocab, fp32)

# Fitted coefficients (bytes per element; non-negative least squares on the H100 rows, relative error weighted; see
# bench/results/vram.md). ACT[method] = (x hidden, x intermediate) per token and layer without checkpointing;
# RECOMPUTE[method] = the same for the one layer recomputed (and back-propagated) with checkpointing. DPO's per-token
# cost (tokens = 2 x batch x length) came out ~20% lower than SFT's; the cause is not pinned down (DPO's prompt half
# carries no labels, so trl's fused head scores only half the tokens, is one candidate).
ACT = {"sft": (23.4, 5.2), "dpo": (10.3, 5.8)}
RECOMPUTE = {"sft": (20.2, 12.1), "dpo": (11.7, 11.5)}
# Full fine-tuning keeps every linear layer's input for its weight gradient, and full DPO runs a separate reference
# model: its own (method -> (x hidden, x intermediate)) coefficients, fitted the same way on the full rows.
ACT_FULL = {"sft": (64.5, 0.0), "dpo": (65.4, 0.0)}
RECOMPUTE_FULL = {"sft": (38.2, 0.0), "dpo": (51.6, 0.0)}
CKPT_LAYER_H = 2.1  # per token and layer with checkpointing: the bf16 layer input kept for recomputation (2 bytes)
# LoRA dropout per input element of each adapted module: without / with checkpointing. Plain LoRA keeps fp32 adapters,
# so peft casts the input to fp32 before dropout (more bytes than QLoRA's bf16 adapters).
DROPOUT = {"lora": (2.65, 2.72), "qlora": (2.04, 0.53)}
LOGIT_TILES = 0.0  # fused LM-head tiles add nothing measurable at the peak: they are freed before the layers' backward
FOREACH_TEMP = 1.0  # adamw_torch: temporaries as a fraction of the trainable parameters' bytes
FUSED_TEMP = 0.35  # adamw_torch_fused: set by hand on the full-fine-tuning rows with the fused optimizer
WORKSPACE_GIB = 0.065  # cuBLAS workspace and small buffers allocated at the first step
CONTEXT_GIB = 0.52  # CUDA context + kernels, measured on the H100 (torch.cuda.mem_get_info before any tensor)
RESERVE_OVERHEAD = 0.10  # allocator cache over allocated memory (measured: median 5%, up to 33% on small runs)


@dataclass(frozen=True)
class ModelShape:
    """The architecture numbers the estimate needs, read from a transformers config."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool
    head_dim: int
    qkv_bias: bool = True

    @classmethod
    def from_config(cls, cfg: dict) -> "ModelShape":
        cfg = cfg.get("text_config", cfg)
        missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                               "vocab_size") if k not in cfg]
        if missing:
            raise ValueError(f"model config lacks {', '.join(missing)}: the estimator needs a decoder-only "
                             "transformer config (Llama/Qwen2-style)")
        heads = cfg["num_attention_heads"]
        return cls(hidden=cfg["hidden_size"], layers=cfg["num_hidden_layers"], heads=heads,
                   kv_heads=cfg.get("num_key_value_heads") or heads, intermediate=cfg["intermediate_size"],
                   vocab=cfg["vocab_size"], tied=bool(cfg.get("tie_word_embeddings", False)),
                   head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads,
                   qkv_bias=cfg.get("attention_bias", cfg.get("model_type") == "qwen2"))

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear layer in one decoder layer."""
        q, kv, h = self.heads * self.head_dim, self.kv_heads * self.head_dim, self.hidden
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, self.intermediate), "up_proj": (h, self.intermediate),
                "down_proj": (self.intermediate, h)}

    def linear_params(self) -> int:
        return self.layers * sum(i * o for i, o in self.linears().values())

    def other_params(self) -> int:
        """Embeddings, LM head, norms and biases: the parameters QLoRA leaves in bf16."""
        bias = (self.heads + 2 * self.kv_heads) * self.head_dim if self.qkv_bias else 0
        embed = self.vocab * self.hidden * (1 if self.tied else 2)
        return embed + self.layers * (2 * self.hidden + bias) + self.hidden

    def params(self) -> int:
        return self.linear_params() + self.other_params()


def load_shape(model: str) -> ModelShape:
    """Shape from a folder's config.json or a hub id (transformers.AutoConfig: config only, never weights)."""
    path = Path(model).expanduser()
    if (path / "config.json").is_file():
        return ModelShape.from_config(json.loads((path / "config.json").read_text()))
    from transformers import AutoConfig

    return ModelShape.from_config(AutoConfig.from_pretrained(model).to_dict())


@dataclass(frozen=True)
class TrainPlan:
    """The settings that decide memory; names and ranges follow lab.train.config.TrainConfig."""

    finetune: str = "qlora"  # 'full', 'lora' or 'qlora'
    method: str = "sft"  # 'sft' or 'dpo'
    lora_r: int = 16  # LoRA rank, 1..1024
    lora_targets: str = "attention"  # 'attention' (q,k,v,o) or 'all-linear'
    lora_dropout: float = 0.05  # LoRA dropout; > 0 stores a dropout output and mask per adapted input
    batch_size: int = 4  # sequences (SFT) or preference pairs (DPO) per step, 1..1024
    max_length: int = 512  # tokens per sequence, 16..131072
    gradient_checkpointing: bool = True  # keep only layer inputs, recompute in backward
    optimizer: str = "adamw_torch"  # one of OPTIMIZERS
    weights_dtype: str = "auto"  # 'auto' (lab.train: fp32 for full, bf16 otherwise), 'bf16' or 'fp32'

    def __post_init__(self) -> None:
        checks = [("finetune", self.finetune, ("full", "lora", "qlora")), ("method", self.method, ("sft", "dpo")),
                  ("lora_targets", self.lora_targets, ("attention", "all-linear")),
                  ("optimizer", self.optimizer, OPTIMIZERS), ("weights_dtype", self.weights_dtype,
                                                                ("auto", "bf16", "fp32"))]
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        for name, value, lo, hi in [("lora_r", self.lora_r, 1, 1024), ("batch_size", self.batch_size, 1, 1024),
                                    ("max_length", self.max_length, 16, 131072)]:
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be between {lo} and {hi}; got {value}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1); got {self.lora_dropout}")

    @property
    def dtype_bytes(self) -> int:
        if self.weights_dtype == "auto":
            return 4 if self.finetune == "full" else 2
        return 4 if self.weights_dtype == "fp32" else 2

    @property
    def tokens(self) -> int:
        """Tokens in one forward: DPO runs chosen and rejected of every pair together."""
        return self.batch_size * self.max_length * (2 if self.method == "dpo" else 1)

    def targets(self) -> tuple[str, ...]:
        return ATTENTION if self.lora_targets == "attention" else ATTENTION + MLP


@dataclass(frozen=True)
class MemoryEstimate:
    """Predicted peak of torch.cuda.max_memory_allocated during training, in GiB, by component."""

    weights: float  # base weights (NF4 + bf16 rest for QLoRA), plus the reference copy for full-model DPO
    lora_params: float  # adapter weights (bf16 for QLoRA, fp32 for LoRA); 0 for full fine-tuning
    gradients: float  # gradients of the trainable parameters
    optimizer_states: float  # AdamW moments (or 8-bit states) held by torch's allocator
    activations: float  # saved activations (layer inputs with checkpointing) plus the recomputed layer
    logits: float  # trl's fused LM-head tiles (the full logits are never materialised)
    overhead: float  # optimizer-step temporaries beyond activations, cuBLAS workspace
    paged_states: float  # paged optimizer states in CUDA managed memory (not in max_memory_allocated)
    total: float  # the predicted max_memory_allocated
    context: float = CONTEXT_GIB  # CUDA context, outside torch's allocator
    reserved_extra: float = 0.0  # allocator cache on top of allocated memory

    @property
    def device_total(self) -> float:
        """What the card must hold: allocated peak, allocator cache, CUDA context and resident paged states."""
        return self.total + self.reserved_extra + self.context + self.paged_states

    def as_dict(self) -> dict:
        return {**asdict(self), "device_total": self.device_total}


def _trainable(shape: ModelShape, plan: TrainPlan) -> tuple[int, int]:
    """(number of trainable parameters, bytes per trainable parameter)."""
    if plan.finetune == "full":
        return shape.params(), plan.dtype_bytes
    lin = shape.linears()
    n = shape.layers * sum(plan.lora_r * (lin[t][0] + lin[t][1]) for t in plan.targets())
    return n, 2 if plan.finetune == "qlora" else 4


def _weights_bytes(shape: ModelShape, plan: TrainPlan) -> float:
    if plan.finetune == "qlora":  # NF4: 4 bits, 8-bit absmax per 64 (double quant), fp32 per 256 absmax blocks
        linear = shape.linear_params() * (0.5 + 1 / 64 + 4 / (64 * 256))
        base = linear + 2 * shape.other_params()
    else:
        base = shape.params() * plan.dtype_bytes
    if plan.method == "dpo" and plan.finetune == "full":
        base *= 2  # trl loads a separate reference model (no adapter to disable)
    return base


def _optimizer_bytes(n: int, nbytes: int, optimizer: str) -> tuple[float, float]:
    """(states in torch's allocator, states in managed memory)."""
    states = {"sgd": 0.0, "adamw_8bit": 2.0 * n, "paged_adamw_8bit": 2.0 * n,
              "paged_adamw_32bit": 8.0 * n}.get(optimizer, 2.0 * n * nbytes)
    return (0.0, states) if optimizer.startswith("paged") else (states, 0.0)


def _activation_bytes(shape: ModelShape, plan: TrainPlan) -> tuple[float, float]:
    """(saved activations incl. the recomputed layer, fused LM-head tiles) for one forward/backward."""
    t, h, i = plan.tokens, shape.hidden, shape.intermediate
    lin = shape.linears()
    dropout_in = 0
    if plan.finetune != "full" and plan.lora_dropout > 0:
        dropout_in = sum(lin[m][0] for m in plan.targets())
    full = plan.finetune == "full"
    act_h, act_i = (ACT_FULL if full else ACT)[plan.method]
    rec_h, rec_i = (RECOMPUTE_FULL if full else RECOMPUTE)[plan.method]
    drop_nc, drop_ck = DROPOUT.get(plan.finetune, (0.0, 0.0))
    if plan.gradient_checkpointing:
        acts = t * shape.layers * CKPT_LAYER_H * h + t * (rec_h * h + rec_i * i + drop_ck * dropout_in)
    else:
        acts = t * shape.layers * (act_h * h + act_i * i + drop_nc * dropout_in)
    logits = LOGIT_TILES * min(t, FUSED_TILE_TOKENS) * min(shape.vocab, FUSED_TILE_VOCAB) * 4
    return acts, logits


def estimate_peak_memory(shape: ModelShape, plan: TrainPlan) -> MemoryEstimate:
    """Predicted peak allocated GPU memory of `plan` on a model of `shape`, broken down by component (GiB)."""
    n, nbytes = _trainable(shape, plan)
    weights = _weights_bytes(shape, plan)
    lora = 0.0 if plan.finetune == "full" else n * nbytes
    grads = n * nbytes
    states, paged = _optimizer_bytes(n, nbytes, plan.optimizer)
    acts, logits = _activation_bytes(shape, plan)
    temp_frac = {"adamw_torch": FOREACH_TEMP, "adamw_torch_fused": FUSED_TEMP}.get(plan.optimizer, 0.0)
    step_temp = temp_frac * n * nbytes
    # The peak is either in the backward pass (activations alive, gradients filling up) or in the optimizer step
    # (all gradients, states and the step's temporaries); weights and states from earlier steps are always there.
    overhead = WORKSPACE_GIB * GIB + max(0.0, step_temp - acts - logits)
    total = weights + lora + grads + states + acts + logits + overhead
    return MemoryEstimate(weights=weights / GIB, lora_params=lora / GIB, gradients=grads / GIB,
                          optimizer_states=states / GIB, activations=acts / GIB, logits=logits / GIB,
                          overhead=overhead / GIB, paged_states=paged / GIB, total=total / GIB,
                          reserved_extra=RESERVE_OVERHEAD * total / GIB)


def estimate(model: str, plan: TrainPlan) -> MemoryEstimate:
    """`estimate_peak_memory` for a hub id or a local model folder (reads config.json only)."""
    return estimate_peak_memory(load_shape(model), plan)


def fits(estimate: MemoryEstimate, gpu_gib: float) -> bool:
    """Whether the run fits a card of `gpu_gib` GiB (context, allocator cache and paged states included)."""
    return estimate.device_total <= gpu_gib


def present_gpu_gib() -> float | None:
    """Memory of the GPU torch sees (GiB), or None without one."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / GIB


def fit_table(estimate: MemoryEstimate) -> dict[str, bool]:
    """Fits on the common cards, and on the GPU present when there is one."""
    table = {name: fits(estimate, gib) for name, gib in CARDS_GIB.items()}
    here = present_gpu_gib()
    if here is not None:
        table[f"this GPU ({here:.0f} GiB)"] = fits(estimate, here)
    return table
