"""The Train tab: choose method, data and settings, check the data, see the VRAM estimate, launch, watch, stop, resume.

Thin by design: the controls are named after `TrainConfig` fields and become one; `lab.train.data` validates and
previews; `lab.train.jobs` starts the child process and reads its folder. A `gr.Timer` polls the selected run's files,
so closing the browser does not stop a job and opening the tab again re-attaches to it. Finished adapters land in
LAB_HOME/runs/<run>/adapter, where the chat and eval model lists find them.
"""

from __future__ import annotations

import functools
import json

import gradio as gr

from lab.paths import lab_home
from lab.train import data, jobs
from lab.train import config as C
from lab.train.config import TrainConfig

POLL_S = 2.0


def _controls(ctx) -> dict:
    """One component per TrainConfig field the user sets, keyed by field name."""
    d = TrainConfig.__dataclass_fields__
    c = {}
    with gr.Row():
        c["model"] = gr.Textbox(ctx.model, label="Base model ('embedded', hub id or folder)")
        c["method"] = gr.Radio(list(C.METHODS), value="sft", label="Method")
        c["finetune"] = gr.Radio(list(C.FINETUNES), value="qlora", label="Fine-tuning")
    with gr.Row():
        c["dataset"] = gr.Textbox(label="Data: local .jsonl/.json/.parquet/.csv or hub name", scale=3)
        c["data_format"] = gr.Dropdown(["auto", *data.FORMATS], value="auto", label="Format")
        c["max_rows"] = gr.Number(0, precision=0, label="Use first N rows (0 = all)")
        c["drop_bad_rows"] = gr.Checkbox(False, label="Drop bad rows")
    with gr.Accordion("Hyper-parameters", open=False):
        with gr.Row():
            c["lora_r"] = gr.Number(d["lora_r"].default, precision=0, label="LoRA rank")
            c["lora_alpha"] = gr.Number(d["lora_alpha"].default, precision=0, label="LoRA alpha")
            c["lora_dropout"] = gr.Number(d["lora_dropout"].default, label="LoRA dropout")
            c["lora_targets"] = gr.Radio(list(C.TARGETS), value="attention", label="LoRA targets")
            c["base_adapter"] = gr.Dropdown([], value=None, allow_custom_value=True, label="Start from adapter")
        with gr.Row():
            c["learning_rate"] = gr.Number(d["learning_rate"].default, label="Learning rate")
            c["lr_schedule"] = gr.Dropdown(list(C.SCHEDULES), value="cosine", label="Schedule")
            c["num_epochs"] = gr.Number(1.0, label="Epochs")
            c["max_steps"] = gr.Number(0, precision=0, label="Max steps (0 = epochs)")
            c["optimizer"] = gr.Dropdown(list(C.OPTIMIZERS), value="adamw_torch", label="Optimizer")
        with gr.Row():
            c["batch_size"] = gr.Number(d["batch_size"].default, precision=0, label="Batch size")
            c["grad_accum"] = gr.Number(1, precision=0, label="Gradient accumulation")
            c["max_length"] = gr.Number(d["max_length"].default, precision=0, label="Max length (tokens)")
            c["gradient_checkpointing"] = gr.Checkbox(True, label="Gradient checkpointing")
            c["packing"] = gr.Checkbox(False, label="Packing (SFT)")
        with gr.Row():
            c["dpo_beta"] = gr.Number(0.1, label="DPO beta")
            c["dpo_loss"] = gr.Dropdown(list(C.DPO_LOSSES), value="sigmoid", label="DPO loss")
            c["seed"] = gr.Number(0, precision=0, label="Seed")
            c["save_steps"] = gr.Number(d["save_steps"].default, precision=0, label="Checkpoint every N steps")
            c["report_to"] = gr.Dropdown(list(C.REPORT_TO), value="none", label="Report to")
            c["name"] = gr.Textbox("", label="Run name")
    with gr.Accordion("Several GPUs (accelerate launch: FSDP or DeepSpeed ZeRO-3)", open=False):
        with gr.Row():
            c["num_gpus"] = gr.Number(1, precision=0, minimum=1, maximum=64, label="GPUs")
            c["strategy"] = gr.Radio(["none", "fsdp", "deepspeed-zero3"], value="none",
                                     label="Strategy (none = one GPU, or DDP copies)")
            c["offload_params"] = gr.Checkbox(False, label="Offload parameters to CPU")
            c["offload_optimizer"] = gr.Checkbox(False, label="Offload optimizer to CPU (ZeRO-3)")
    for key, component in c.items():
        component.elem_id = f"train-{key}"  # stable handles for browser tests
    return c


