"""The preference store: round trips, validation, many writers at once (threads and processes), and SIGKILL mid-run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from lab.chat.prefs import PreferenceStore, Vote
from tests.chat.vote_writer import make_vote

ROOT = Path(__file__).resolve().parents[2]


def _writer(db: Path, tag: str, n: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.chat.vote_writer", str(db), tag, str(n)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_round_trip_keeps_every_field(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    vote = make_vote("s1", 3)
    vote.prefix_b = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "B said"},
                     {"role": "user", "content": "more"}]
    vote_id = store.add(vote)
    got = store.get(vote_id)
    assert got == vote  # the dataclass compares every field, id included
    assert got.prompt("b")[1]["content"] == "B said" and got.prompt("a") == vote.prefix
    assert store.count() == 1 and store.list()[0].id == vote_id


def test_wal_mode_and_default_location(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    store = PreferenceStore()
    assert store.path == tmp_path / "preferences.sqlite"
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_list_newest_first_by_session_and_delete(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite")
    ids = [store.add(make_vote("s1" if i % 2 else "s2", i)) for i in range(6)]
    assert [v.id for v in store.list()] == ids[::-1]
    assert [v.id for v in store.list(limit=2, offset=1)] == ids[-2:-4:-1]
    assert {v.session_id for v in store.list(session_id="s1")} == {"s1"}
    assert store.delete(ids[0]) is True
    assert store.delete(ids[0]) is False
    assert store.get(ids[0]) is None and store.count() == 5


@pytest.mark.parametrize(
    "change, message",
    [
        ({"vote": "left"}, "vote must be one of"),
        ({"prefix": []}, "prefix must be a non-empty list"),
        ({"prefix": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "must end with the user"),
        ({"model_b": ""}, "model_a and model_b"),
    ],
)
def test_invalid_votes_are_refused_with_a_reason(change, message):
    fields = {**make_vote("s", 0).__dict__, **change}
    with pytest.raises(ValueError, match=message):
        Vote(**fields)


def test_winner_undoes_blind_swapping():
    v = make_vote("s", 0)
    for vote, swapped, winner in [("a", False, "a"), ("a", True, "b"), ("b", True, "a"), ("tie", True, None)]:
        v.vote, v.swapped = vote, swapped
        assert v.winner == winner


def test_many_threads_and_processes_voting_at_once_lose_nothing(tmp_path):
    db = tmp_path / "p.sqlite"
    store = PreferenceStore(db)
    n_procs, n_threads, per_writer = 3, 8, 25
    procs = [_writer(db, f"proc{k}", per_writer) for k in range(n_procs)]
    errors = []

    def vote_from_thread(tag):
        try:
            for i in range(per_writer):  # half through the shared store object, half through fresh ones
                (store if i % 2 else PreferenceStore(db)).add(make_vote(tag, i))
        except Exception as exc:  # surfaced below: a lost vote must fail the test, not vanish in a thread
            errors.append(exc)

    threads = [threading.Thread(target=vote_from_thread, args=(f"thread{k}",)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert len(out.splitlines()) == per_writer
    assert not errors
    votes = store.list()
    assert len(votes) == store.count() == (n_procs + n_threads) * per_writer
    per_session = Counter(v.session_id for v in votes)
    assert set(per_session.values()) == {per_writer} and len(per_session) == n_procs + n_threads
    assert len({(v.session_id, v.prefix[-1]["content"]) for v in votes}) == len(votes)  # no duplicates
    assert store.integrity_check() == "ok"


def test_sigkill_mid_run_keeps_every_committed_vote(tmp_path):
    db = tmp_path / "p.sqlite"
    PreferenceStore(db)
    committed: list[int] = []
    for round_ in range(3):  # kill at three different moments
        proc = _writer(db, f"crash{round_}", -1)
        deadline = time.time() + 60
        printed = []
        while len(printed) < 20 + 15 * round_ and time.time() < deadline:
            line = proc.stdout.readline()
            if line:
                printed.append(int(line.split()[0]))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        committed += printed
    store = PreferenceStore(db)  # reopening recovers the WAL
    assert store.integrity_check() == "ok"
    saved = {v.id for v in store.list()}
    assert set(committed) <= saved  # every vote reported as committed survived
    assert store.count() == len(saved) >= len(committed)
    for vote in store.list():  # whatever is there is whole: every row parses back into a valid Vote
        assert vote.response_a.startswith("answer a") and vote.prefix[-1]["role"] == "user"
    store.add(make_vote("after", 0))  # and the file still takes writes
    assert store.count() == len(saved) + 1
