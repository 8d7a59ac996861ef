"""Multi-GPU launch path: configs validated, YAML read back by accelerate's own loader and launcher, sharding math.

No GPU here: the FSDP / DeepSpeed configs are checked through accelerate's config loader, its launch-argument
validation and the environment it would hand the worker (the FSDP2 plugin is even built from it); the one real
2-process run is DDP on CPU with gloo, because accelerate 1.15 turns FSDP into plain MULTI_CPU data parallel on CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.train.distributed import (
    DistributedConfig,
    accelerate_config,
    check_environment,
    fsdp_unit_params,
    launch_command,
    per_gpu_estimate,
    per_gpu_memory,
    tensor_parallel_size,
    trainer_overrides,
    write_accelerate_config,
)

ROOT = Path(__file__).resolve().parents[2]
QWEN25_7B = dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, vocab_size=152064,
                 num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False, num_hidden_layers=28)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_gpus=0), "num_gpus must be an integer in [1, 64]"),
    (dict(num_gpus=2.0), "num_gpus must be an integer"),
    (dict(strategy="zero2"), "strategy must be one of 'none', 'fsdp', 'deepspeed-zero3'"),
    (dict(mixed_precision="fp8"), "mixed_precision must be one of"),
    (dict(state_dict="local"), "state_dict must be one of 'full', 'sharded'"),
    (dict(strategy="fsdp", fsdp_version=3), "fsdp_version must be one of 1, 2"),
    (dict(strategy="fsdp", offload_optimizer=True), "offload_optimizer needs strategy 'deepspeed-zero3'"),
    (dict(num_gpus=2, offload_params=True), "offload_params needs strategy 'fsdp' or 'deepspeed-zero3'"),
    (dict(num_gpus=2, strategy="deepspeed-zero3", wrap_layers="X"), "wrap_layers applies to strategy 'fsdp' only"),
])
def test_validation_names_the_field_and_range(kwargs, message):
    with pytest.raises(ValueError, match="^" + message.replace("[", r"\[").replace("(", r"\(")):
        DistributedConfig(**kwargs)


def test_from_train_config_reads_only_the_distributed_fields():
    cfg = SimpleNamespace(num_gpus=4, strategy="fsdp", learning_rate=1e-5, offload_params=True)
    dc = DistributedConfig.from_train_config(cfg)
    assert (dc.num_gpus, dc.strategy, dc.offload_params, dc.mixed_precision) == (4, "fsdp", True, "bf16")
    assert DistributedConfig.from_train_config(SimpleNamespace(seed=1)) == DistributedConfig()
    no_ckpt = SimpleNamespace(num_gpus=2, strategy="fsdp", gradient_checkpointing=False)
    assert DistributedConfig.from_train_config(no_ckpt).activation_checkpointing is False


def _round_trip(dc, tmp_path, architectures):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    path = write_accelerate_config(dc, tmp_path, architectures)
    loaded = load_config_from_file(str(path))
    assert isinstance(loaded, ClusterConfig)
    return loaded


def test_fsdp2_yaml_round_trips_through_accelerate(tmp_path):
    dc = DistributedConfig(num_gpus=2, strategy="fsdp")
    loaded = _round_trip(dc, tmp_path, ["Qwen2ForCausalLM"])
    assert loaded.distributed_type.value == "FSDP" and loaded.num_processes == 2 and loaded.mixed_precision == "bf16"
    assert loaded.fsdp_config == {
        "fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "fsdp_offload_params": False,
        "fsdp_state_dict_type": "FULL_STATE_DICT", "fsdp_cpu_ram_efficient_loading": True,
        "fsdp_activation_checkpointing": True, "fsdp_transformer_layer_cls_to_wrap": "Qwen2DecoderLayer",
        "fsdp_reshard_after_forward": True,
    }
    assert loaded.deepspeed_config == {}


def test_fsdp1_yaml_has_full_shard_and_orig_params_for_lora(tmp_path):
    dc = DistributedConfig(num_gpus=8, strategy="fsdp", fsdp_version=1, state_dict="sharded", offload_params=True)
    fsdp = _round_trip(dc, tmp_path, ["LlamaForCausalLM"]).fsdp_config
    assert fsdp["fsdp_reshard_after_forward"] == "FULL_SHARD" and fsdp["fsdp_use_orig_params"] is True
    assert fsdp["fsdp_state_dict_type"] == "SHARDED_STATE_DICT" and fsdp["fsdp_offload_params"] is True
    assert fsdp["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer" and fsdp["fsdp_sync_module_states"]


def test_deepspeed_zero3_yaml_round_trips(tmp_path):
    dc = DistributedConfig(num_gpus=4, strategy="deepspeed-zero3", offload_optimizer=True, mixed_precision="fp16")
    loaded = _round_trip(dc, tmp_path, None)
    assert loaded.distributed_type.value == "DEEPSPEED" and loaded.fsdp_config == {}
    ds = loaded.deepspeed_config
    assert ds["zero_stage"] == 3 and ds["zero3_init_flag"] and ds["zero3_save_16bit_model"]
    assert (ds["offload_optimizer_device"], ds["offload_param_device"]) == ("cpu", "none")


def test_ddp_and_single_gpu_types():
    assert accelerate_config(DistributedConfig(num_gpus=2))["distributed_type"] == "MULTI_GPU"
    assert accelerate_config(DistributedConfig())["distributed_type"] == "NO"


def test_wrap_class_comes_from_the_runs_model(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}))
    (tmp_path / "config.json").write_text(json.dumps({"model": str(model)}))
    path = write_accelerate_config(DistributedConfig(num_gpus=2, strategy="fsdp"), tmp_path)
    assert "fsdp_transformer_layer_cls_to_wrap: Qwen2DecoderLayer" in path.read_text()
    explicit = DistributedConfig(num_gpus=2, strategy="fsdp", wrap_layers="A, B")
    assert accelerate_config(explicit, ["Qwen2ForCausalLM"])["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"] == "A,B"


def test_launch_command_is_an_argument_list_accelerate_accepts(tmp_path):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    dc = DistributedConfig(num_gpus=2, strategy="fsdp")
    write_accelerate_config(dc, tmp_path, ["Qwen2ForCausalLM"])
    cmd = launch_command(dc, tmp_path, port=29123)
    assert all(isinstance(a, str) for a in cmd)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[-3:] == ["-m", "lab.train.worker", str(tmp_path)]
    args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args(cmd[3:]))
    assert args.use_fsdp and args.num_processes == 2 and args.module and args.training_script == "lab.train.worker"
    env = prepare_multi_gpu_env(args)
    assert env["FSDP_VERSION"] == "2" and env["FSDP_TRANSFORMER_CLS_TO_WRAP"] == "Qwen2DecoderLayer"
    assert args.main_process_port == 29123 and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    from accelerate import FullyShardedDataParallelPlugin

    saved = dict(os.environ)
    try:  # the plugin the worker's Accelerator would build from that environment
        os.environ.update(env)
        plugin = FullyShardedDataParallelPlugin()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True and plugin.activation_checkpointing
    assert plugin.transformer_cls_names_to_wrap == ["Qwen2DecoderLayer"] and "FULL" in str(plugin.state_dict_type)


def test_single_gpu_command_is_the_plain_worker(tmp_path):
    assert launch_command(DistributedConfig(), tmp_path) == [sys.executable, "-m", "lab.train.worker", str(tmp_path)]
    offload = DistributedConfig(num_gpus=1, strategy="fsdp", offload_params=True)  # one GPU, model in CPU memory
    assert launch_command(offload, tmp_path)[2] == "accelerate.commands.launch"


def test_environment_checks_say_what_to_do():
    with pytest.raises(RuntimeError, match="needs DeepSpeed, which is not installed: run `pip install deepspeed`"):
        check_environment(DistributedConfig(num_gpus=2, strategy="deepspeed-zero3"), gpus=2, has_deepspeed=False)
    with pytest.raises(RuntimeError, match="num_gpus is 4 but this host shows 2 GPU"):
        check_environment(DistributedConfig(num_gpus=4, strategy="fsdp", mixed_precision="no"), gpus=2)
    check_environment(DistributedConfig(num_gpus=2, strategy="fsdp", mixed_precision="no"), gpus=2)
    check_environment(DistributedConfig(), gpus=0)  # one process: the worker decides CPU or GPU itself


def test_trainer_overrides_turn_hf_checkpointing_off_under_fsdp_checkpointing():
    assert trainer_overrides(DistributedConfig(num_gpus=2, strategy="fsdp")) == {"gradient_checkpointing": False}
    assert trainer_overrides(DistributedConfig(num_gpus=2, strategy="fsdp", activation_checkpointing=False)) == {}
    assert trainer_overrides(DistributedConfig(num_gpus=2, strategy="deepspeed-zero3")) == {}


def test_largest_fsdp_unit_of_qwen25_7b_is_the_root():
    # root: embeddings + untied head = 2 * 152064 * 3584, plus the final norm (3584)
    assert fsdp_unit_params(QWEN25_7B) == 2 * 152064 * 3584 + 3584
    # a tiny config whose layer outweighs its tied embedding: q 8x8, k/v 8x4 each, o 8x8, MLP 3x8x32, 2 norms of 8
    tiny = dict(model_type="llama", hidden_size=8, intermediate_size=32, vocab_size=4, num_attention_heads=2,
                num_key_value_heads=1, tie_word_embeddings=True, num_hidden_layers=2)
    assert fsdp_unit_params(tiny) == 64 + 64 + 64 + 768 + 16


BREAKDOWN = {"weights": 15.2, "gradients": 15.2, "optimizer": 60.8, "activations": 6.0, "logits": 2.0}


def test_per_gpu_memory_shards_weights_grads_and_optimizer():
    out = per_gpu_memory(BREAKDOWN, DistributedConfig(num_gpus=4, strategy="fsdp"), unit_bytes=2.0)
    expected = {"weights": 3.8, "gradients": 3.8, "optimizer": 15.2, "activations": 6.0, "logits": 2.0,
                "all_gather": 4.0}
    assert out == pytest.approx({**expected, "total": 34.8})
    zero3 = per_gpu_memory(BREAKDOWN, DistributedConfig(num_gpus=4, strategy="deepspeed-zero3"), unit_bytes=2.0)
    assert zero3["total"] == pytest.approx(34.8)


def test_per_gpu_memory_ddp_replicates_and_offload_empties():
    ddp = per_gpu_memory({**BREAKDOWN, "total": 99.2}, DistributedConfig(num_gpus=4), unit_bytes=2.0)
    assert ddp == pytest.approx({**BREAKDOWN, "ddp_buckets": 15.2, "total": 99.2 + 15.2})  # + DDP's gradient copy
    assert per_gpu_memory(BREAKDOWN, DistributedConfig())["total"] == pytest.approx(99.2)
    off = per_gpu_memory(BREAKDOWN, DistributedConfig(num_gpus=2, strategy="fsdp", offload_params=True), 1.0)
    assert off["total"] == pytest.approx(6.0 + 2.0 + 2.0)
    ds = DistributedConfig(num_gpus=2, strategy="deepspeed-zero3", offload_optimizer=True)
    assert per_gpu_memory(BREAKDOWN, ds, 1.0) == pytest.approx(
        {"weights": 7.6, "gradients": 0.0, "optimizer": 0.0, "activations": 6.0, "logits": 2.0, "all_gather": 2.0,
         "total": 17.6})


TINY_STEPS = '''
import json, sys, torch
from accelerate import Accelerator
from transformers import LlamaConfig, LlamaForCausalLM

def main():
    acc = Accelerator()
    torch.manual_seed(0)  # the same initial weights on every rank
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256, max_position_embeddings=64)
    model = LlamaForCausalLM(cfg)
    start = sum(p.double().sum().item() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model, opt = acc.prepare(model, opt)
    g = torch.Generator().manual_seed(100 + acc.process_index)  # different data per rank
    for _ in range(2):
        ids = torch.randint(0, 256, (2, 16), generator=g)
        acc.backward(model(input_ids=ids, labels=ids).loss)
        opt.step()
        opt.zero_grad()
    end = sum(p.double().sum().item() for p in acc.unwrap_model(model).parameters())
    record = {"rank": acc.process_index, "world": acc.num_processes, "backend": acc.state.backend,
              "type": str(acc.state.distributed_type), "start": start, "end": end}
    with open(f"{sys.argv[1]}/rank{acc.process_index}.json", "w") as f:  # one file per rank: stdout interleaves
        json.dump(record, f)

if __name__ == "__main__":
    main()
'''


@pytest.mark.slow
def test_two_process_cpu_run_with_the_generated_config(tmp_path):
    """Two real optimizer steps in two processes launched by `accelerate launch` from our YAML (DDP on CPU, gloo)."""
    import yaml

    dc = DistributedConfig(num_gpus=2, strategy="none", mixed_precision="no")
    config = {**accelerate_config(dc), "use_cpu": True}
    (tmp_path / "accelerate.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "steps.py").write_text(TINY_STEPS)
    cmd = launch_command(dc, tmp_path)
    cmd[-3:] = [str(tmp_path / "steps.py"), str(tmp_path)]  # the tiny script instead of the worker
    # accelerate's multi-process launcher does not forward use_cpu from the YAML; this variable is how it is read.
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("rank*.json"))]
    assert [r["rank"] for r in results] == [0, 1]
    assert all(r["world"] == 2 and r["backend"] == "gloo" and r["type"].endswith("MULTI_CPU") for r in results)
    # DDP averaged the gradients of different batches: the weights moved, and identically on both ranks
    assert results[0]["end"] != pytest.approx(results[0]["start"], abs=1e-6)
    assert results[0]["end"] == pytest.approx(results[1]["end"], rel=1e-9, abs=1e-9)


def test_tensor_parallel_size_divides_the_heads_and_fits_the_gpus():
    assert tensor_parallel_size(0, gpus=8, num_attention_heads=28) == 7  # 8 does not divide 28
    assert tensor_parallel_size(0, gpus=4, num_attention_heads=28) == 4
    assert tensor_parallel_size(0, gpus=0, num_attention_heads=9) == 1
    assert tensor_parallel_size(2, gpus=2, num_attention_heads=28) == 2
    with pytest.raises(ValueError, match=r"must divide the model's 28 attention heads; with 8 GPU\(s\) choose one "
                                         r"of \[1, 2, 4, 7\]"):
        tensor_parallel_size(8, gpus=8, num_attention_heads=28)
    with pytest.raises(ValueError, match=r"tensor_parallel_size must be in \[1, 2\] \(GPUs present: 2\)"):
        tensor_parallel_size(4, gpus=2, num_attention_heads=28)


def test_vllm_backend_hands_tensor_parallel_size_to_vllm(tmp_path, monkeypatch):
    """A fake `vllm` stands in: tensor parallelism needs several GPUs and vLLM's GPU wheel, neither of which is here."""
    seen = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            device = SimpleNamespace(device_type="cuda")
            self.llm_engine = SimpleNamespace(vllm_config=SimpleNamespace(device_config=device))

        def get_tokenizer(self):
            return None

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=FakeLLM))
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"]}))
    from lab.generation.vllm_backend import VLLMBackend

    VLLMBackend(model=str(tmp_path), tensor_parallel_size=4)
    assert seen["tensor_parallel_size"] == 4 and seen["model"] == str(tmp_path.resolve())


