"""Runner bookkeeping: chunking, saving as it goes, stop, reload, compare. A fake backend stands in for the model here
only because these tests check the lab's own bookkeeping; test_embedded.py runs the real model."""

import json
import threading

import pytest

from lab.eval import data, results
from lab.eval.runner import EvalConfig, run_eval
from lab.generation.base import Completion


class ScriptedBackend:
    """Answers GSM8K with a fixed number and MMLU by preferring one letter; records what it was asked."""

    name = "scripted"

    def __init__(self, answer="18", letter="B"):
        self.answer, self.letter, self.calls = answer, letter, []

    def chat_prompt(self, messages):
        return "<user>" + messages[-1]["content"] + "<assistant>"

    def generate(self, prompts, params, adapter=None):
        self.calls.append(("generate", len(prompts), params, adapter))
        return [Completion(f" so #### {self.answer}", 10, 5, "stop") for _ in prompts]

    def loglikelihood(self, requests, adapter=None):
        self.calls.append(("loglikelihood", len(requests), None, adapter))
        return [0.0 if cont == f" {self.letter}" else -1.0 for _, cont in requests]


@pytest.fixture
def local_data(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    root = tmp_path / "data"
    (root / "gsm8k").mkdir(parents=True)
    (root / "mmlu").mkdir()
    with open(root / "gsm8k" / "test.jsonl", "w") as f:
        for i in range(10):
            f.write(json.dumps({"question": f"q{i}" + "x" * i, "answer": f"work\n#### {18 if i % 2 else i}"}) + "\n")
    with open(root / "gsm8k" / "train.jsonl", "w") as f:
        for i in range(8):
            f.write(json.dumps({"question": f"t{i}", "answer": f"#### {i}"}) + "\n")
    with open(root / "mmlu" / "test.jsonl", "w") as f:
        for i in range(12):
            subject = ["anatomy", "philosophy"][i % 2]
            f.write(json.dumps({"question": f"m{i}", "subject": subject, "choices": list("wxyz"), "answer": i % 4}) + "\n")
    monkeypatch.setenv("LAB_DATA_DIR", str(root))
    return root


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="protocol for mmlu"):
        EvalConfig(bench="mmlu", protocol="nope")
    with pytest.raises(ValueError, match="limit"):
        EvalConfig(limit=0)
    with pytest.raises(ValueError, match="subjects"):
        EvalConfig(bench="gsm8k", subjects=["anatomy"])


def test_select_by_count_seed_and_subject(local_data):
    rows = data.load_split("mmlu")
    assert [r["id"] for r in data.select(rows, 3)] == [0, 1, 2]
    seeded = data.select(rows, 4, seed=3)
    assert seeded == data.select(rows, 4, seed=3) and len(seeded) == 4
    assert {r["subject"] for r in data.select(rows, None, subjects=["anatomy"])} == {"anatomy"}
    with pytest.raises(ValueError, match="not in the data"):
        data.select(rows, 3, subjects=["astrology"])


def test_gsm8k_run_saves_records_and_summary(local_data):
    backend = ScriptedBackend()
    cfg = EvalConfig(bench="gsm8k", limit=10, chunk_size=4)
    updates = list(run_eval(cfg, backend))
    assert [u.done for u in updates] == [4, 8, 10, 10] and updates[-1].finished
    assert [c[1] for c in backend.calls] == [4, 4, 2]  # batched calls, not one per question
    assert backend.calls[0][2].temperature == 0.0 and "Question:" in backend.calls[0][2].stop
    summary, records = results.load_run(updates[-1].run_id)
    assert summary["status"] == "complete" and summary["chat_template"] is False
    assert summary["score"]["correct"] == 5 and summary["score_flexible"]["correct"] == 5
    lengths = [len(r["prompt"]) for r in records]
    assert lengths == sorted(lengths, reverse=True)  # longest prompts first
    assert sorted(r["id"] for r in records) == list(range(10))


