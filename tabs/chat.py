"""The Chat tab: two panes answer the same prompt side by side (base vs adapter), blind votes, preference data.

Layout and wiring only: the round's state lives in `lab.chat.session.ArenaSession`, streaming in `lab.chat.arena`,
votes in `lab.chat.prefs.PreferenceStore`, exports and statistics in `lab.chat.export` / `lab.chat.stats`.
The model is loaded under `ctx.gpu_lock`; streaming runs outside it, so both panes generate at once.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

import gradio as gr

from lab.chat.arena import PaneConfig, fit_to_context, prepare_pane, stream_round
from lab.chat.export import export_votes
from lab.chat.prefs import PreferenceStore
from lab.chat.session import ArenaSession
from lab.chat.stats import arena_stats, pair_table, side_label, summary_markdown, win_rate_figure
from lab.generation.base import SamplingParams
from lab.models.registry import known_models, list_adapters
from lab.paths import lab_home

BASE = "(base model, no adapter)"
VOTES = [("a", "A is better"), ("b", "B is better"), ("tie", "Tie"), ("both_bad", "Both are bad")]
PAIR_HEADERS = ["pair", "votes", "first wins", "second wins", "ties", "both bad", "first's win rate [95% CI]"]
VOTE_HEADERS = ["id", "time", "A (setup)", "B (setup)", "vote", "winner", "prompt"]
UPDATE_EVERY_S = 0.08  # streaming updates sent to the browser at most this often


def _adapter_choices() -> list[tuple[str, str]]:
    return [(BASE, BASE)] + [(f"{a.name} ({a.path})", a.path) for a in list_adapters()]


def _setup_column(name: str, model: str, adapter: str, temperature: float) -> tuple:
    with gr.Column():
        gr.Markdown(f"**Pane {name}**")
        model_box = gr.Dropdown(known_models(), value=model, label=f"Model {name}", allow_custom_value=True)
        adapter_box = gr.Dropdown(_adapter_choices(), value=adapter, label=f"Adapter {name}")
        temp = gr.Slider(0.0, 2.0, value=temperature, step=0.05, label=f"Temperature {name} (0 = greedy)")
    return model_box, adapter_box, temp


def _pane_config(model: str, adapter: str, temperature: float, max_new: int, top_p: float, seed: int) -> PaneConfig:
    params = SamplingParams(max_new_tokens=int(max_new), temperature=float(temperature), top_p=float(top_p),
                            seed=int(seed))
    return PaneConfig(model=model, adapter=None if adapter in (None, "", BASE) else adapter, params=params)


def _view(s: ArenaSession) -> tuple:
    """Component updates for the two chat windows, the note, and the four vote buttons."""
    buttons = [gr.Button(interactive=s.can_vote) for _ in VOTES]
    return (gr.Chatbot(s.display("a"), label=s.label("a")), gr.Chatbot(s.display("b"), label=s.label("b")),
            s.note, *buttons, s)


def _start_backends(ctx, s: ArenaSession) -> tuple:
    """Backends of both setups, loaded under the GPU lock; a setup that fails gets the error in its pane."""
    backends = {}
    for side, cfg in (("a", s.cfg_a), ("b", s.cfg_b)):
        try:
            with ctx.gpu_lock:
                replica = ctx.pane_replica(s.cfg_a.model, cfg.model) if side == "b" else 0
                backend = ctx.backend(cfg.model, replica=replica)
                prepare_pane(backend, cfg.adapter)
            backends[side] = backend
        except Exception as exc:  # shown in that pane; the other pane still answers
            s.fail(side, f"{type(exc).__name__}: {exc}")
    return backends.get("a"), backends.get("b")


def _run_turn(ctx, s: ArenaSession, messages_a: list, messages_b: list):
    """Stream both answers into the session, yielding views; errors stay in their pane."""
    backend_a, backend_b = _start_backends(ctx, s)
    notes, fitted = [], {}
    for side, backend, msgs, cfg in (("a", backend_a, messages_a, s.cfg_a), ("b", backend_b, messages_b, s.cfg_b)):
        if backend is None:
            continue
        try:
            trimmed = fit_to_context(backend, msgs, cfg.params.max_new_tokens)
            fitted[side] = trimmed.messages
            if trimmed.note and trimmed.note not in notes:
                notes.append(trimmed.note)
        except ValueError as exc:
            s.fail(side, str(exc))
    s.note = " ".join(notes)
    yield _view(s)
    if not fitted:
        s.streaming = False
        yield _view(s)
        return
    items = stream_round(
        backend_a if "a" in fitted else _Failed(), backend_b if "b" in fitted else _Failed(),
        fitted.get("a", messages_a), fitted.get("b", messages_b), s.cfg_a, s.cfg_b,
    )
    last = 0.0
    try:
        for item in items:
            s.apply(item)
            if not s.streaming or time.monotonic() - last >= UPDATE_EVERY_S:
                last = time.monotonic()
                yield _view(s)
    finally:  # a closed page or an unexpected error must not leave the session stuck in "streaming"
        s.streaming = False
    yield _view(s)


class _Failed:
    """Stands in for a pane whose setup already failed: its stream ends at once, keeping the earlier error."""

    def stream_chat(self, *args, **kwargs):
        return iter(())


def _stats_values(store: PreferenceStore) -> tuple:
    """Summary, win-rate figure, pair table and vote table of everything in the store."""
    import pandas as pd

    votes = store.list()
    stats = arena_stats(votes)
    rows = [[v.id, datetime.fromtimestamp(v.created).strftime("%Y-%m-%d %H:%M:%S"), side_label(v, "a"),
             side_label(v, "b"), v.vote + (" (swapped)" if v.swapped else ""), (v.winner or "-").upper(),
             v.prefix[-1]["content"][:80]] for v in votes[:200]]
    return (summary_markdown(stats), win_rate_figure(stats), pd.DataFrame(pair_table(stats), columns=PAIR_HEADERS),
            pd.DataFrame(rows, columns=VOTE_HEADERS))


def build(ctx) -> None:
    store = PreferenceStore()
    adapters = list_adapters()
    session = gr.State(ArenaSession())
    with gr.Accordion("Pane setups", open=True):
        with gr.Row():
            setup_a = _setup_column("A", ctx.model, BASE, 0.7)
            setup_b = _setup_column("B", ctx.model, adapters[0].path if adapters else BASE, 0.7 if adapters else 1.2)
        refresh_adapters = gr.Button("Refresh adapter lists", size="sm")
    with gr.Row():
        chat_a = gr.Chatbot([], label="A", height=380, elem_id="chat-pane-a")
        chat_b = gr.Chatbot([], label="B", height=380, elem_id="chat-pane-b")
    prompt = gr.Textbox(label="Message (sent to both panes)", lines=2, elem_id="chat-prompt")
    with gr.Row():
        send = gr.Button("Send", variant="primary", elem_id="chat-send")
        regenerate = gr.Button("Regenerate", elem_id="chat-regenerate")
        new_round = gr.Button("New round", elem_id="chat-new-round")
    note = gr.Markdown(elem_id="chat-note")
    with gr.Row():
        vote_buttons = [gr.Button(text, interactive=False, elem_id=f"chat-vote-{key}") for key, text in VOTES]
    with gr.Accordion("System prompt and sampling (both panes)", open=False):
        system = gr.Textbox(label="System prompt", value="You are a helpful assistant.", lines=2)
        with gr.Row():
            max_new = gr.Slider(1, 2048, value=128, step=1, label="Max new tokens", elem_id="chat-max-new")
            top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p")
            seed = gr.Number(0, precision=0, label="Seed (answers and blind sides)")
            blind = gr.Checkbox(True, label="Blind mode: shuffle sides, hide names until the vote", elem_id="chat-blind")
    stats_view = _build_stats_panel(store)
    view = [chat_a, chat_b, note, *vote_buttons, session]
    settings = [*setup_a, *setup_b, system, max_new, top_p, seed, blind]

    def on_send(s: ArenaSession, text, model_a, adapter_a, temp_a, model_b, adapter_b, temp_b, system_prompt,
                max_tokens, p, seed_value, blind_on, regenerate_last=False):
        try:
            seed_value = int(seed_value or 0)
            cfg_a = _pane_config(model_a, adapter_a, temp_a, max_tokens, p, seed_value + s.generations)
            cfg_b = _pane_config(model_b, adapter_b, temp_b, max_tokens, p, seed_value + s.generations)
            text = s.last_prompt() if regenerate_last else text
            messages = s.begin_turn(system_prompt, text, cfg_a, cfg_b, bool(blind_on), int(seed_value))
        except ValueError as exc:
            s.note = f"**{exc}**"
            yield _view(s)
            return
        yield from _run_turn(ctx, s, *messages)

    send.click(on_send, [session, prompt, *settings], view).then(lambda: "", None, prompt)
    prompt.submit(on_send, [session, prompt, *settings], view).then(lambda: "", None, prompt)

    def on_regenerate(s: ArenaSession, *args):
        yield from on_send(s, "", *args, regenerate_last=True)

    regenerate.click(on_regenerate, [session, *settings], view)

    def on_new_round(s: ArenaSession):
        s.new_round()
        return _view(s)

    new_round.click(on_new_round, [session], view)
    for (key, _), button in zip(VOTES, vote_buttons):
        button.click(_voter(store, key), [session], view).then(lambda: _stats_values(store), None, stats_view)
    refresh_adapters.click(lambda: [gr.Dropdown(choices=_adapter_choices()) for _ in range(2)], None,
                           [setup_a[1], setup_b[1]])


def _voter(store: PreferenceStore, key: str):
    def vote(s: ArenaSession, request: gr.Request):
        try:
            vote_id = store.add(s.to_vote(key, getattr(request, "session_hash", None) or ""))
        except ValueError as exc:
            s.note = f"**{exc}**"
            return _view(s)
        s.voted = True
        swapped = " (sides were swapped)" if s.swapped else ""
        s.note = f"Vote #{vote_id} saved. {s.label('a')} · {s.label('b')}{swapped}."
        return _view(s)

    return vote


def _build_stats_panel(store: PreferenceStore) -> list:
    with gr.Accordion("Statistics, votes and exports", open=False):
        refresh = gr.Button("Refresh")
        # Callable values are evaluated on every page load, so a new browser sees the current store.
        summary = gr.Markdown(lambda: _stats_values(store)[0])
        plot = gr.Plot(lambda: _stats_values(store)[1], label="Win rates")
        pairs = gr.Dataframe(lambda: _stats_values(store)[2], label="Votes per pair", interactive=False)
        votes = gr.Dataframe(lambda: _stats_values(store)[3], label="Votes (newest first)", interactive=False,
                             elem_id="chat-votes")
        with gr.Row():
            vote_id = gr.Number(None, precision=0, label="Vote id")
            delete = gr.Button("Delete this vote")
            export = gr.Button("Export for training", elem_id="chat-export")
        message = gr.Markdown(elem_id="chat-export-message")
        files = gr.File(label="Exports (trl preference JSONL; 'both bad' unpaired JSONL)", file_count="multiple",
                        elem_id="chat-export-files")
    outputs = [summary, plot, pairs, votes]
    refresh.click(lambda: _stats_values(store), None, outputs)

    def on_delete(vid):
        if vid is None:
            return "Type the id of the vote to delete (first column of the table).", *_stats_values(store)
        ok = store.delete(int(vid))
        return (f"Vote #{int(vid)} deleted." if ok else f"No vote has id {int(vid)}."), *_stats_values(store)

    delete.click(on_delete, [vote_id], [message, *outputs])

    def on_export():
        saved = export_votes(store, lab_home() / "exports" / "chat")
        download = export_votes(store, Path(tempfile.mkdtemp(prefix="lab_chat_export_")))
        text = (f"{saved.n_preferences} preference pair(s) and {saved.n_both_bad} 'both bad' row(s); also saved to "
                f"`{saved.preferences.parent}` for the training tab.")
        return text, [str(download.preferences), str(download.both_bad)]

    export.click(on_export, None, [message, files])
    return outputs
