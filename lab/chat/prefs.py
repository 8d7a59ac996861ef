"""The preference store: every arena vote, kept in SQLite as the database of record.

Why SQLite in WAL mode: many browsers (threads of one app, or several processes) vote at once, and a crash must never
lose a committed vote. WAL lets readers run beside the one writer; `busy_timeout` makes a writer wait for the lock
instead of failing; each vote is one `BEGIN IMMEDIATE ... COMMIT` transaction with `synchronous=FULL`, so a vote is
either wholly on disk or absent (https://www.sqlite.org/wal.html, https://www.sqlite.org/atomiccommit.html).
Every operation opens its own short-lived connection, which is what makes the store safe to share between threads.

Multi-turn: each pane continues its own conversation, so earlier answers differ; `prefix` is what pane A's
configuration answered and `prefix_b` what B's answered when that differs (NULL when both saw the same messages).

Sides: `model_a`, `adapter_a`, `params_a`, `response_a` belong to pane A's *configuration*; blind mode may show that
configuration on the right, which `swapped` records. `vote` names the side the user clicked as displayed
('a' = the left pane, 'b' = the right pane, 'tie', 'both_bad'); `Vote.winner` resolves it to a configuration.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

VOTES = ("a", "b", "tie", "both_bad")
SCHEMA_VERSION = 1
_COLUMNS = (
    "prefix", "prefix_b", "response_a", "response_b", "model_a", "adapter_a", "model_b", "adapter_b",
    "params_a", "params_b", "swapped", "blind", "vote", "session_id", "created",
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prefix TEXT NOT NULL,          -- JSON message list: system (optional) .. last user turn, as pane A saw it
    prefix_b TEXT,                 -- pane B's conversation when it differs from A's (multi-turn), else NULL
    response_a TEXT NOT NULL,      -- answer of pane A's configuration
    response_b TEXT NOT NULL,
    model_a TEXT NOT NULL,
    adapter_a TEXT,                -- peft adapter folder, NULL for the base model
    model_b TEXT NOT NULL,
    adapter_b TEXT,
    params_a TEXT NOT NULL,        -- JSON sampling parameters
    params_b TEXT NOT NULL,
    swapped INTEGER NOT NULL CHECK (swapped IN (0, 1)),
    blind INTEGER NOT NULL CHECK (blind IN (0, 1)),
    vote TEXT NOT NULL CHECK (vote IN ('a', 'b', 'tie', 'both_bad')),
    session_id TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS votes_created ON votes (created);
"""


@dataclass
class Vote:
    """One arena vote with everything needed to turn it into training data later."""

    prefix: list[dict]  # A's conversation up to and including the last user turn (system message first if any)
    response_a: str  # answer of pane A's configuration (model_a + adapter_a + params_a)
    response_b: str  # answer of pane B's configuration
    model_a: str  # base model of configuration A ('embedded', hub id or folder)
    model_b: str  # base model of configuration B
    vote: str  # displayed side judged better: 'a' (left), 'b' (right), 'tie' or 'both_bad'
    adapter_a: str | None = None  # adapter folder of configuration A, None for the base model
    adapter_b: str | None = None  # adapter folder of configuration B
    params_a: dict = field(default_factory=dict)  # sampling parameters of A (max_new_tokens, temperature, ...)
    params_b: dict = field(default_factory=dict)  # sampling parameters of B
    swapped: bool = False  # True when configuration A was shown on the right (blind mode)
    blind: bool = False  # True when names were hidden until the vote
    session_id: str = ""  # browser session that voted
    created: float = field(default_factory=time.time)  # unix time of the vote
    prefix_b: list[dict] | None = None  # B's conversation when its earlier answers differ from A's; None = same
    id: int | None = None  # row id, set by the store

    def __post_init__(self) -> None:
        if self.vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}; got {self.vote!r}")
        if self.prefix_b == self.prefix:
            self.prefix_b = None
        for name, prefix in (("prefix", self.prefix), ("prefix_b", self.prefix_b or self.prefix)):
            if not prefix or not all(isinstance(m, dict) and {"role", "content"} <= m.keys() for m in prefix):
                raise ValueError(f"{name} must be a non-empty list of {{'role', 'content'}} messages")
            if prefix[-1]["role"] != "user":
                raise ValueError(f"{name} must end with the user turn being answered; it ends with {prefix[-1]['role']!r}")
        if not self.model_a or not self.model_b:
            raise ValueError("model_a and model_b must name the models that answered")

    @property
    def winner(self) -> str | None:
        """Configuration ('a' or 'b') that won, with blind-mode swapping undone; None for tie and both_bad."""
        if self.vote not in ("a", "b"):
            return None
        if not self.swapped:
            return self.vote
        return "b" if self.vote == "a" else "a"

    def response(self, side: str) -> str:
        """Answer of configuration 'a' or 'b'."""
        return self.response_a if side == "a" else self.response_b

    def prompt(self, side: str) -> list[dict]:
        """Conversation that configuration 'a' or 'b' answered."""
        return self.prefix_b if side == "b" and self.prefix_b is not None else self.prefix


