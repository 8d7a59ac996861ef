"""Eval results as things people read: score lines, a plotly chart, filterable question rows, details, comparisons.

Plain data and plotly figures only (no gradio), so the Evaluate tab and scripts format results the same way.
"""

from __future__ import annotations

QUESTION_HEADERS = ["id", "subject", "target", "extracted", "correct", "question"]
FILTERS = ("all", "right", "wrong", "no answer")


def _pct(block: dict) -> str:
    low, high = block["ci95"]
    return f"{100 * block['accuracy']:.1f}% ({block['correct']}/{block['n']}; 95% CI {100 * low:.1f}-{100 * high:.1f})"


def summary_markdown(s: dict) -> str:
    """Score with its interval, what was run and how fast."""
    if not s.get("score"):
        return f"Run `{s.get('run_id', '?')}`: no question scored yet ({s.get('status', '?')})."
    cfg = s["config"]
    lines = [
        f"**{cfg['bench'].upper()} · {s['protocol']}**: {_pct(s['score'])}"
        + (f" · flexible-extract {_pct(s['score_flexible'])}" if s.get("score_flexible") else ""),
        f"model `{cfg['model']}` · adapter `{cfg.get('adapter') or 'none'}` · backend `{s['backend']}` · "
        f"chat template {'on' if s['chat_template'] else 'off'} · status **{s['status']}** "
        f"({s['done']}/{s['total']} questions)",
        f"few-shot: {s['fewshot']} · data: `{s['data_source']}` · {s['questions_per_s']:.2f} questions/s · "
        f"{s['tokens_per_s']:.0f} tokens/s · run `{s['run_id']}`",
    ]
    return "\n\n".join(lines)


def score_figure(s: dict):
    """Per-category and per-subject accuracy (MMLU) or strict vs flexible (GSM8K), with 95% intervals."""
    import plotly.graph_objects as go

    groups = []
    if s.get("per_category"):
        groups = [dict(g, label=g["group"]) for g in s["per_category"]]
        groups += [dict(g, label=g["group"].replace("_", " ")) for g in s.get("per_subject", [])]
    elif s.get("score"):
        groups = [dict(s["score"], label="strict" if s.get("score_flexible") else "accuracy", low=s["score"]["ci95"][0],
                       high=s["score"]["ci95"][1])]
        if s.get("score_flexible"):
            f = s["score_flexible"]
            groups.append(dict(f, label="flexible", low=f["ci95"][0], high=f["ci95"][1]))
    fig = go.Figure(go.Bar(
        x=[100 * g["accuracy"] for g in groups], y=[g["label"] for g in groups], orientation="h",
        error_x=dict(type="data", symmetric=False, array=[100 * (g["high"] - g["accuracy"]) for g in groups],
                     arrayminus=[100 * (g["accuracy"] - g["low"]) for g in groups]),
        text=[f"{g['correct']}/{g['n']}" for g in groups], hovertemplate="%{y}: %{x:.1f}%<extra></extra>",
    ))
    fig.update_layout(xaxis_title="accuracy (%)", xaxis_range=[0, 100], yaxis_autorange="reversed",
                      height=max(250, 22 * len(groups) + 80), margin=dict(l=10, r=10, t=30, b=40),
                      title="accuracy with 95% Wilson intervals")
    return fig


def question_rows(records: list[dict], search: str = "", show: str = "all") -> list[list]:
    """Table rows, filtered by right/wrong/no answer and a case-insensitive search over question, prompt, answer."""
    if show not in FILTERS:
        raise ValueError(f"show must be one of {FILTERS}; got {show!r}")
    needle = (search or "").strip().lower()
    rows = []
    for r in sorted(records, key=lambda r: r["id"]):
        if show == "right" and not r["correct"] or show == "wrong" and r["correct"]:
            continue
        if show == "no answer" and r.get("extracted") not in (None, "[invalid]"):
            continue
        if needle and needle not in " ".join(str(r.get(k, "")) for k in ("question", "generation", "subject")).lower():
            continue
        rows.append([r["id"], r.get("subject", ""), r["target"], str(r.get("extracted")), "✓" if r["correct"] else "✗",
                     r["question"][:160]])
    return rows


def details_markdown(record: dict) -> str:
    """Everything about one question: verdict, extracted vs target, the exact prompt and the raw output."""
    verdict = "✓ right" if record["correct"] else "✗ wrong"
    head = f"### Question {record['id']}: {verdict}\n\nextracted **{record.get('extracted')}** · target **{record['target']}**"
    if "extracted_flexible" in record:
        head += f" · flexible **{record['extracted_flexible']}** ({'right' if record['correct_flexible'] else 'wrong'})"
    if record.get("subject"):
        head += f" · {record['subject']} ({record['category']})"
    out = record.get("generation") or ""
    if record.get("loglikelihoods"):
        out = "\n".join(f"{l}: {ll:.4f}" for l, ll in zip("ABCD", record["loglikelihoods"]))
    return f"{head}\n\n**Prompt, exactly as sent:**\n```text\n{record['prompt']}\n```\n\n**Output:**\n```text\n{out}\n```"


def compare_markdown(c: dict) -> str:
    """Both scores on the paired questions, the flips and whether the difference is real."""
    b = c["bootstrap"]
    verdict = "a real difference" if c["mcnemar_p"] < 0.05 else "no significant difference"
    return "\n\n".join([
        f"**A** `{c['run_a']}`: {_pct(c['a'])}", f"**B** `{c['run_b']}`: {_pct(c['b'])}",
        f"{c['n_paired']} paired questions · fixed (A wrong, B right): **{len(c['fixed'])}** · "
        f"broken (A right, B wrong): **{len(c['broken'])}**",
        f"McNemar exact p = **{c['mcnemar_p']:.4f}** · paired bootstrap: B - A = {100 * b['diff']:+.1f} points "
        f"(95% CI {100 * b['low']:+.1f} to {100 * b['high']:+.1f}, p = {b['p_value']:.4f}) → {verdict} at 5%"
        + ("" if c["same_prompts"] else " · note: the prompts differ (chat template or protocol settings)"),
    ])
