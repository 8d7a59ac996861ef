"""Exports: trl's conversational preference and unpaired formats, with swapped sides resolved and ties left out."""

from __future__ import annotations

import json

import pytest

from lab.chat.export import both_bad_rows, export_votes, preference_rows, to_dataset
from lab.chat.prefs import PreferenceStore, Vote

PREFIX = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Name a colour."}]


def vote(v: str, swapped: bool = False, **kw) -> Vote:
    return Vote(prefix=PREFIX, response_a="Red.", response_b="Blue is a colour.", model_a="embedded",
                model_b="embedded", adapter_b="/x/adapters/kind", vote=v, swapped=swapped, blind=swapped, **kw)


def test_preference_rows_resolve_swapped_sides_and_skip_ties():
    rows = preference_rows([vote("a"), vote("a", swapped=True), vote("b"), vote("tie"), vote("both_bad")])
    assert len(rows) == 3
    assert rows[0] == {
        "prompt": PREFIX,
        "chosen": [{"role": "assistant", "content": "Red."}],
        "rejected": [{"role": "assistant", "content": "Blue is a colour."}],
    }
    # left pane won, but the left pane showed configuration B: B's answer is chosen
    assert rows[1]["chosen"][0]["content"] == "Blue is a colour."
    assert rows[2]["chosen"][0]["content"] == "Blue is a colour."


def test_multi_turn_prompt_is_the_winners_conversation():
    b_prefix = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "B's hello"},
                {"role": "user", "content": "Again"}]
    a_prefix = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "A's hello"},
                {"role": "user", "content": "Again"}]
    v = Vote(prefix=a_prefix, prefix_b=b_prefix, response_a="x", response_b="y", model_a="m", model_b="m", vote="b")
    (row,) = preference_rows([v])
    assert row["prompt"] == b_prefix and row["chosen"][0]["content"] == "y"
    rows = both_bad_rows([Vote(**{**v.__dict__, "vote": "both_bad"})])
    assert [r["prompt"] for r in rows] == [a_prefix, b_prefix]


def test_both_bad_becomes_two_unpaired_false_rows():
    rows = both_bad_rows([vote("a"), vote("both_bad", swapped=True), vote("tie")])
    assert rows == [
        {"prompt": PREFIX, "completion": [{"role": "assistant", "content": "Red."}], "label": False},
        {"prompt": PREFIX, "completion": [{"role": "assistant", "content": "Blue is a colour."}], "label": False},
    ]


def test_export_files_are_jsonl_in_separate_files(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    for v in ("a", "tie", "both_bad", "b"):
        store.add(vote(v))
    paths = export_votes(store, tmp_path / "out")
    pref = [json.loads(line) for line in paths.preferences.read_text(encoding="utf-8").splitlines()]
    bad = [json.loads(line) for line in paths.both_bad.read_text(encoding="utf-8").splitlines()]
    assert paths.preferences != paths.both_bad
    assert (paths.n_preferences, paths.n_both_bad) == (2, 2) == (len(pref), len(bad))
    assert [r["chosen"][0]["content"] for r in pref] == ["Red.", "Blue is a colour."]  # oldest vote first
    assert all(set(r) == {"prompt", "chosen", "rejected"} for r in pref)
    assert all(set(r) == {"prompt", "completion", "label"} and r["label"] is False for r in bad)


def test_dataset_export_is_conversational_for_trl():
    from trl.data_utils import is_conversational

    ds = to_dataset(preference_rows([vote("a"), vote("b")]))
    assert ds.column_names == ["prompt", "chosen", "rejected"] and len(ds) == 2
    assert is_conversational(ds[0]) and ds[0]["prompt"] == PREFIX
    unpaired = to_dataset(both_bad_rows([vote("both_bad")]))
    assert is_conversational(unpaired[0]) and unpaired["label"] == [False, False]
    with pytest.raises(ValueError, match="no rows"):
        to_dataset([])
