"""Benchmark data: MMLU and GSM8K from the hub, from local jsonl/parquet files, or from the bundled-offline copies.

A source is one of:
- "auto": the local copies under the shared data folder when present (`LAB_DATA_DIR`, default `<repo>/../shared/data`,
  laid out as `mmlu/test.jsonl`, `gsm8k/test.jsonl`, `gsm8k/train.jsonl`), else the hub;
- a hub name, `cais/mmlu` (config "all") or `openai/gsm8k` (config "main"), loaded through `datasets`;
- a local .jsonl/.json/.parquet file with the hub's columns (MMLU: question, subject, choices, answer 0-3;
  GSM8K: question, answer ending in "#### N") or a folder holding `test.*` (and `train.*` / `dev.*`).
Rows come back as plain dicts with an added `id`: the row's position in the full split, so the same question keeps the
same id in every subset and base-vs-adapter comparisons can pair questions across runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HUB = {"mmlu": ("cais/mmlu", "all"), "gsm8k": ("openai/gsm8k", "main")}
SUFFIXES = (".jsonl", ".json", ".parquet")


def default_data_dir() -> Path:
    """The shared offline copies: `LAB_DATA_DIR` or `<repo>/../shared/data`."""
    env = os.environ.get("LAB_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def resolve_source(bench: str, source: str = "auto") -> str:
    """'auto' -> the local folder for `bench` when it exists, else its hub name; anything else is returned as is."""
    if bench not in HUB:
        raise ValueError(f"bench must be one of {sorted(HUB)}; got {bench!r}")
    if source != "auto":
        return source
    local = default_data_dir() / bench
    return str(local) if (local / "test.jsonl").exists() else HUB[bench][0]


def _local_file(source: str, split: str) -> Path | None:
    path = Path(source).expanduser()
    if path.is_file():
        return path if split == "test" else None
    if path.is_dir():
        for suffix in SUFFIXES:
            if (path / f"{split}{suffix}").exists():
                return path / f"{split}{suffix}"
        return None
    raise FileNotFoundError(f"data source {source!r} is neither a hub name nor an existing file or folder")


def _is_local(source: str) -> bool:
    return Path(source).expanduser().exists() or Path(source).suffix in SUFFIXES or source.startswith(("/", "."))


def load_split(bench: str, source: str = "auto", split: str = "test") -> list[dict] | None:
    """All rows of one split as dicts with `id`; None when a local source has no such split (e.g. no MMLU dev)."""
    from datasets import load_dataset

    source = resolve_source(bench, source)
    if _is_local(source):
        file = _local_file(source, split)
        if file is None:
            return None
        kind = "parquet" if file.suffix == ".parquet" else "json"
        ds = load_dataset(kind, data_files=str(file), split="train")
    else:
        name, config = HUB[bench]
        ds = load_dataset(source, config if source == name else None, split=split)
    rows = [dict(row, id=i) for i, row in enumerate(ds)]
    _check_columns(bench, rows, source)
    return rows


def _check_columns(bench: str, rows: list[dict], source: str) -> None:
    need = {"mmlu": {"question", "subject", "choices", "answer"}, "gsm8k": {"question", "answer"}}[bench]
    if rows and not need <= set(rows[0]):
        raise ValueError(f"{bench} data from {source!r} needs columns {sorted(need)}; found {sorted(rows[0])}")


def select(rows: list[dict], limit: int | None = None, seed: int | None = None, subjects=None) -> list[dict]:
    """A subset: rows of the given subjects, then `limit` of them (the first ones, or a seeded sample kept in order)."""
    if subjects:
        wanted = set(subjects)
        unknown = wanted - {r.get("subject") for r in rows}
        if unknown:
            raise ValueError(f"subjects not in the data: {sorted(unknown)}")
        rows = [r for r in rows if r.get("subject") in wanted]
    if limit is None or limit >= len(rows):
        return list(rows)
    if seed is None:
        return list(rows[:limit])
    picked = np.random.default_rng(seed).choice(len(rows), size=limit, replace=False)
    return [rows[i] for i in sorted(picked)]


def subjects_of(rows: list[dict]) -> list[str]:
    """Sorted distinct subjects (MMLU)."""
    return sorted({r["subject"] for r in rows if "subject" in r})
