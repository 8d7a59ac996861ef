"""Real training jobs on the embedded model on the CPU: start, poll, stop, resume, crash reports, DPO.

Each job is one to three optimizer steps on ten-row data with max_length 64, so the whole file stays within a few minutes
on two CPU cores. The jobs run through the same child-process runner the app uses.
"""

import json
import os
import signal
import time

import pytest

from lab.train import jobs
from lab.train.config import TrainConfig
from tests.train.conftest import PREFS, QA, write_jsonl


def wait_for(predicate, timeout=600, interval=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not reached")


def wait_ended(run_dir, timeout=900):  # generous: the CI machine's two cores are shared
    return wait_for(lambda: (st := jobs.status(run_dir)).state != "running" and st, timeout)


@pytest.mark.slow
def test_sft_job_polled_stopped_and_resumed(lab_home, tmp_path):
    data_file = write_jsonl(tmp_path / "qa.jsonl", QA)
    cfg = TrainConfig(dataset=str(data_file), finetune="lora", max_steps=3, batch_size=1, max_length=64,
                      gradient_checkpointing=False, save_steps=1, learning_rate=1e-3, warmup_ratio=0.0, name="tiny sft")
    run_dir = jobs.start(cfg)
    assert run_dir.parent == lab_home / "runs" and jobs.status(run_dir).state == "running"
    reader = jobs.MetricsReader(run_dir)
    seen = []
    wait_for(lambda: seen.extend(reader.poll()) or any(r.get("event") == "checkpoint" for r in seen))
    st = jobs.stop(run_dir)
    assert st.state == "stopped"
    with pytest.raises(ProcessLookupError):
        os.killpg(json.loads((run_dir / "pid.json").read_text())["pgid"], 0)
    losses = [r for r in seen if "loss" in r]
    assert losses and losses[0]["step"] >= 1 and losses[0]["peak_mem_gb"] > 0 and "eta_s" in losses[0]
    jobs.resume(run_dir)
    st = wait_ended(run_dir)
    assert st.state == "finished", st.log_tail
    assert "Resuming from" in (run_dir / "log.txt").read_text()
    records = jobs.read_metrics(run_dir)
    assert max(r.get("step", 0) for r in records) == 3
    assert any("tokens_per_s" in r for r in records)
    adapter = json.loads((st.output / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "embedded"
    from lab.models.registry import list_adapters

    assert str(st.output) in [a.path for a in list_adapters("embedded")]
    assert [r.run_id for r in jobs.list_runs()] == [run_dir.name]


def test_refused_data_reports_exit_code_and_rows(lab_home, tmp_path):
    data_file = write_jsonl(tmp_path / "bad.jsonl", QA[:2] + [{"question": "Why?", "answer": ""}])
    run_dir = jobs.start(TrainConfig(dataset=str(data_file), finetune="lora", max_steps=1, max_length=64))
    st = wait_ended(run_dir, timeout=120)
    assert st.state == "failed" and st.returncode == 3
    assert "row 3:" in st.log_tail and "drop_bad_rows" in st.log_tail
    assert "exit code 3" in st.describe()
    with pytest.raises(ValueError, match="only a stopped or failed run"):
        jobs.resume(lab_home / "runs" / "never-started")


def test_crash_shows_exit_code_and_traceback(lab_home, tmp_path):
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    data_file = write_jsonl(tmp_path / "qa.jsonl", QA)
    run_dir = jobs.start(TrainConfig(dataset=str(data_file), model=str(broken), finetune="lora", max_steps=1))
    st = wait_ended(run_dir, timeout=120)
    assert st.state == "failed" and st.returncode == 1
    assert "Traceback" in st.log_tail


def test_killed_worker_is_reported_with_its_signal(lab_home, tmp_path):
    data_file = write_jsonl(tmp_path / "qa.jsonl", QA)
    run_dir = jobs.start(TrainConfig(dataset=str(data_file), finetune="lora", max_steps=50, max_length=64))
    worker = wait_for(lambda: _worker_pid(run_dir), timeout=60, interval=0.2)
    os.kill(worker, signal.SIGKILL)
    st = wait_ended(run_dir, timeout=60)
    assert st.state == "failed" and st.returncode == -9 and "SIGKILL" in st.describe()


def _worker_pid(run_dir):
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                cmd = open(f"/proc/{proc}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if b"lab.train.worker" in cmd and str(run_dir).encode() in cmd:
                return int(proc)
    return None


@pytest.mark.slow
def test_dpo_qlora_job_logs_margins_and_saves_only_the_policy_adapter(lab_home, tmp_path):
    data_file = write_jsonl(tmp_path / "prefs.jsonl", PREFS)
    cfg = TrainConfig(dataset=str(data_file), method="dpo", finetune="qlora", max_steps=1, batch_size=2,
                      max_length=64, learning_rate=1e-3, dpo_beta=0.1)
    run_dir = jobs.start(cfg)
    st = wait_ended(run_dir)
    assert st.state == "finished", st.log_tail
    logged = [r for r in jobs.read_metrics(run_dir) if "loss" in r]
    assert logged and all("rewards/margins" in r and "rewards/accuracies" in r for r in logged)
    assert abs(logged[0]["loss"] - 0.6931) < 0.01  # step 1: policy == reference, so the sigmoid loss is log 2
    assert (st.output / "adapter_model.safetensors").is_file() and not (st.output / "ref").exists()
