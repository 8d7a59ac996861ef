"""TrainConfig: validation names the field and range; JSON round trip; unknown keys are refused."""

import pytest

from lab.train.config import TrainConfig


def test_defaults_are_the_qlora_recipe():
    cfg = TrainConfig(dataset="x.jsonl")
    assert (cfg.method, cfg.finetune, cfg.lora_targets) == ("sft", "qlora", "attention")
    assert cfg.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert cfg.uses_lora


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"method": "ppo"}, ["method", "'sft'", "'dpo'"]),
        ({"finetune": "int8"}, ["finetune", "'qlora'"]),
        ({"lora_r": 0}, ["lora_r", "[1, 1024]"]),
        ({"lora_r": 2.5}, ["lora_r", "integer"]),
        ({"lora_dropout": 1.5}, ["lora_dropout", "0.9"]),
        ({"learning_rate": 0}, ["learning_rate", "(0, 1)"]),
        ({"max_length": 8}, ["max_length", "16"]),
        ({"batch_size": True}, ["batch_size"]),
        ({"dpo_beta": -1}, ["dpo_beta"]),
        ({"dpo_loss": "magic"}, ["dpo_loss", "sigmoid"]),
        ({"lora_targets": "mlp"}, ["lora_targets", "all-linear"]),
        ({"dataset": " "}, ["dataset"]),
        ({"packing": True, "method": "dpo"}, ["packing", "sft"]),
        ({"num_epochs": 0}, ["num_epochs"]),
        ({"base_adapter": "/nonexistent"}, ["base_adapter", "adapter_config.json"]),
        ({"base_adapter": "/x", "finetune": "full"}, ["base_adapter", "lora"]),
        ({"data_format": "csvish"}, ["data_format", "instruction"]),
    ],
)
def test_bad_values_name_the_field(changes, words):
    with pytest.raises(ValueError) as err:
        TrainConfig(**{"dataset": "x.jsonl", **changes})
    for w in words:
        assert w in str(err.value)


def test_json_round_trip(tmp_path):
    cfg = TrainConfig(dataset="d.jsonl", method="dpo", finetune="lora", lora_targets="all-linear", dpo_beta=0.3)
    path = tmp_path / "c.json"
    cfg.to_json(path)
    assert TrainConfig.from_json(path) == cfg
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert cfg.target_modules == "all-linear"


def test_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="lora_rank"):
        TrainConfig.from_dict({"dataset": "d.jsonl", "lora_rank": 8})
