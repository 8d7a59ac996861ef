"""The VRAM estimator against the committed H100 measurements (bench/results/vram_h100.json), plus sanity checks."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lab.train import vram

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "vram_h100.json"
DATA = json.loads(RESULTS.read_text())
SHAPES = {name: vram.ModelShape.from_config(cfg) for name, cfg in DATA["models"].items()}
QWEN7B = SHAPES["qwen2.5-7b"]


def plan_of(row: dict) -> vram.TrainPlan:
    return vram.TrainPlan(finetune=row["method"], method=row["task"], lora_r=row["rank"],
                          lora_targets="attention" if row["targets"] == "-" else row["targets"],
                          batch_size=row["batch"], max_length=row["seq"], gradient_checkpointing=row["ckpt"],
                          optimizer=row["optim"], weights_dtype=row["dtype"])


def row_id(row: dict) -> str:
    return (f"{row['model']}-{row['method']}-{row['dtype']}-{row['task']}-{row['targets']}-r{row['rank']}-"
            f"{row['optim']}-L{row['seq']}-B{row['batch']}-ck{int(row['ckpt'])}")


OK_ROWS = [r for r in DATA["rows"] if r["status"] == "ok"]
OOM_ROWS = [r for r in DATA["rows"] if r["status"] == "oom"]


def test_measurements_cover_every_axis():
    assert {r["model"] for r in OK_ROWS} == {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b"}
    assert {r["method"] for r in OK_ROWS} == {"qlora", "lora", "full"}
    assert {r["task"] for r in OK_ROWS} == {"sft", "dpo"}
    assert {r["seq"] for r in OK_ROWS} >= {512, 1024, 2048}
    assert {r["batch"] for r in OK_ROWS} >= {1, 4, 8}
    assert {r["ckpt"] for r in OK_ROWS} == {True, False}
    assert {r["targets"] for r in OK_ROWS} >= {"attention", "all-linear"}
    assert len(OK_ROWS) > 250


@pytest.mark.parametrize("row", OK_ROWS, ids=row_id)
def test_estimate_within_ten_percent_of_measured(row):
    predicted = vram.estimate_peak_memory(SHAPES[row["model"]], plan_of(row)).total
    measured = row["measured_alloc_gib"]
    assert abs(predicted - measured) / measured <= 0.10, f"predicted {predicted:.2f} GiB, measured {measured:.2f}"


@pytest.mark.parametrize("row", OOM_ROWS, ids=row_id)
def test_runs_that_ran_out_of_memory_are_predicted_not_to_fit(row):
    est = vram.estimate_peak_memory(SHAPES[row["model"]], plan_of(row))
    assert not vram.fits(est, 80.0)


def test_parameter_counts_match_published_qwen25_sizes():
    # Qwen2.5 model cards: 0.49B, 1.54B, 3.09B, 7.61B parameters
    assert SHAPES["qwen2.5-0.5b"].params() == pytest.approx(0.494e9, rel=2e-3)
    assert SHAPES["qwen2.5-1.5b"].params() == pytest.approx(1.544e9, rel=2e-3)
    assert SHAPES["qwen2.5-3b"].params() == pytest.approx(3.086e9, rel=2e-3)
    assert QWEN7B.params() == pytest.approx(7.616e9, rel=2e-3)


def test_more_work_never_needs_less_memory():
    base = vram.TrainPlan(finetune="qlora", batch_size=2, max_length=512)
    total = vram.estimate_peak_memory(QWEN7B, base).total
    for change in [dict(batch_size=4), dict(max_length=1024), dict(method="dpo"), dict(lora_r=64),
                   dict(lora_targets="all-linear"), dict(gradient_checkpointing=False), dict(finetune="lora"),
                   dict(finetune="full")]:
        assert vram.estimate_peak_memory(QWEN7B, replace(base, **change)).total > total, change


def test_breakdown_adds_up_and_paged_states_leave_the_allocator():
    est = vram.estimate_peak_memory(QWEN7B, vram.TrainPlan(finetune="full", optimizer="adamw_torch"))
    parts = est.weights + est.lora_params + est.gradients + est.optimizer_states + est.activations + est.logits
    assert est.total == pytest.approx(parts + est.overhead)
    assert est.lora_params == 0 and est.gradients == pytest.approx(QWEN7B.params() * 4 / vram.GIB)
    paged = vram.estimate_peak_memory(QWEN7B, vram.TrainPlan(finetune="full", optimizer="paged_adamw_8bit"))
    assert paged.optimizer_states == 0 and paged.paged_states == pytest.approx(2 * QWEN7B.params() / vram.GIB)
    assert paged.device_total > paged.total + paged.paged_states


def test_fits_common_cards_for_the_target_user():
    qlora = vram.estimate_peak_memory(QWEN7B, vram.TrainPlan(finetune="qlora", batch_size=4, max_length=1024))
    assert vram.fits(qlora, 24.0)
    full = vram.estimate_peak_memory(QWEN7B, vram.TrainPlan(finetune="full", batch_size=1, max_length=512))
    assert not vram.fits(full, 80.0)
    table = vram.fit_table(qlora)
    assert set(vram.CARDS_GIB) <= set(table) and all(table[name] for name in vram.CARDS_GIB)


def test_shape_from_a_model_folder_reads_config_only(tmp_path):
    cfg = dict(DATA["models"]["qwen2.5-1.5b"])
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert vram.load_shape(str(tmp_path)) == SHAPES["qwen2.5-1.5b"]
    llama = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 128, "vocab_size": 1000}
    shape = vram.ModelShape.from_config(llama)
    assert shape.kv_heads == 4 and not shape.qkv_bias and not shape.tied


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="finetune"):
        vram.TrainPlan(finetune="prefix")
    with pytest.raises(ValueError, match="batch_size"):
        vram.TrainPlan(batch_size=0)
    with pytest.raises(ValueError, match="optimizer"):
        vram.TrainPlan(optimizer="lion")
    with pytest.raises(ValueError, match="hidden_size"):
        vram.ModelShape.from_config({"model_type": "bert"})
