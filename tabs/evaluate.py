"""The Evaluate tab: run MMLU or GSM8K on a model or adapter, watch it, read every question, compare runs.

Layout and wiring only: `lab.eval.runner` runs and saves (EvalConfig, run_eval), `lab.eval.results` lists, reloads
and compares saved runs, `lab.eval.report` formats them (markdown, plotly, table rows). Stop sets an event the runner
checks between chunks; what was scored is already on disk.
"""

from __future__ import annotations

import threading

import gradio as gr

from lab.eval import report, results
from lab.eval.mmlu import SUBJECT_CATEGORY
from lab.eval.runner import BENCHES, EvalConfig, run_eval
from lab.models.registry import known_models, list_adapters

BASE = "(base model, no adapter)"
CHAT = {"protocol default": None, "on": True, "off": False}
_STOPS: dict[str, threading.Event] = {}  # one stop flag per browser session


def _adapters() -> list[tuple[str, str]]:
    return [(BASE, BASE)] + [(f"{a.name} ({a.path})", a.path) for a in list_adapters()]


def _runs() -> list[tuple[str, str]]:
    return [(f"{s['run_id']} · {s.get('status')} · {100 * s.get('score', {}).get('accuracy', 0):.1f}%", s["run_id"])
            for s in results.list_runs()]


def _protocols(bench: str):
    names = list(BENCHES[bench].PROTOCOLS)
    return gr.Dropdown(names, value=names[0]), gr.Dropdown(visible=bench == "mmlu")


def _progress_text(p) -> str:
    return (f"**{p.done}/{p.total}** questions · accuracy so far **{100 * p.accuracy:.1f}%** · "
            f"{p.tokens_per_s:.0f} tokens/s · {p.questions_per_s:.2f} questions/s")


def _view(run_id: str, search: str = "", show: str = "all") -> tuple:
    """Score, chart and question table of a saved run."""
    summary, records = results.load_run(run_id)
    return (report.summary_markdown(summary), report.score_figure(summary),
            report.question_rows(records, search, show), run_id)


def _settings(ctx) -> dict:
    with gr.Row():
        model = gr.Dropdown(known_models(), value=ctx.model, label="Model", allow_custom_value=True)
        adapter = gr.Dropdown(_adapters(), value=BASE, label="Adapter")
        backend = gr.Radio(["transformers", "vllm"], value=ctx.backend_kind if ctx.backend_kind != "openai"
                           else "transformers", label="Backend")
    with gr.Row():
        bench = gr.Radio(list(BENCHES), value="gsm8k", label="Benchmark", elem_id="eval-bench")
        protocol = gr.Dropdown(list(BENCHES["gsm8k"].PROTOCOLS), value="harness-5shot", label="Protocol",
                               elem_id="eval-protocol")
        chat = gr.Radio(list(CHAT), value="protocol default", label="Chat template")
    with gr.Row():
        limit = gr.Number(20, precision=0, minimum=1, label="Questions (limit)", elem_id="eval-limit")
        sample = gr.Checkbox(False, label="Random sample (else the first questions)")
        seed = gr.Number(0, precision=0, label="Seed")
        subjects = gr.Dropdown(sorted(SUBJECT_CATEGORY), multiselect=True, label="MMLU subjects (empty: all)",
                               visible=False, elem_id="eval-subjects")
    bench.change(_protocols, bench, [protocol, subjects])
    return dict(model=model, adapter=adapter, backend=backend, bench=bench, protocol=protocol, chat=chat,
                limit=limit, sample=sample, seed=seed, subjects=subjects)


def _run(ctx, model, adapter, backend, bench, protocol, chat, limit, sample, seed, subjects, request: gr.Request):
    try:
        cfg = EvalConfig(bench=bench, protocol=protocol, model=model, adapter=None if adapter == BASE else adapter,
                         backend=backend, limit=int(limit), seed=int(seed) if sample else None,
                         subjects=list(subjects or []) if bench == "mmlu" else [], chat_template=CHAT[chat])
    except ValueError as exc:
        raise gr.Error(str(exc))
    stop = _STOPS.setdefault(request.session_hash, threading.Event())
    stop.clear()
    yield "Loading the model…", gr.skip(), gr.skip(), gr.skip(), gr.skip()
    try:
        with ctx.gpu_lock:
            engine = ctx.backend(model=model, kind=backend)
        for p in run_eval(cfg, engine, stop):
            score, fig, rows, run_id = _view(p.run_id)
            yield _progress_text(p) + (" · **finished**" if p.finished else ""), score, fig, rows, run_id
    except Exception as exc:  # shown in the UI; the records scored so far stay saved
        raise gr.Error(f"eval failed: {exc}")


