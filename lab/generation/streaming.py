"""Incremental decoding of generated tokens into text deltas, with stop strings held back until they are ruled out.

Decoding each new token on its own breaks multi-byte characters and sentencepiece spaces, so each row keeps its
token ids and re-decodes the tail, emitting only the new suffix (transformers' TextStreamer does the same for one
row). A stop string may arrive split over several tokens; text that could still be the start of a stop string is held
back, and text from a stop string on is never emitted.
"""

from __future__ import annotations

import queue

from transformers.generation.streamers import BaseStreamer


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """(text before the first stop string, whether one was found)."""
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def safe_prefix_len(text: str, stop: list[str]) -> int:
    """Length of `text` that can be emitted: everything but a tail that could begin a stop string."""
    hold = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return len(text) - hold


class RowDecoder:
    """Turns one row's token ids into text deltas, honouring stop strings."""

    def __init__(self, tokenizer, stop: list[str]):
        self.tokenizer, self.stop = tokenizer, stop
        self.ids: list[int] = []
        self.emitted = 0
        self.stopped = False

    def push(self, token_ids: list[int]) -> str:
        if self.stopped:
            return ""
        self.ids.extend(token_ids)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait for the next token
            return ""
        text, self.stopped = cut_at_stop(text, self.stop)
        end = len(text) if self.stopped else safe_prefix_len(text, self.stop)
        delta = text[self.emitted : end] if end > self.emitted else ""
        self.emitted = max(self.emitted, end)
        return delta

    def flush(self) -> str:
        """Whatever was held back, at the end of generation."""
        if self.stopped:
            return ""
        text, _ = cut_at_stop(self.tokenizer.decode(self.ids, skip_special_tokens=True), self.stop)
        delta, self.emitted = text[self.emitted :], len(text)
        return delta


class BatchStreamer(BaseStreamer):
    """A generate() streamer for any batch size: puts a list of per-row deltas on a queue after every step."""

    def __init__(self, tokenizer, batch_size: int, stop: list[str], timeout: float | None = None):
        self.rows = [RowDecoder(tokenizer, stop) for _ in range(batch_size)]
        self.queue: queue.Queue = queue.Queue()
        self.timeout = timeout
        self._prompt_seen = False
        self.pad_id = tokenizer.pad_token_id
        self.eos_ids = {tokenizer.eos_token_id}
        self._done = [False] * batch_size

    def put(self, value) -> None:
        if not self._prompt_seen:  # generate() first passes the prompt ids
            self._prompt_seen = True
            return
        tokens = value.reshape(len(self.rows), -1).tolist()
        deltas = []
        for i, (row, toks) in enumerate(zip(self.rows, tokens)):
            if self._done[i]:
                deltas.append("")
                continue
            if any(t in self.eos_ids for t in toks):  # finished rows keep receiving padding afterwards
                self._done[i] = True
            deltas.append(row.push(toks))
        self.queue.put(deltas)

    def end(self) -> None:
        self.queue.put([row.flush() for row in self.rows])
        self.queue.put(None)

    def error(self, exc: BaseException) -> None:
        self.queue.put(exc)

    def __iter__(self):
        while True:
            item = self.queue.get(timeout=self.timeout)
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
