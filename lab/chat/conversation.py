"""Helpers for the two-pane arena: message lists, fitting them into the context, blind sides, and paired streaming.

- Messages follow the chat-template convention of transformers (`[{"role", "content"}]`, optional system first).
- Context trimming drops the oldest user/assistant exchanges first, keeping the system prompt and the newest user turn
  (the sliding-window strategy of most chat front-ends); the caller is told how many exchanges were dropped.
- Blind mode shows configuration A on the left or the right with probability 1/2 from a seeded numpy Generator, as in
  Chatbot Arena's anonymous battles (Chiang et al. 2024), so position cannot reveal the model.
- `stream_pair` runs both panes' streams in two threads feeding one queue, so both answers appear at once and one
  pane's failure becomes that pane's error message while the other pane finishes normally.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np


def build_messages(system_prompt: str, history: Sequence[dict], user_text: str) -> list[dict]:
    """System prompt (if any) + earlier turns of this pane + the new user turn; ValueError on an empty prompt."""
    if not user_text or not user_text.strip():
        raise ValueError("The prompt is empty: type a message before sending.")
    messages = [{"role": "system", "content": system_prompt.strip()}] if system_prompt and system_prompt.strip() else []
    messages += [{"role": m["role"], "content": m["content"]} for m in history if m["role"] in ("user", "assistant")]
    messages.append({"role": "user", "content": user_text})
    return messages


@dataclass
class Trimmed:
    """Messages that fit the budget, and what was dropped to get there."""

    messages: list[dict]
    dropped_turns: int  # oldest messages removed (user and assistant turns each count one)
    prompt_tokens: int  # tokens of the kept messages as the model sees them

    @property
    def note(self) -> str:
        if not self.dropped_turns:
            return ""
        return (
            f"The conversation was longer than the model's context: the {self.dropped_turns} oldest turn(s) were "
            f"left out of this prompt ({self.prompt_tokens} tokens kept)."
        )


def trim_to_context(
    messages: Sequence[dict], count_tokens: Callable[[list[dict]], int], max_prompt_tokens: int
) -> Trimmed:
    """Drop the oldest turns (never the system prompt or the last user turn) until `count_tokens` fits.

    `max_prompt_tokens` is the context length minus the tokens reserved for the answer. Raises ValueError when the
    system prompt and the newest user turn alone do not fit.
    """
    if max_prompt_tokens < 1:
        raise ValueError(f"max_prompt_tokens must be >= 1; got {max_prompt_tokens} (lower max new tokens)")
    messages = list(messages)
    system = [m for m in messages[:1] if m["role"] == "system"]
    body = messages[len(system):]
    dropped = 0
    while True:
        kept = system + body
        n = count_tokens(kept)
        if n <= max_prompt_tokens:
            return Trimmed(kept, dropped, n)
        if len(body) <= 1:
            raise ValueError(
                f"The prompt is too long: {n} tokens with the system prompt, but only {max_prompt_tokens} fit "
                "(context length minus max new tokens). Shorten the message or the system prompt, or lower max new tokens."
            )
        # Drop the oldest turn; if that leaves an assistant turn first, drop it too so the window starts with a user.
        body = body[1:]
        dropped += 1
        while len(body) > 1 and body[0]["role"] == "assistant":
            body = body[1:]
            dropped += 1


def assign_sides(rng: np.random.Generator, blind: bool) -> bool:
    """Whether configuration A is shown on the right this round: a fair coin in blind mode, never otherwise."""
    return bool(blind and rng.random() < 0.5)


class PairDelta(NamedTuple):
    """New text of both panes since the previous item, and each pane's state."""

    delta_a: str
    delta_b: str
    done_a: bool
    done_b: bool
    error_a: str | None  # message of the exception that ended pane A's stream, if any
    error_b: str | None


_DONE = object()


def _pump(side: str, start: Callable[[], Iterable[str]], out: queue.Queue, stop: threading.Event) -> None:
    """Feed one stream's deltas into the queue, then one end marker carrying the error (None when it finished)."""
    error = None
    stream = None
    try:
        stream = iter(start())
        for delta in stream:
            if stop.is_set():
                break
            if delta:
                out.put((side, delta))
    except Exception as exc:  # any backend failure belongs to this pane only
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                pass
        out.put((side, _DONE, error))


def stream_pair(
    start_a: Callable[[], Iterable[str]], start_b: Callable[[], Iterable[str]]
) -> Iterator[PairDelta]:
    """Run both streams concurrently and yield their deltas merged, until both have ended.

    `start_a`/`start_b` return an iterable of text deltas (e.g. `lambda: backend.stream_chat(...)`); they are called
    inside the worker threads so that even a failure to start is reported in that pane. Deltas that arrive together
    are merged into one item, so a slow consumer (a browser) sees fewer, larger updates instead of falling behind.
    Closing this generator early tells both workers to stop reading their streams.
    """
    out: queue.Queue = queue.Queue()
    stop = threading.Event()
    threads = [
        threading.Thread(target=_pump, args=(side, start, out, stop), daemon=True, name=f"stream-pane-{side}")
        for side, start in (("a", start_a), ("b", start_b))
    ]
    for t in threads:
        t.start()
    done = {"a": False, "b": False}
    errors: dict[str, str | None] = {"a": None, "b": None}
    try:
        while not (done["a"] and done["b"]):
            items = [out.get()]
            while True:
                try:
                    items.append(out.get_nowait())
                except queue.Empty:
                    break
            deltas = {"a": [], "b": []}
            for item in items:
                if item[1] is _DONE:
                    done[item[0]] = True
                    errors[item[0]] = item[2]
                else:
                    deltas[item[0]].append(item[1])
            yield PairDelta(
                "".join(deltas["a"]), "".join(deltas["b"]), done["a"], done["b"], errors["a"], errors["b"]
            )
    finally:
        stop.set()