def test_a_rank_dies_with_its_launcher(tmp_path):
    """The grandchild calls die_with_parent; killing its parent must kill it too (what Stop relies on)."""
    grandchild = ("import sys, time; from lab.train.distributed import die_with_parent; die_with_parent(); "
                  "open(sys.argv[1], 'w').write('ready'); time.sleep(60)")
    parent = ("import subprocess, sys, time; "
              f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}, sys.argv[1]], start_new_session=True); "
              "print(p.pid, flush=True); time.sleep(60)")
    flag = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", parent, str(flag)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child_pid = int(proc.stdout.readline())
    deadline = time.time() + 60
    while not flag.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert flag.exists(), "the grandchild never started"
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while _running(child_pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _running(child_pid)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited and waits only to be reaped


def test_per_gpu_estimate_shards_the_vram_estimators_breakdown(tmp_path):
    from lab.train import vram

    (tmp_path / "config.json").write_text(json.dumps(QWEN25_7B))
    plan = vram.TrainPlan(finetune="full", batch_size=1, max_length=1024, optimizer="adamw_torch")
    one = vram.estimate(str(tmp_path), plan)
    single = per_gpu_estimate(str(tmp_path), plan, DistributedConfig())
    assert single["total"] == pytest.approx(one.total) and single["device_total"] == pytest.approx(one.device_total)
    two = per_gpu_estimate(str(tmp_path), plan, DistributedConfig(num_gpus=2, strategy="fsdp"))
    for key in ("weights", "gradients", "optimizer_states"):
        assert two[key] == pytest.approx(getattr(one, key) / 2)
    assert two["activations"] == pytest.approx(one.activations)
    # the root unit (embeddings + head), twice, in bf16
    assert two["all_gather"] == pytest.approx(2 * (2 * 152064 * 3584 + 3584) * 2 / 2**30)
    # the optimizer step's temporaries (foreach AdamW: one copy of the trainable fp32 parameters) shrink too
    assert two["overhead"] == pytest.approx(vram.WORKSPACE_GIB + (one.gradients / 2 - one.activations - one.logits))
    assert one.device_total > 80 > per_gpu_estimate(str(tmp_path), plan, DistributedConfig(4, "fsdp"))["device_total"]
