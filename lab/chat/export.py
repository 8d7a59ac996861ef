"""Turn arena votes into training data in trl's own dataset formats, ready for DPO (pairs) and KTO-style (unpaired).

Formats (https://huggingface.co/docs/trl/dataset_formats):
- conversational preference: `{"prompt": [messages up to the last user turn], "chosen": [{"role": "assistant", ...}],
  "rejected": [{"role": "assistant", ...}]}`. trl's DPOTrainer applies the chat template itself, so the export keeps
  messages rather than rendered text and works for any base model's template.
- conversational unpaired preference: `{"prompt": [...], "completion": [assistant message], "label": bool}`.

Which votes go where: 'a'/'b' votes become one preference row each, with blind-mode swapping undone (`Vote.winner`);
ties carry no preference and are left out; 'both bad' says each answer was undesirable, so each side becomes one
unpaired row with `label: false`, in a separate file, since DPO cannot use it. In multi-turn rounds where the panes'
earlier answers differ, a preference row's prompt is the winner's conversation (the one its answer continues), and
each unpaired row keeps the conversation its own answer continues.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from lab.chat.prefs import PreferenceStore, Vote


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _prompt(vote: Vote, side: str) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in vote.prompt(side)]


def preference_rows(votes: Iterable[Vote]) -> list[dict]:
    """One trl conversational preference row per decisive vote (oldest first); ties and 'both bad' are skipped."""
    rows = []
    for vote in sorted(votes, key=lambda v: (v.created, v.id or 0)):
        winner = vote.winner
        if winner is None:
            continue
        loser = "b" if winner == "a" else "a"
        rows.append(
            {"prompt": _prompt(vote, winner), "chosen": _assistant(vote.response(winner)), "rejected": _assistant(vote.response(loser))}
        )
    return rows


def both_bad_rows(votes: Iterable[Vote]) -> list[dict]:
    """Two trl unpaired rows (`label: false`) per 'both bad' vote: one for each side's answer."""
    rows = []
    for vote in sorted(votes, key=lambda v: (v.created, v.id or 0)):
        if vote.vote != "both_bad":
            continue
        for side in ("a", "b"):
            rows.append({"prompt": _prompt(vote, side), "completion": _assistant(vote.response(side)), "label": False})
    return rows


def write_jsonl(rows: Iterable[dict], path: str | Path) -> Path:
    """Write rows as JSON lines (UTF-8, one object per line), replacing the file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def to_dataset(rows: list[dict]):
    """A `datasets.Dataset` of the rows (message lists become lists of structs, as trl expects)."""
    from datasets import Dataset

    if not rows:
        raise ValueError("no rows to export: vote 'A better' or 'B better' (or 'both bad') at least once first")
    return Dataset.from_list(rows)


@dataclass
class ExportPaths:
    """Files written by `export_votes` and how many rows each holds."""

    preferences: Path  # trl conversational preference JSONL (DPO)
    both_bad: Path  # trl conversational unpaired JSONL, label false
    n_preferences: int
    n_both_bad: int


def export_votes(store: PreferenceStore, folder: str | Path) -> ExportPaths:
    """Write both export files for every vote in the store into `folder`."""
    votes = store.list()
    folder = Path(folder)
    pref, bad = preference_rows(votes), both_bad_rows(votes)
    return ExportPaths(
        preferences=write_jsonl(pref, folder / "preferences.jsonl"),
        both_bad=write_jsonl(bad, folder / "both_bad_unpaired.jsonl"),
        n_preferences=len(pref),
        n_both_bad=len(bad),
    )
