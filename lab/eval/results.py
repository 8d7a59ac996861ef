"""Saved eval runs: one folder per run under LAB_HOME/evals/<run_id>/, reloadable and comparable.

`summary.json` holds the config, the protocol (and whether the chat template was used), where the data and the
few-shot examples came from, the score with its Wilson interval, per-subject and per-category scores and the speed;
`records.jsonl` holds one line per question, appended chunk by chunk so a stopped or crashed run keeps what it scored.
`compare_runs` pairs two runs on their common questions: flips (fixed / broken), McNemar's exact test and a paired
bootstrap of the difference (`stats`). A run records the process that runs it; a "running" run whose process is gone
(the app was killed mid-run) reads back as "interrupted", with the questions it saved.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lab.eval import stats
from lab.paths import evals_dir

SUMMARY, RECORDS = "summary.json", "records.jsonl"


@dataclass
class EvalProgress:
    """What a run has done so far; the last one has `finished` set and the saved summary."""

    run_id: str
    done: int  # questions scored
    total: int  # questions planned
    correct: int
    accuracy: float
    tokens_per_s: float  # generated tokens per second (scored tokens per second for log-likelihood protocols)
    questions_per_s: float
    records: list[dict]  # the records scored since the previous progress
    finished: bool = False
    summary: dict | None = None


def new_run_id(config: dict) -> str:
    """Time-ordered, readable and unique: 20261124-003512-123-gsm8k-harness-5shot-base."""
    now = datetime.now(timezone.utc)
    tag = Path(config["adapter"]).name if config.get("adapter") else "base"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in tag)[:40]
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}-{config['bench']}-{config['protocol']}-{safe}"


def score_block(records: list[dict], field: str = "correct") -> dict:
    """Accuracy of `field` over the records with its 95% Wilson interval."""
    k, n = sum(bool(r.get(field)) for r in records), len(records)
    low, high = stats.wilson_interval(k, n)
    return {"correct": k, "n": n, "accuracy": k / n if n else 0.0, "ci95": [low, high]}


class RunWriter:
    """Appends records and keeps summary.json current while a run goes on."""

    def __init__(self, folder: Path, summary: dict):
        self.folder, self.summary, self.records = folder, summary, []
        self.t0 = time.perf_counter()
        self.tokens = 0
        self._save()

    @classmethod
    def start(cls, config: dict, spec, chat_template: bool, total: int, facts: dict, backend) -> "RunWriter":
        run_id = new_run_id(config)
        folder = evals_dir() / run_id
        folder.mkdir(parents=True)
        (folder / RECORDS).touch()
        summary = {
            "run_id": run_id, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "status": "running", "pid": os.getpid(), "config": config, "protocol": spec.name, "protocol_summary": spec.summary,
            "kind": spec.kind, "chat_template": chat_template, "backend": getattr(backend, "name", type(backend).__name__),
            "total": total, **facts,
        }
        return cls(folder, summary)

    @property
    def run_id(self) -> str:
        return self.summary["run_id"]

    def add(self, new: list[dict]) -> None:
        self.records.extend(new)
        key = "completion_tokens" if self.summary["kind"] == "generate" else "prompt_tokens"
        self.tokens += sum(r.get(key, 0) for r in new)
        with open(self.folder / RECORDS, "a") as f:
            for r in new:
                f.write(json.dumps(r) + "\n")
        self._update()
        self._save()

    def _update(self) -> None:
        elapsed = time.perf_counter() - self.t0
        s = self.summary
        s.update(done=len(self.records), elapsed_s=round(elapsed, 3), score=score_block(self.records))
        s["questions_per_s"] = len(self.records) / elapsed if elapsed > 0 else 0.0
        s["tokens_per_s"] = self.tokens / elapsed if elapsed > 0 else 0.0
        s["prompt_tokens"] = sum(r.get("prompt_tokens", 0) for r in self.records)
        s["completion_tokens"] = sum(r.get("completion_tokens", 0) for r in self.records)
        if any("correct_flexible" in r for r in self.records):
            s["score_flexible"] = score_block(self.records, "correct_flexible")
        if any("subject" in r for r in self.records):
            s["per_subject"] = stats.group_accuracy(self.records, lambda r: r["subject"])
            s["per_category"] = stats.group_accuracy(self.records, lambda r: r["category"])

    def _save(self) -> None:
        tmp = self.folder / (SUMMARY + ".tmp")
        tmp.write_text(json.dumps(self.summary, indent=1))
        tmp.replace(self.folder / SUMMARY)

    def progress(self, new: list[dict], finished: bool = False):
        s = self.summary
        score = s.get("score") or score_block([])
        return EvalProgress(
            run_id=self.run_id, done=len(self.records), total=s["total"], correct=score["correct"],
            accuracy=score["accuracy"], tokens_per_s=s.get("tokens_per_s", 0.0),
            questions_per_s=s.get("questions_per_s", 0.0), records=new, finished=finished,
            summary=s if finished else None,
        )

    def finish(self, status: str) -> None:
        self._update()
        self.summary["status"] = status
        self._save()


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def read_summary(path: Path) -> dict:
    """A summary.json, with a "running" status whose process has died shown as "interrupted"."""
    summary = json.loads(path.read_text())
    if summary.get("status") == "running" and not _alive(summary.get("pid")):
        summary["status"] = "interrupted"
    return summary


def list_runs(home: Path | None = None) -> list[dict]:
    """Summaries of every saved run, newest first (unreadable folders are skipped)."""
    root = home or evals_dir()
    runs = []
    for path in root.glob(f"*/{SUMMARY}"):
        try:
            runs.append(read_summary(path))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(runs, key=lambda s: s.get("run_id", ""), reverse=True)


def load_run(run_id: str, home: Path | None = None) -> tuple[dict, list[dict]]:
    """A run's summary and its per-question records."""
    folder = (home or evals_dir()) / run_id
    if not (folder / SUMMARY).exists():
        raise FileNotFoundError(f"no eval run {run_id!r} under {folder.parent}")
    summary = read_summary(folder / SUMMARY)
    lines = (folder / RECORDS).read_text().splitlines() if (folder / RECORDS).exists() else []
    return summary, [json.loads(line) for line in lines if line.strip()]