def _config(names: list[str], values) -> TrainConfig:
    """The TrainConfig the controls describe (ValueError names the bad field)."""
    kinds = {f: type(v.default) for f, v in TrainConfig.__dataclass_fields__.items()}
    raw = dict(zip(names, values))
    cfg = {}
    for k, v in raw.items():
        if kinds[k] is int and v is not None:
            v = int(v)
        elif kinds[k] is float and v is not None:
            v = float(v)
        cfg[k] = (v or None) if k == "base_adapter" else v
    return TrainConfig(**cfg)


def _prepared(cfg: TrainConfig):
    """(examples, report, tokenizer) for the data as the worker will see it."""
    from transformers import AutoTokenizer

    from lab.models.registry import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(cfg.model))
    rows = data.load_rows(cfg.dataset, cfg.dataset_split, cfg.dataset_config, cfg.max_rows)
    examples, report = data.prepare(rows, cfg.method, cfg.data_format, tokenizer, cfg.max_length)
    return examples, report, tokenizer


def _check(cfg: TrainConfig):
    """(validation report, preview segments) for the data as the worker will see it."""
    examples, report, tokenizer = _prepared(cfg)
    segments = []
    for pv in data.preview(examples, tokenizer, n=2, max_length=cfg.max_length):
        segments.append((f"\n── {pv.title}: {pv.n_tokens} tokens, {pv.n_loss_tokens} carry the loss ──\n", None))
        segments += [(text, "loss" if loss else None) for text, loss in pv.segments]
    return report.summary(), segments


PARTS = ("weights", "lora_params", "gradients", "optimizer_states", "activations", "logits", "overhead")


def _plan(cfg: TrainConfig):
    from lab.train import vram

    return vram.TrainPlan(
        finetune=cfg.finetune, method=cfg.method, lora_r=cfg.lora_r, lora_targets=cfg.lora_targets,
        lora_dropout=cfg.lora_dropout, batch_size=cfg.batch_size, max_length=cfg.max_length,
        gradient_checkpointing=cfg.gradient_checkpointing, optimizer=cfg.optimizer,
    )


def _vram(cfg: TrainConfig):
    """lab.train.vram's estimate for this config (from the model's config.json only) and its fit table."""
    from lab.models.registry import resolve_model
    from lab.train import vram

    est = vram.estimate(resolve_model(cfg.model), _plan(cfg))
    return est, vram.fit_table(est)


def _per_gpu_rows(cfg: TrainConfig) -> tuple[list[str], dict | None]:
    """Markdown rows and the per-GPU prediction when the run is spread over GPUs (lab.train.distributed)."""
    from lab.models.registry import resolve_model
    from lab.train.distributed import DistributedConfig, per_gpu_estimate

    dc = DistributedConfig.from_train_config(cfg)
    if not dc.distributed:
        return [], None
    per = per_gpu_estimate(resolve_model(cfg.model), _plan(cfg), dc)
    label = f"{dc.num_gpus} GPU(s), {dc.strategy}" + (", offload" if dc.offload_params or dc.offload_optimizer else "")
    return [f"| **per GPU ({label}): peak allocated** | **{per['total']:.2f}** |",
            f"| **per GPU: the card must hold** | **{per['device_total']:.2f}** |"], per


def _estimate_gb(cfg: TrainConfig) -> tuple[float, str]:
    """(predicted peak allocated GiB, markdown breakdown with fits per card)."""
    est, fits = _vram(cfg)
    rows = [f"| {k.replace('_', ' ')} | {getattr(est, k):.2f} |" for k in PARTS]
    rows += [f"| **peak allocated** (torch.cuda.max_memory_allocated) | **{est.total:.2f}** |",
             f"| + CUDA context, allocator cache, paged optimizer states | {est.device_total - est.total:.2f} |",
             f"| **the card must hold** | **{est.device_total:.2f}** |"]
    extra, per = _per_gpu_rows(cfg)
    rows += extra
    if per is not None:  # the fit table judges each GPU's share
        from lab.train import vram

        fits = {card: per["device_total"] <= gib for card, gib in vram.CARDS_GIB.items()}
    cards = [f"| {card} | {'fits' if ok else '**does not fit**'} |" for card, ok in fits.items()]
    return est.total, "\n".join(["| predicted | GiB |", "|---|---|", *rows, "", "| card | |", "|---|---|", *cards])


