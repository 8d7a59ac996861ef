"""`python -m lab.train`: flags override the JSON config, --check validates and previews without training."""

import json

from lab.train.__main__ import build_config, format_record, main, parse_args
from tests.train.conftest import QA, write_jsonl


def test_flags_override_the_config_file(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"dataset": "a.jsonl", "lora_r": 8, "method": "dpo"}))
    cfg = build_config(parse_args(["--config", str(path), "--lora-r", "4", "--no-gradient-checkpointing"]))
    assert (cfg.dataset, cfg.lora_r, cfg.method, cfg.gradient_checkpointing) == ("a.jsonl", 4, "dpo", False)


def test_check_previews_good_data_and_fails_on_bad(lab_home, tmp_path, capsys):
    good = write_jsonl(tmp_path / "good.jsonl", QA[:3])
    assert main(["--dataset", str(good), "--max-length", "64", "--check"]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out and "[[1 + 2 = 3. #### 3" in out
    bad = write_jsonl(tmp_path / "bad.jsonl", QA[:2] + [{"question": "x"}])
    assert main(["--dataset", str(bad), "--check"]) == 1
    assert "row 3: missing field(s) ['answer']" in capsys.readouterr().out


def test_progress_line():
    line = format_record({"step": 3, "max_steps": 10, "loss": 1.23456, "tokens_per_s": 812.4, "eta_s": 40})
    assert line == "step 3/10  loss 1.2346  812 tok/s  ETA 40s"