def test_mmlu_loglikelihood_run_with_categories_and_chat_template(local_data):
    cfg = EvalConfig(bench="mmlu", protocol="harness-0shot", limit=None, chat_template=True)
    final = list(run_eval(cfg, ScriptedBackend(letter="B")))[-1]
    s = final.summary
    assert s["score"]["correct"] == 3 and s["chat_template"] is True  # answers 1, 5, 9 are B
    assert {g["group"] for g in s["per_category"]} == {"STEM", "humanities"}
    _, records = results.load_run(final.run_id)
    assert records[0]["prompt"].startswith("<user>The following are multiple choice questions")


def test_stop_keeps_what_is_done(local_data):
    stop = threading.Event()
    gen = run_eval(EvalConfig(bench="gsm8k", limit=10, chunk_size=3), ScriptedBackend(), stop)
    first = next(gen)
    stop.set()
    rest = list(gen)
    assert first.done == 3 and rest[-1].finished and rest[-1].summary["status"] == "stopped"
    assert len(results.load_run(first.run_id)[1]) == 3


def test_closing_the_generator_keeps_what_is_done(local_data):
    gen = run_eval(EvalConfig(bench="gsm8k", limit=10, chunk_size=5), ScriptedBackend())
    run_id = next(gen).run_id
    gen.close()
    summary, records = results.load_run(run_id)
    assert summary["status"] == "stopped" and len(records) == 5


def test_compare_base_and_adapter(local_data):
    base = list(run_eval(EvalConfig(bench="gsm8k", limit=10), ScriptedBackend(answer="18")))[-1]
    other = list(run_eval(EvalConfig(bench="gsm8k", limit=10), ScriptedBackend(answer="0")))[-1]
    cmp = results.compare_runs(base.run_id, other.run_id)
    assert cmp["fixed"] == [0] and cmp["broken"] == [1, 3, 5, 7, 9] and cmp["n_paired"] == 10
    assert cmp["mcnemar_p"] == pytest.approx(2 * (1 + 6) / 64) and cmp["same_prompts"]
    assert [s["run_id"] for s in results.list_runs()] == [other.run_id, base.run_id]
    mmlu = list(run_eval(EvalConfig(bench="mmlu", protocol="harness-0shot", limit=2), ScriptedBackend()))[-1]
    with pytest.raises(ValueError, match="not comparable"):
        results.compare_runs(base.run_id, mmlu.run_id)


def test_cli_builds_the_config():
    from lab.eval.__main__ import config_from, parse_args

    args = parse_args(["--bench", "mmlu", "--limit", "0", "--subjects", "anatomy,virology", "--chat-template", "on",
                       "--adapter", "/x"])
    cfg = config_from(args, args.adapter)
    assert (cfg.protocol, cfg.limit, cfg.subjects, cfg.chat_template, cfg.adapter) == (
        "harness-0shot", None, ["anatomy", "virology"], True, "/x")
    assert config_from(parse_args([]), None).protocol == "harness-5shot"


KILLED_CHILD = """
import sys, time
from lab.eval.runner import EvalConfig, run_eval
from lab.generation.base import Completion

class Backend:
    name = "scripted"
    def chat_prompt(self, messages):
        return messages[-1]["content"]
    def generate(self, prompts, params, adapter=None):
        return [Completion(" #### 18", 10, 5, "stop") for _ in prompts]

gen = run_eval(EvalConfig(bench="gsm8k", limit=10, chunk_size=3), Backend())
print(next(gen).run_id, flush=True)
time.sleep(600)
"""


def test_a_killed_run_reads_back_as_interrupted_with_its_saved_questions(local_data):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD], stdout=subprocess.PIPE, text=True, cwd=root,
                             env={**os.environ, "PYTHONPATH": str(root)})
    run_id = child.stdout.readline().strip()
    assert results.load_run(run_id)[0]["status"] == "running"  # its process is alive
    child.send_signal(signal.SIGKILL)
    child.wait()
    summary, records = results.load_run(run_id)
    assert summary["status"] == "interrupted" and len(records) == 3
    assert [s["status"] for s in results.list_runs()] == ["interrupted"]
