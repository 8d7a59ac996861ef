"""Training on several GPUs of one host: an `accelerate launch` config for FSDP or DeepSpeed ZeRO-3, never our own.

`DistributedConfig` holds the choices a user makes (GPUs, strategy, precision, CPU offload); `accelerate_config`
turns it into the YAML that `accelerate launch --config_file` reads (key names checked against accelerate 1.15's
`ClusterConfig` in accelerate/commands/config/config_args.py and the flags of accelerate/commands/launch.py, and
shaped like trl's shipped accelerate_configs/fsdp1.yaml, fsdp2.yaml and zero3.yaml); `launch_command` is the
argument list that starts `lab.train.worker` under it. `per_gpu_memory` applies the ZeRO-3 / FSDP FULL_SHARD
arithmetic (Rajbhandari et al., 2020, "ZeRO", section 5: weights, gradients and optimizer states each split over N
ranks) to a single-GPU memory breakdown, adding the all-gather buffer of the unsharded FSDP units in flight;
`per_gpu_estimate` does it to lab.train.vram's estimate. Written up in docs/multi_gpu.md.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

STRATEGIES = ("none", "fsdp", "deepspeed-zero3")  # 'none' with num_gpus > 1 is plain DDP (every GPU holds it all)
MIXED_PRECISIONS = ("bf16", "fp16", "no")
STATE_DICTS = {"full": "FULL_STATE_DICT", "sharded": "SHARDED_STATE_DICT"}
MAX_GPUS = 64
# Memory components ZeRO-3 / FULL_SHARD split over the ranks (names as in lab.train.vram.MemoryEstimate; 'optimizer'
# is accepted for plain breakdowns).
SHARDED = ("weights", "lora_params", "gradients", "optimizer", "optimizer_states", "paged_states")
# FSDP prefetches the next unit while computing the current one (backward_prefetch BACKWARD_PRE; FSDP2 does the same
# by default), so two unsharded units are alive at the peak; ZeRO-3's prefetch bucket behaves alike.
GATHERED_UNITS = 2


@dataclass
class DistributedConfig:
    """How one training run is spread over the GPUs of this host; validated in __post_init__."""

    num_gpus: int = 1  # processes/GPUs on this host, 1..64 (FSDP/ZeRO-3 on 1 GPU is for CPU offload)
    strategy: str = "none"  # 'none' (1 GPU, or DDP replicas), 'fsdp' (FULL_SHARD) or 'deepspeed-zero3'
    mixed_precision: str = "bf16"  # compute precision: 'bf16', 'fp16' or 'no' (fp32)
    offload_params: bool = False  # FSDP: parameters, gradients and the optimizer step on CPU; ZeRO-3: parameters
    offload_optimizer: bool = False  # DeepSpeed only: optimizer states and step on CPU (ZeRO-Offload)
    fsdp_version: int = 2  # 1 (FlatParameter FSDP) or 2 (per-parameter fully_shard, what accelerate recommends)
    wrap_layers: str = ""  # FSDP unit class(es), comma-separated; '' = from the model's architecture
    state_dict: str = "full"  # FSDP checkpoints: 'full' (one consolidated file) or 'sharded' (per rank, faster)
    activation_checkpointing: bool = True  # FSDP: recompute activations inside each unit (replaces HF's flag)

    def __post_init__(self) -> None:
        if isinstance(self.num_gpus, bool) or not isinstance(self.num_gpus, int) or not 1 <= self.num_gpus <= MAX_GPUS:
            raise ValueError(f"num_gpus must be an integer in [1, {MAX_GPUS}]; got {self.num_gpus!r}")
        for name, value, allowed in (("strategy", self.strategy, STRATEGIES),
                                     ("mixed_precision", self.mixed_precision, MIXED_PRECISIONS),
                                     ("state_dict", self.state_dict, tuple(STATE_DICTS)),
                                     ("fsdp_version", self.fsdp_version, (1, 2))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
        if self.offload_optimizer and self.strategy != "deepspeed-zero3":
            raise ValueError("offload_optimizer needs strategy 'deepspeed-zero3' (FSDP offloads the optimizer "
                             "together with the parameters: use offload_params)")
        if self.offload_params and self.strategy == "none":
            raise ValueError("offload_params needs strategy 'fsdp' or 'deepspeed-zero3'")
        if self.wrap_layers and self.strategy != "fsdp":
            raise ValueError("wrap_layers applies to strategy 'fsdp' only")

    @property
    def distributed(self) -> bool:
        """True when the run goes through `accelerate launch`: several GPUs, or FSDP/ZeRO-3 (e.g. offload) on one."""
        return self.num_gpus > 1 or self.strategy != "none"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_train_config(cls, cfg) -> DistributedConfig:
        """Read the distributed fields of a TrainConfig (absent fields keep their single-GPU defaults).

        Its `gradient_checkpointing` choice becomes FSDP's `activation_checkpointing`.
        """
        values = {f: getattr(cfg, f) for f in cls.__dataclass_fields__ if hasattr(cfg, f)}
        if hasattr(cfg, "gradient_checkpointing"):
            values["activation_checkpointing"] = bool(cfg.gradient_checkpointing)
        return cls(**values)


def wrap_classes(architectures: list[str]) -> list[str]:
    """FSDP unit classes for a transformers architecture (e.g. Qwen2ForCausalLM -> Qwen2DecoderLayer).

    The model class's `_no_split_modules` names its repeated block; accelerate falls back to the same attribute, so
    writing it out only makes the choice visible in the YAML. Unknown architectures give [] (accelerate decides).
    """
    import transformers

    names: list[str] = []
    for arch in architectures:
        cls = getattr(transformers, arch, None)
        names += [n for n in (getattr(cls, "_no_split_modules", None) or []) if n not in names]
    return names


def model_architectures(model: str) -> list[str]:
    """The `architectures` list of a lab model ('embedded', a folder or a hub id); [] when it cannot be read."""
    from lab.models.registry import model_config

    try:
        return list(model_config(model).get("architectures") or [])
    except (OSError, ValueError):  # a hub id without network or cache, a folder without config.json
        return []


def accelerate_config(dc: DistributedConfig, architectures: list[str] | None = None) -> dict:
    """The accelerate ClusterConfig for `dc` as a dict (write it as YAML and pass it to `accelerate launch`)."""
    kinds = {"none": "MULTI_GPU" if dc.distributed else "NO", "fsdp": "FSDP", "deepspeed-zero3": "DEEPSPEED"}
    config = {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": kinds[dc.strategy],
        "mixed_precision": dc.mixed_precision,
        "num_processes": dc.num_gpus,
        "num_machines": 1,
        "machine_rank": 0,
        "gpu_ids": "all",
        "rdzv_backend": "static",
        "same_network": True,
        "main_training_function": "main",
        "use_cpu": False,
        "debug": False,
        "downcast_bf16": False,
    }
    if dc.strategy == "fsdp":
        config["fsdp_config"] = _fsdp_config(dc, architectures or [])
    elif dc.strategy == "deepspeed-zero3":
        config["deepspeed_config"] = {
            "zero_stage": 3,
            "offload_param_device": "cpu" if dc.offload_params else "none",
            "offload_optimizer_device": "cpu" if dc.offload_optimizer else "none",
            "zero3_init_flag": True,  # build the model already partitioned (deepspeed.zero.Init)
            "zero3_save_16bit_model": True,  # save_model gathers one 16-bit checkpoint from_pretrained can load
            "deepspeed_multinode_launcher": "standard",
        }
    return config


def _fsdp_config(dc: DistributedConfig, architectures: list[str]) -> dict:
    fsdp = {
        "fsdp_version": dc.fsdp_version,
        "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "fsdp_offload_params": dc.offload_params,
        "fsdp_state_dict_type": STATE_DICTS[dc.state_dict],
        "fsdp_cpu_ram_efficient_loading": True,  # rank 0 reads the checkpoint, the others get it broadcast
        # FSDP's own checkpointing wraps each unit; the worker must then turn HF's gradient_checkpointing off
        # (transformers' Trainer refuses both at once): see trainer_overrides.
        "fsdp_activation_checkpointing": dc.activation_checkpointing,
    }
    layers = [s.strip() for s in dc.wrap_layers.split(",") if s.strip()] or wrap_classes(architectures)
    if layers:
        fsdp["fsdp_transformer_layer_cls_to_wrap"] = ",".join(layers)
    if dc.fsdp_version == 1:
        fsdp.update(
            fsdp_reshard_after_forward="FULL_SHARD",  # FSDP1 spelling of the sharding strategy (ZeRO-3)
            fsdp_backward_prefetch="BACKWARD_PRE",
            fsdp_forward_prefetch=False,
            fsdp_use_orig_params=True,  # frozen base + trainable LoRA weights in one FlatParameter (peft)
            fsdp_sync_module_states=True,  # required by cpu_ram_efficient_loading
        )
    else:
        fsdp["fsdp_reshard_after_forward"] = True  # FULL_SHARD; FSDP2 shards per parameter, so LoRA needs nothing
    return fsdp


def trainer_overrides(dc: DistributedConfig) -> dict:
    """TrainingArguments keys the worker must override under `dc` (FSDP checkpointing replaces HF's own)."""
    if dc.strategy == "fsdp" and dc.activation_checkpointing:
        return {"gradient_checkpointing": False}
    return {}


def write_accelerate_config(dc: DistributedConfig, run_dir: str | Path, architectures: list[str] | None = None) -> Path:
    """Write RUN_DIR/accelerate.yaml; the FSDP unit class comes from the run's model unless given."""
    import yaml

    run_dir = Path(run_dir)
    if architectures is None and dc.strategy == "fsdp" and not dc.wrap_layers:
        train_cfg = run_dir / "config.json"
        model = json.loads(train_cfg.read_text()).get("model", "") if train_cfg.is_file() else ""
        architectures = model_architectures(model) if model else []
    path = run_dir / "accelerate.yaml"
    path.write_text(yaml.safe_dump(accelerate_config(dc, architectures), sort_keys=True))
    return path


def free_port() -> int:
    """A TCP port free right now, so two runs on one host do not both rendezvous on accelerate's 29500."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(dc: DistributedConfig, run_dir: str | Path, port: int | None = None) -> list[str]:
    """The argument list that runs the worker on RUN_DIR: plain python for one GPU, `accelerate launch` otherwise.

    The config file must exist (write_accelerate_config) before the command runs.
    """
    run_dir = str(run_dir)
    if not dc.distributed:
        return [sys.executable, "-m", "lab.train.worker", run_dir]
    return [sys.executable, "-m", "accelerate.commands.launch",
            "--config_file", str(Path(run_dir) / "accelerate.yaml"),
            "--num_processes", str(dc.num_gpus),
            "--main_process_port", str(port or free_port()),
            "-m", "lab.train.worker", run_dir]


def die_with_parent() -> None:
    """Make this process get SIGKILL when its parent dies (Linux prctl PR_SET_PDEATHSIG; elsewhere a no-op).

    torchrun starts each rank in a session of its own, so the job runner's kill of the supervisor's process group
    reaches torchrun but not the ranks; were torchrun killed before it stops them, they would keep their GPU memory.
    The worker calls this first thing when it runs as one of several ranks.
    """
    import ctypes
    import os
    import signal

    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the call took effect
        os.kill(os.getpid(), signal.SIGKILL)


def visible_gpus() -> int:
    """How many CUDA devices torch sees (honours CUDA_VISIBLE_DEVICES); 0 without a GPU."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def deepspeed_installed() -> bool:
    return importlib.util.find_spec("deepspeed") is not None


def check_environment(dc: DistributedConfig, gpus: int, has_deepspeed: bool | None = None) -> None:
    """Refuse, with what to do, a config this host cannot run; `gpus` is the visible GPU count (visible_gpus())."""
    if dc.strategy == "deepspeed-zero3" and not (deepspeed_installed() if has_deepspeed is None else has_deepspeed):
        raise RuntimeError("strategy 'deepspeed-zero3' needs DeepSpeed, which is not installed: run "
                           "`pip install deepspeed` (it builds its CUDA ops on first use), or choose strategy 'fsdp'")
    if dc.distributed and dc.num_gpus > gpus:
        raise RuntimeError(f"num_gpus is {dc.num_gpus} but this host shows {gpus} GPU(s) to torch; lower num_gpus "
                           "or check CUDA_VISIBLE_DEVICES")
    if dc.mixed_precision == "bf16" and dc.distributed and gpus and not _bf16_ok():
        raise RuntimeError("mixed_precision 'bf16' needs an Ampere or newer GPU; choose 'fp16'")


def _bf16_ok() -> bool:
    import torch

    return torch.cuda.is_bf16_supported()


def tensor_parallel_size(requested: int, gpus: int, num_attention_heads: int) -> int:
    """vLLM's `tensor_parallel_size` for evaluation: `requested` checked, or 0 = the most GPUs that fit.

    vLLM splits the attention heads over the GPUs, so the size must divide the model's head count (Qwen2.5-7B's 28
    heads allow 1, 2, 4, 7, 14 or 28) and not exceed the GPUs present.
    """
    if requested == 0:
        return next(t for t in range(max(gpus, 1), 0, -1) if num_attention_heads % t == 0)
    if requested < 1 or requested > max(gpus, 1):
        raise ValueError(f"tensor_parallel_size must be in [1, {max(gpus, 1)}] (GPUs present: {gpus}) or 0 for "
                         f"automatic; got {requested}")
    if num_attention_heads % requested:
        ok = [t for t in range(1, max(gpus, 1) + 1) if num_attention_heads % t == 0]
        raise ValueError(f"tensor_parallel_size must divide the model's {num_attention_heads} attention heads; "
                         f"with {gpus} GPU(s) choose one of {ok}")
    return requested


def fsdp_unit_params(model_config) -> int:
    """Parameters of the largest FSDP unit of a decoder-only model: a transformers config dict or a vram.ModelShape.

    Units are the decoder layers plus the root, which keeps the embeddings, the final norm and an untied output head;
    for Qwen2.5-7B (vocabulary 152064, untied) the root, 1.09 B parameters, outweighs a layer (233 M).
    """
    from lab.train.vram import ModelShape

    shape = model_config if isinstance(model_config, ModelShape) else ModelShape.from_config(dict(model_config))
    bias = (shape.heads + 2 * shape.kv_heads) * shape.head_dim if shape.qkv_bias else 0
    layer = sum(i * o for i, o in shape.linears().values()) + 2 * shape.hidden + bias
    root = shape.vocab * shape.hidden * (1 if shape.tied else 2) + shape.hidden
    return max(layer, root)


def per_gpu_memory(breakdown: Mapping[str, float], dc: DistributedConfig, unit_bytes: float = 0.0) -> dict[str, float]:
    """Per-GPU memory (same unit as `breakdown`) of a single-GPU breakdown spread over `dc.num_gpus`.

    `breakdown` maps component to amount on one GPU. The SHARDED components (weights, adapter weights, gradients,
    optimizer states) are split N ways under FSDP FULL_SHARD and ZeRO-3, or leave the GPU when offloaded; every other
    component (activations, logits, workspace) is per GPU and unchanged, since each rank runs its own micro-batch.
    Sharded strategies add 'all_gather': GATHERED_UNITS unsharded units of `unit_bytes` (the largest unit in compute
    precision, see fsdp_unit_params). DDP (strategy 'none') replicates everything and adds 'ddp_buckets', the flat
    copy of the gradients DDP all-reduces. The result has every input key but the totals, the added one and 'total'.
    """
    n = dc.num_gpus
    out = {k: float(v) for k, v in breakdown.items() if k not in ("total", "device_total")}
    if dc.strategy == "none":
        if n > 1:
            out["ddp_buckets"] = sum(v for k, v in out.items() if k == "gradients")
    else:
        offloaded = {"fsdp": SHARDED if dc.offload_params else (),
                     "deepspeed-zero3": (("weights", "lora_params") if dc.offload_params else ())
                     + (("gradients", "optimizer", "optimizer_states", "paged_states")
                        if dc.offload_optimizer else ())}[dc.strategy]
        for key in SHARDED:
            if key in out:
                out[key] = 0.0 if key in offloaded else out[key] / n
        out["all_gather"] = GATHERED_UNITS * unit_bytes
    out["total"] = sum(out.values())
    return out


def per_gpu_estimate(model: str, plan, dc: DistributedConfig) -> dict[str, float]:
    """Per-GPU peak (GiB) of a run: lab.train.vram's single-GPU estimate for `plan` (a vram.TrainPlan), sharded.

    The optimizer step's temporaries (the estimator's `overhead` beyond the workspace) are proportional to the
    parameters each rank updates, so they shrink with the shards; the CUDA context and the allocator's cache stay per
    GPU. Returns the components, 'total' (predicted max_memory_allocated on each GPU) and 'device_total'.
    """
    from lab.train import vram

    shape = vram.load_shape(model)
    est = vram.estimate_peak_memory(shape, plan)
    temp_frac = {"adamw_torch": vram.FOREACH_TEMP, "adamw_torch_fused": vram.FUSED_TEMP}.get(plan.optimizer, 0.0)
    step_temp = temp_frac * est.gradients
    parts = {k: getattr(est, k) for k in ("weights", "lora_params", "gradients", "optimizer_states", "activations",
                                          "logits", "paged_states")}
    parts["overhead"] = est.overhead - max(0.0, step_temp - est.activations - est.logits)  # the workspace alone
    shard = 1 if dc.strategy == "none" else dc.num_gpus
    cpu_step = dc.offload_params if dc.strategy == "fsdp" else dc.offload_optimizer  # the optimizer runs on the CPU
    shared_step = 0.0 if cpu_step else step_temp / shard
    parts["overhead"] += max(0.0, shared_step - est.activations - est.logits)
    paged = parts.pop("paged_states")  # managed memory: on the card, but not in max_memory_allocated
    compute_bytes = 4 if dc.mixed_precision == "no" else 2
    unit = fsdp_unit_params(shape) * compute_bytes / vram.GIB
    out = per_gpu_memory(parts, dc, unit)
    paged = 0.0 if dc.offload_optimizer else paged / shard
    cache = est.reserved_extra * out["total"] / est.total if est.total else 0.0  # the allocator cache scales with use
    out["device_total"] = out["total"] + cache + est.context + paged
    return out