def _row_values(vote: Vote) -> tuple:
    d = asdict(vote)
    d["prefix"] = json.dumps(vote.prefix, ensure_ascii=False)
    d["prefix_b"] = None if vote.prefix_b is None else json.dumps(vote.prefix_b, ensure_ascii=False)
    d["params_a"] = json.dumps(vote.params_a, sort_keys=True)
    d["params_b"] = json.dumps(vote.params_b, sort_keys=True)
    d["swapped"], d["blind"] = int(vote.swapped), int(vote.blind)
    return tuple(d[c] for c in _COLUMNS)


def _vote_from_row(row: sqlite3.Row) -> Vote:
    d = {c: row[c] for c in _COLUMNS}
    for key in ("prefix", "prefix_b", "params_a", "params_b"):
        d[key] = None if d[key] is None else json.loads(d[key])
    d["swapped"], d["blind"] = bool(d["swapped"]), bool(d["blind"])
    return Vote(id=row["id"], **d)


class PreferenceStore:
    """Votes in one SQLite file; safe to use from many threads and processes at once."""

    def __init__(self, path: str | Path | None = None, timeout_s: float = 30.0):
        if path is None:
            from lab.paths import prefs_db

            path = prefs_db()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s
        with closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are opened explicitly, so each vote is exactly one transaction.
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def add(self, vote: Vote) -> int:
        """Save one vote in its own transaction; returns its id."""
        marks = ", ".join("?" for _ in _COLUMNS)
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(
                    f"INSERT INTO votes ({', '.join(_COLUMNS)}) VALUES ({marks})", _row_values(vote)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        vote.id = cur.lastrowid
        return vote.id

    def get(self, vote_id: int) -> Vote | None:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT * FROM votes WHERE id = ?", (vote_id,)).fetchone()
        return _vote_from_row(row) if row else None

    def list(self, limit: int | None = None, offset: int = 0, session_id: str | None = None) -> list[Vote]:
        """Votes, newest first; optionally one browser session's only."""
        where, args = ("WHERE session_id = ?", [session_id]) if session_id is not None else ("", [])
        sql = f"SELECT * FROM votes {where} ORDER BY id DESC LIMIT ? OFFSET ?"
        with closing(self._connect()) as conn:
            rows = conn.execute(sql, (*args, -1 if limit is None else limit, offset)).fetchall()
        return [_vote_from_row(r) for r in rows]

    def delete(self, vote_id: int) -> bool:
        """Remove one vote; False when no vote has that id."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute("DELETE FROM votes WHERE id = ?", (vote_id,))
            conn.execute("COMMIT")
        return cur.rowcount > 0

    def count(self) -> int:
        with closing(self._connect()) as conn:
            return conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0]

    def integrity_check(self) -> str:
        """SQLite's own consistency check: 'ok' for a sound file."""
        with closing(self._connect()) as conn:
            return conn.execute("PRAGMA integrity_check").fetchone()[0]