def compare_runs(a: str, b: str, field: str = "correct", seed: int = 0, home: Path | None = None) -> dict:
    """Run b against run a on their common questions: both scores, flips, McNemar p and a paired bootstrap."""
    (sa, ra), (sb, rb) = load_run(a, home), load_run(b, home)
    for key in ("bench", "protocol"):
        if sa["config"][key] != sb["config"][key]:
            raise ValueError(f"runs differ in {key} ({sa['config'][key]} vs {sb['config'][key]}): not comparable")
    by_a, by_b = {r["id"]: r for r in ra}, {r["id"]: r for r in rb}
    common = sorted(set(by_a) & set(by_b))
    xa = [bool(by_a[i].get(field)) for i in common]
    xb = [bool(by_b[i].get(field)) for i in common]
    fixed = [i for i, x, y in zip(common, xa, xb) if not x and y]
    broken = [i for i, x, y in zip(common, xa, xb) if x and not y]
    boot = stats.paired_bootstrap(xa, xb, np.random.default_rng(seed))
    return {
        "run_a": a, "run_b": b, "field": field, "n_paired": len(common),
        "a": score_block([by_a[i] for i in common], field), "b": score_block([by_b[i] for i in common], field),
        "fixed": fixed, "broken": broken, "mcnemar_p": stats.mcnemar_exact(len(fixed), len(broken)),
        "bootstrap": boot, "same_prompts": all(by_a[i]["prompt"] == by_b[i]["prompt"] for i in common),
    }
