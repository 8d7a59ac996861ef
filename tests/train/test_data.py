"""Training data: format detection, row-numbered validation of broken files, conversion for SFT/DPO, loss preview."""

import json

import pytest

from lab.train import data
from tests.train.conftest import PREFS, QA, assistant, user, write_jsonl


def test_formats_are_recognised():
    assert data.detect_format(QA) == "qa"
    assert data.detect_format([{"instruction": "a", "input": "", "output": "b"}]) == "instruction"
    assert data.detect_format([{"messages": user("a") + assistant("b")}]) == "messages"
    assert data.detect_format(PREFS) == "preference"
    assert data.detect_format([{"prompt": "a", "completion": "b", "label": False}]) == "unpaired"
    assert data.detect_format([{"prompt": "a", "completion": "b"}]) == "prompt_completion"
    with pytest.raises(ValueError, match="could not recognise"):
        data.detect_format([{"text": "hello"}])


def test_broken_file_lists_every_problem_with_its_row(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"instruction": "Say hi", "input": "", "output": "hi"},  # 1: fine
        {"instruction": "Say hi", "output": "   "},  # 2: empty answer
        "{not json",  # 3
        {"instruction": "Say hi"},  # 4: missing output
        {"instruction": "Long " * 200, "output": "ok"},  # 5: too long
        {"instruction": "Say hi", "output": "hi"},  # 6: fine
    ])
    rows = data.load_rows(str(path))
    report = data.validate(rows, tokenizer=tokenizer, max_length=64)
    found = {p.row: p.message for p in report.problems}
    assert sorted(found) == [2, 3, 4, 5]
    assert "empty" in found[2] and "invalid JSON" in found[3] and "output" in found[4]
    assert "longer than max_length 64" in found[5]
    assert "row 3:" in report.summary()
    examples, report = data.prepare(rows, "sft", tokenizer=tokenizer, max_length=64)
    assert len(examples) == 2 and report.bad_rows == {2, 3, 4, 5}


def test_wrong_roles_are_reported():
    rows = [
        {"messages": user("hi") + assistant("hello")},
        {"messages": user("hi") + [{"role": "bot", "content": "x"}]},
        {"messages": user("hi")},
        {"messages": assistant("hello") + user("hi") + assistant("x")},
        {"messages": user("a") + [{"role": "system", "content": "late"}] + assistant("b")},
    ]
    found = {p.row: p.message for p in data.validate(rows).problems}
    assert sorted(found) == [2, 3, 4, 5]
    assert "'bot'" in found[2] and "end with a 'assistant'" in found[3]
    assert "start with a 'user'" in found[4] and "system" in found[5]


def test_arena_exports_feed_dpo_and_sft(tmp_path):
    path = write_jsonl(tmp_path / "prefs.jsonl", PREFS + [{**PREFS[0], "rejected": PREFS[0]["chosen"]}])
    examples, report = data.prepare(data.load_rows(str(path)), "dpo")
    assert len(examples) == 4 and [p.row for p in report.problems] == [5]
    assert examples[0] == PREFS[0]
    sft, _ = data.prepare(PREFS, "sft")
    assert sft[0] == {"prompt": PREFS[0]["prompt"], "completion": PREFS[0]["chosen"]}
    unpaired = [
        {"prompt": user("q"), "completion": assistant("good"), "label": True},
        {"prompt": user("q"), "completion": assistant("bad"), "label": False},
        {"prompt": user("r"), "completion": assistant("bad too"), "label": False},
    ]
    pairs, report = data.prepare(unpaired, "dpo")
    assert pairs == [{"prompt": user("q"), "chosen": assistant("good"), "rejected": assistant("bad")}]
    assert [p.row for p in report.problems] == [3] and "pair" in report.problems[0].message
    sft, report = data.prepare(unpaired, "sft")
    assert len(sft) == 1 and [p.row for p in report.problems] == [2, 3]


def test_json_and_parquet_files_load(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps(QA[:3]))
    assert data.load_rows(str(tmp_path / "d.json")) == QA[:3]
    import datasets

    datasets.Dataset.from_list(QA[:3]).to_parquet(str(tmp_path / "d.parquet"))
    assert data.load_rows(str(tmp_path / "d.parquet"), limit=2) == QA[:2]


def test_preview_marks_the_answer_tokens_as_loss(tokenizer):
    examples, _ = data.prepare(QA[:2], "sft")
    shown = data.preview(examples, tokenizer, n=1)
    assert len(shown) == 1
    segments = shown[0].segments
    assert [loss for _, loss in segments] == [False, True]
    assert "What is 1 plus 2?" in segments[0][0] and segments[0][0].rstrip().endswith("assistant")
    assert segments[1][0].startswith("1 + 2 = 3. #### 3")
    assert shown[0].n_loss_tokens == len(tokenizer(segments[1][0])["input_ids"])
    cut = data.preview(examples, tokenizer, n=1, max_length=shown[0].n_tokens - 3)[0]
    assert cut.n_loss_tokens == shown[0].n_loss_tokens - 3 and "[cut at max_length]" in cut.segments[-1][0]
    pairs = data.preview(PREFS, tokenizer, n=1)
    assert [p.title for p in pairs] == ["example 1 (chosen)", "example 1 (rejected)"]
