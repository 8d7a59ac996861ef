"""Tiny real adapters for tests: a peft LoRA on the embedded model with non-zero B so it changes the outputs."""

from __future__ import annotations

from pathlib import Path


def make_lora(base_path: str, out: Path, base_name: str = "embedded", seed: int = 0, scale: float = 0.05) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:  # peft initialises B to zero (a no-op adapter); make it act
                param.normal_(0, scale)
    peft_model.save_pretrained(out)
    cfg = out / "adapter_config.json"
    import json

    data = json.loads(cfg.read_text())
    data["base_model_name_or_path"] = base_name
    cfg.write_text(json.dumps(data))
    return out
