"""One browser's arena state: both setups' conversations, which side shows which setup, and the vote it can cast.

Plain data (kept in a gradio State by the tab, tested here without a browser). Positions and setups are kept apart:
setup A/B is what the user configured (model, adapter, sampling); position 'a'/'b' is the left/right chat window.
Without blind mode they coincide; in blind mode a seeded coin (`assign_sides`) decides at the start of each round
whether setup A sits on the right, and names stay hidden until the vote. Each setup continues its own conversation
(multi-turn), as in Chatbot Arena.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from lab.chat.arena import PaneConfig
from lab.chat.conversation import PairDelta, assign_sides, build_messages
from lab.chat.prefs import Vote
from lab.chat.stats import adapter_name


def setup_name(cfg: PaneConfig | None) -> str:
    if cfg is None:
        return "?"
    base = cfg.model if cfg.adapter is None else f"{cfg.model} + {adapter_name(cfg.adapter)}"
    return f"{base} (T={cfg.params.temperature:g})"


@dataclass
class ArenaSession:
    """The current round of one browser session."""

    blind: bool = False  # names hidden and sides shuffled in the current round
    swapped: bool = False  # setup A is shown at position 'b' (right) in the current round
    rounds: int = 0  # rounds started so far; with the seed it fixes the blind coin of each round
    generations: int = 0  # answers generated so far; offsets the sampling seed so regenerate draws anew
    history_a: list[dict] = field(default_factory=list)  # setup A's conversation (user/assistant turns)
    history_b: list[dict] = field(default_factory=list)
    cfg_a: PaneConfig | None = None  # setups that produced the latest answers
    cfg_b: PaneConfig | None = None
    prefix_a: list[dict] | None = None  # full message lists (system first) the latest answers respond to
    prefix_b: list[dict] | None = None
    error_a: str | None = None  # error that ended the latest answer of setup A
    error_b: str | None = None
    streaming: bool = False  # an answer pair is being generated
    voted: bool = False  # the latest answer pair has been voted on
    note: str = ""  # message for the user about the latest turn (context trimming, errors)

    @property
    def started(self) -> bool:
        return bool(self.history_a or self.history_b)

    def setup_at(self, position: str) -> str:
        """Which setup ('a' or 'b') the chat window at `position` shows."""
        return position if not self.swapped else ("b" if position == "a" else "a")

    def new_round(self) -> None:
        """Forget the conversation; the next message starts a new round (with a fresh blind coin)."""
        keep = {"rounds": self.rounds, "generations": self.generations}
        self.__dict__.update(asdict(ArenaSession()) | keep)
        self.cfg_a = self.cfg_b = None

    def begin_turn(self, system_prompt: str, prompt: str, cfg_a: PaneConfig, cfg_b: PaneConfig,
                   blind: bool, seed: int) -> tuple[list[dict], list[dict]]:
        """Messages each setup must answer; starts a round (and flips the blind coin) when none is running."""
        if self.streaming:
            raise ValueError("Both answers are still streaming: wait for them to finish.")
        messages_a = build_messages(system_prompt, self.history_a, prompt)  # raises on an empty prompt
        messages_b = build_messages(system_prompt, self.history_b, prompt)
        if not self.started:
            self.rounds += 1
            self.blind = blind
            self.swapped = assign_sides(np.random.default_rng([seed, self.rounds]), blind)
        self.history_a += [{"role": "user", "content": prompt}, {"role": "assistant", "content": ""}]
        self.history_b += [{"role": "user", "content": prompt}, {"role": "assistant", "content": ""}]
        self.cfg_a, self.cfg_b, self.prefix_a, self.prefix_b = cfg_a, cfg_b, messages_a, messages_b
        self.error_a = self.error_b = None
        self.streaming, self.voted, self.note = True, False, ""
        self.generations += 1
        return messages_a, messages_b

    def last_prompt(self) -> str:
        """Undo the latest answers for 'regenerate' and return the user message they answered."""
        if self.streaming:
            raise ValueError("Both answers are still streaming: wait for them to finish.")
        if len(self.history_a) < 2:
            raise ValueError("Nothing to regenerate yet: send a message first.")
        prompt = self.history_a[-2]["content"]
        self.history_a, self.history_b = self.history_a[:-2], self.history_b[:-2]
        return prompt

    def apply(self, item: PairDelta) -> None:
        """Add one streamed step to both setups' latest answers."""
        self.history_a[-1]["content"] += item.delta_a
        self.history_b[-1]["content"] += item.delta_b
        self.error_a = item.error_a or self.error_a
        self.error_b = item.error_b or self.error_b
        if item.done_a and item.done_b:
            self.streaming = False

    def fail(self, side: str, message: str) -> None:
        """Mark one setup's answer as failed before streaming (e.g. the model could not load)."""
        setattr(self, f"error_{side}", message)

    @property
    def can_vote(self) -> bool:
        """Both answers finished without error and not yet voted on."""
        return self.started and not self.streaming and not self.voted and not (self.error_a or self.error_b)

    def display(self, position: str) -> list[dict]:
        """Messages for the chat window at `position`, the setup's error appended when its answer failed."""
        side = self.setup_at(position)
        messages = [dict(m) for m in (self.history_a if side == "a" else self.history_b)]
        error = self.error_a if side == "a" else self.error_b
        if error and messages:
            messages[-1]["content"] = (messages[-1]["content"] + f"\n\n**Error:** {error}").strip()
        return messages

    def label(self, position: str) -> str:
        """Chat window title: the setup's name, or hidden while a blind round is not yet voted on."""
        title = position.upper()
        if not self.started:
            return title
        if self.blind and not self.voted:
            return f"{title} (hidden until you vote)"
        side = self.setup_at(position)
        return f"{title}: {setup_name(self.cfg_a if side == 'a' else self.cfg_b)}"

    def to_vote(self, vote: str, session_id: str) -> Vote:
        """The Vote to store for the latest answers; ValueError when they cannot be voted on."""
        if not self.can_vote:
            raise ValueError("Vote once both answers have finished (and not twice on the same answers).")
        return Vote(
            prefix=self.prefix_a, prefix_b=self.prefix_b,
            response_a=self.history_a[-1]["content"], response_b=self.history_b[-1]["content"],
            model_a=self.cfg_a.model, adapter_a=self.cfg_a.adapter, model_b=self.cfg_b.model,
            adapter_b=self.cfg_b.adapter, params_a=asdict(self.cfg_a.params), params_b=asdict(self.cfg_b.params),
            swapped=self.swapped, blind=self.blind, vote=vote, session_id=session_id, created=time.time(),
        )
