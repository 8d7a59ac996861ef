"""The exported preference file goes through trl 1.16's own DPO data path with the embedded model's tokenizer.

DPOTrainer.__init__ runs `_prepare_dataset` (prompt extraction check, chat template, `tokenize_fn` splitting
prompt/chosen/rejected ids) and its `DataCollatorForPreference` builds the batches; both are exercised here on the
JSONL file as the training tab will read it (`datasets.load_dataset("json", ...)`).
"""

from __future__ import annotations

import pytest

from lab.chat.export import export_votes
from lab.chat.prefs import PreferenceStore, Vote

PREFIX = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Name a colour."}]


@pytest.mark.slow
def test_exported_preferences_tokenize_through_trl_dpo(tmp_path):
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from lab.models.registry import resolve_model

    store = PreferenceStore(tmp_path / "p.sqlite")
    for vote, swapped in [("a", False), ("a", True), ("b", False), ("tie", False), ("both_bad", True)]:
        store.add(Vote(prefix=PREFIX, response_a="Red.", response_b="Blue is a colour.", model_a="embedded",
                       model_b="embedded", vote=vote, swapped=swapped, blind=swapped))
    paths = export_votes(store, tmp_path / "export")
    dataset = load_dataset("json", data_files=str(paths.preferences), split="train")
    assert len(dataset) == 3

    checkpoint = resolve_model("embedded")
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    args = DPOConfig(output_dir=str(tmp_path / "dpo"), per_device_train_batch_size=3, max_length=128,
                     use_cpu=True, report_to=[], dataset_num_proc=None)
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))

    rows = trainer.train_dataset
    assert len(rows) == 3
    prompt_text = tokenizer.decode(rows[0]["prompt_ids"])
    assert prompt_text.endswith("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n")
    assert "Be kind." in prompt_text
    chosen = [tokenizer.decode(r["chosen_ids"], skip_special_tokens=True).strip() for r in rows]
    rejected = [tokenizer.decode(r["rejected_ids"], skip_special_tokens=True).strip() for r in rows]
    assert chosen == ["Red.", "Blue is a colour.", "Blue is a colour."]  # second vote: left pane showed B
    assert rejected == ["Blue is a colour.", "Red.", "Red."]

    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["input_ids"].shape[0] == 6  # chosen half then rejected half
    assert batch["completion_mask"].sum() > 0