def _figure(records: list[dict]):
    """Loss (and eval loss), learning rate, DPO margins and accuracies against the step, as one plotly figure."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    by_step = {}
    for r in records:
        if "loss" in r or "eval_loss" in r:
            by_step.setdefault(r["step"], {}).update(r)  # a resumed run re-logs steps: the last record wins
    steps = sorted(by_step)
    dpo = any("rewards/margins" in r for r in by_step.values())
    fig = make_subplots(rows=1, cols=3 if dpo else 2, subplot_titles=["loss", "learning rate"] + (["DPO"] if dpo else []))
    series = [("loss", 1), ("eval_loss", 1), ("learning_rate", 2)]
    series += [("rewards/margins", 3), ("rewards/accuracies", 3)] if dpo else []
    for key, col in series:
        xs = [s for s in steps if key in by_step[s]]
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=[by_step[s][key] for s in xs], name=key, mode="lines+markers"), 1, col)
    fig.update_layout(height=320, margin=dict(l=40, r=10, t=30, b=30))
    return fig


def _summary(st: jobs.RunStatus, records: list[dict]) -> str:
    last = next((r for r in reversed(records) if "step" in r and "event" not in r), {})
    lines = [f"**{st.run_id}** · {st.state}" + (f" · exit code {st.returncode}" if st.returncode else "")]
    if last:
        parts = [f"step {last['step']}/{last.get('max_steps', '?')}"]
        for key, fmt in (("tokens_per_s", "{:.0f} tokens/s"), ("eta_s", "ETA {:.0f} s"),
                         ("peak_mem_gb", "measured peak {:.2f} GiB")):
            if isinstance(last.get(key), (int, float)):
                parts.append(fmt.format(last[key]))
        if "peak_mem_gb" in last:
            parts[-1] += " (GPU, allocated)" if last.get("device") == "cuda" else " (CPU, resident memory)"
        lines.append(" · ".join(parts))
    predicted = (st.config and _safe_estimate(st.config)) or None
    if predicted:
        lines.append(f"predicted GPU peak (allocated) {predicted:.2f} GiB")
    if st.state == "failed":
        lines.append(st.describe())
    if st.output:
        lines.append(f"adapter saved: `{st.output}` (listed in the chat and eval model pickers)")
    return "\n\n".join(lines)


@functools.lru_cache(maxsize=64)
def _cached_estimate(config_json: str) -> float | None:
    return _estimate_gb(TrainConfig.from_json(config_json))[0]


def _safe_estimate(config: dict) -> float | None:
    try:
        return _cached_estimate(json.dumps(config, sort_keys=True))
    except Exception:  # a config from an older lab, or a model whose config cannot be read offline
        return None


def _warn_if_too_big(cfg: TrainConfig) -> None:
    """A warning (the job still starts) when the estimate says the run will not fit the GPU present."""
    from lab.train import vram

    here = vram.present_gpu_gib()
    if cfg.device == "cpu" or here is None:
        return
    try:
        est, _ = _vram(cfg)
    except Exception as exc:  # no config reachable offline: launching is still the user's call
        gr.Warning(f"Could not estimate GPU memory ({exc}); launching anyway.")
        return
    _, per = _per_gpu_rows(cfg)
    need = per["device_total"] if per is not None else est.device_total
    if need > here:
        gr.Warning(f"Predicted {need:.1f} GiB will not fit this GPU ({here:.0f} GiB): expect an "
                   "out-of-memory crash; lower batch size or max length, or turn on gradient checkpointing / QLoRA.")


def _run_choices() -> list[str]:
    return [st.run_id for st in jobs.list_runs()]


def _exports() -> list[str]:
    folder = lab_home() / "exports"
    return sorted(str(p) for p in folder.rglob("*.jsonl")) if folder.is_dir() else []


def build(ctx) -> None:
    c = _controls(ctx)
    names = list(c)
    with gr.Row():
        exports = gr.Dropdown([], label="Arena exports in LAB_HOME (one click sets data and DPO)")
        check_btn = gr.Button("Check data")
        estimate_btn = gr.Button("Estimate VRAM")
    report = gr.Textbox(label="Validation", lines=6, max_lines=20, elem_id="train-report")
    preview = gr.HighlightedText(label="Preview (highlighted tokens carry the loss)", color_map={"loss": "green"})
    vram_md = gr.Markdown(elem_id="train-vram")
    with gr.Row():
        launch_btn = gr.Button("Launch", variant="primary", elem_id="train-launch")
        stop_btn = gr.Button("Stop", variant="stop")
        resume_btn = gr.Button("Resume")
        run_pick = gr.Dropdown([], label="Run", elem_id="train-run")
    status_md = gr.Markdown(elem_id="train-status")
    plot = gr.Plot(label="Curves", elem_id="train-plot")
    log = gr.Textbox(label="Log tail", lines=8, max_lines=20, elem_id="train-log")
    timer = gr.Timer(POLL_S)
    _wire(c, names, exports, check_btn, estimate_btn, report, preview, vram_md, launch_btn, stop_btn, resume_btn,
          run_pick, status_md, plot, log, timer)


def _wire(c, names, exports, check_btn, estimate_btn, report, preview, vram_md, launch_btn, stop_btn, resume_btn,
          run_pick, status_md, plot, log, timer) -> None:
    inputs = [c[n] for n in names]

    def on_check(*values):
        try:
            return _check(_config(names, values))
        except Exception as exc:  # bad settings or unreadable data: say what, keep the page usable
            return f"Cannot check the data: {exc}", []

    def on_estimate(*values):
        try:
            return _estimate_gb(_config(names, values))[1]
        except Exception as exc:
            return f"Cannot estimate: {exc}"

    def on_launch(*values):
        try:
            cfg = _config(names, values)
        except ValueError as exc:
            raise gr.Error(str(exc))
        try:
            _, report, _ = _prepared(cfg)
        except Exception as exc:  # unreadable data: nothing is launched
            raise gr.Error(f"Cannot read the data: {exc}")
        if not report.ok and not cfg.drop_bad_rows:
            raise gr.Error("Not launched, the data has problems (tick 'drop bad rows' to train on the rest):\n"
                           + report.summary(limit=10))
        _warn_if_too_big(cfg)
        try:
            run_dir = jobs.start(cfg)
        except (ValueError, RuntimeError) as exc:  # e.g. more GPUs asked for than this host has
            raise gr.Error(str(exc))
        return gr.update(choices=_run_choices(), value=run_dir.name)

    def on_tick(run_id, seen=None):
        """Redraw from the run's files; skipped while nothing in them changed (the timer fires every POLL_S)."""
        if not run_id:
            return gr.skip(), gr.skip(), gr.skip(), seen
        run_dir = jobs.runs_dir() / run_id
        st = jobs.status(run_dir)
        metrics, log_file = run_dir / "metrics.jsonl", run_dir / "log.txt"
        key = (run_id, st.state, *(f.stat().st_size if f.exists() else 0 for f in (metrics, log_file)))
        if key == seen:
            return gr.skip(), gr.skip(), gr.skip(), seen
        records = jobs.read_metrics(run_dir)
        return _summary(st, records), _figure(records), st.log_tail, key

    def on_load():
        runs = jobs.list_runs()
        active = next((r.run_id for r in runs if r.state == "running"), runs[0].run_id if runs else None)
        from lab.models.registry import list_adapters

        adapters = [a.path for a in list_adapters()]
        return gr.update(choices=[r.run_id for r in runs], value=active), gr.update(choices=_exports()), \
            gr.update(choices=adapters)

    def on_stop(run_id):
        if run_id:
            jobs.stop(jobs.runs_dir() / run_id)
        return on_tick(run_id)

    def on_resume(run_id):
        try:
            jobs.resume(jobs.runs_dir() / run_id)
        except (ValueError, TypeError) as exc:
            raise gr.Error(str(exc))
        return on_tick(run_id)

    seen = gr.State(None)
    outs = [status_md, plot, log, seen]
    check_btn.click(on_check, inputs, [report, preview])
    estimate_btn.click(on_estimate, inputs, vram_md)
    launch_btn.click(on_launch, inputs, run_pick)
    stop_btn.click(on_stop, run_pick, outs)
    resume_btn.click(on_resume, run_pick, outs)
    run_pick.change(on_tick, run_pick, outs)
    timer.tick(on_tick, [run_pick, seen], outs, show_progress="hidden")
    exports.select(lambda path: (path, "dpo"), exports, [c["dataset"], c["method"]])
    run_pick.focus(lambda: gr.update(choices=_run_choices()), None, run_pick)
    gr.on(None, on_load, None, [run_pick, exports, c["base_adapter"]])  # page load: re-attach to the newest run