def _stop(request: gr.Request) -> str:
    _STOPS.setdefault(request.session_hash, threading.Event()).set()
    return "Stopping after the current chunk; everything scored so far is saved."


def _details(run_id: str, qid) -> str:
    if not run_id:
        return "Run or load an eval first."
    records = {r["id"]: r for r in results.load_run(run_id)[1]}
    if qid is None or int(qid) not in records:
        return f"No question {qid} in this run; ids: {sorted(records)[:20]}…"
    return report.details_markdown(records[int(qid)])


def _select(run_id: str, evt: gr.SelectData) -> tuple:
    qid = int(evt.row_value[0])
    return qid, _details(run_id, qid)


def _compare(a: str, b: str) -> str:
    if not a or not b:
        return "Pick two runs."
    try:
        return report.compare_markdown(results.compare_runs(a, b))
    except (ValueError, FileNotFoundError) as exc:
        return f"Cannot compare: {exc}"


def _history(score, chart, table, run_id) -> tuple:
    """Saved runs: reload one, or compare two on their common questions (flips and paired tests)."""
    with gr.Accordion("History and base-vs-adapted comparison", open=True):
        with gr.Row():
            saved = gr.Dropdown(_runs(), label="Saved run", elem_id="eval-saved")
            load = gr.Button("Load run")
            refresh = gr.Button("Refresh lists")
        with gr.Row():
            run_a = gr.Dropdown(_runs(), label="Run A (e.g. base)")
            run_b = gr.Dropdown(_runs(), label="Run B (e.g. adapted)")
            compare = gr.Button("Compare")
        verdict = gr.Markdown(elem_id="eval-compare")
    lists = [saved, run_a, run_b]
    refresh.click(lambda: [gr.Dropdown(choices=_runs()) for _ in lists], None, lists)
    load.click(lambda rid: _view(rid) if rid else (gr.skip(),) * 4, saved, [score, chart, table, run_id])
    compare.click(_compare, [run_a, run_b], verdict)
    return refresh, lists


def build(ctx) -> None:
    gr.Markdown("Run MMLU or GSM8K under the seed's or lm-evaluation-harness's protocol; every question is kept.")
    s = _settings(ctx)
    with gr.Row():
        run_btn = gr.Button("Run eval", variant="primary", elem_id="eval-run")
        stop_btn = gr.Button("Stop", elem_id="eval-stop")
    progress = gr.Markdown(elem_id="eval-progress")
    score = gr.Markdown(elem_id="eval-score")
    chart = gr.Plot(label="Accuracy")
    run_id = gr.Textbox(label="Run id", interactive=False)
    with gr.Row():
        search = gr.Textbox(label="Search questions and outputs")
        show = gr.Radio(list(report.FILTERS), value="all", label="Show")
    table = gr.Dataframe(headers=report.QUESTION_HEADERS, interactive=False, wrap=True, max_height=400)
    with gr.Row():
        qid = gr.Number(None, precision=0, label="Question id", elem_id="eval-qid")
        details_btn = gr.Button("Show details", elem_id="eval-show-details")
    details = gr.Markdown(elem_id="eval-details")
    refresh, lists = _history(score, chart, table, run_id)

    def run(model, adapter, backend, bench, protocol, chat, limit, sample, seed, subjects, request: gr.Request):
        yield from _run(ctx, model, adapter, backend, bench, protocol, chat, limit, sample, seed, subjects, request)

    inputs = [s[k] for k in ("model", "adapter", "backend", "bench", "protocol", "chat", "limit", "sample", "seed",
                             "subjects")]
    run_btn.click(run, inputs, [progress, score, chart, table, run_id]).then(
        lambda: [gr.Dropdown(choices=_runs()) for _ in lists], None, lists)
    stop_btn.click(_stop, None, progress)
    for trigger in (search.submit, show.change):
        trigger(lambda rid, q, f: report.question_rows(results.load_run(rid)[1], q, f) if rid else [],
                [run_id, search, show], table)
    details_btn.click(_details, [run_id, qid], details)
    table.select(_select, run_id, [qid, details])
