"""A separate process that saves arena votes, for the store's concurrency and crash tests.

Usage: python -m tests.chat.vote_writer DB TAG N   (N = -1: vote until killed). Prints each committed vote's id.
"""

from __future__ import annotations

import sys

from lab.chat.prefs import PreferenceStore, Vote


def make_vote(tag: str, i: int) -> Vote:
    return Vote(
        prefix=[{"role": "system", "content": "be brief"}, {"role": "user", "content": f"question {i} from {tag}"}],
        response_a=f"answer a {i} " * 20,
        response_b=f"answer b {i}",
        model_a="embedded",
        model_b="embedded",
        adapter_b="/tmp/adapter",
        params_a={"temperature": 0.7},
        params_b={"temperature": 0.7},
        vote=("a", "b", "tie", "both_bad")[i % 4],
        swapped=bool(i % 3 == 0),
        blind=True,
        session_id=tag,
    )


def main(db: str, tag: str, n: int) -> None:
    store = PreferenceStore(db)
    i = 0
    while n < 0 or i < n:
        vote_id = store.add(make_vote(tag, i))
        print(vote_id, i, flush=True)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
