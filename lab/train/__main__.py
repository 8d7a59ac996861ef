"""Command line for training: `python -m lab.train --config cfg.json` or flags named after TrainConfig's fields.

  python -m lab.train --dataset ../shared/data/gsm8k/train.jsonl --max-rows 300 --max-steps 30 --max-length 256
  python -m lab.train --config cfg.json --check        # validate the data and print a preview, train nothing
  python -m lab.train --resume LAB_HOME/runs/<run>     # continue a stopped or failed run from its last checkpoint
  python -m lab.train --list | --stop RUN_DIR

The job runs as a child process (lab.train.jobs) exactly as from the app; this command follows its metrics and
prints one line per logged step. Ctrl-C stops following, not the job (use --stop), unless --stop-on-exit is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from lab.train import jobs
from lab.train.config import TrainConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="JSON file with TrainConfig fields; flags given as well override it")
    p.add_argument("--check", action="store_true", help="validate and preview the data only")
    p.add_argument("--resume", metavar="RUN_DIR", help="resume a stopped or failed run")
    p.add_argument("--stop", metavar="RUN_DIR", help="stop a running job")
    p.add_argument("--list", action="store_true", help="list runs in LAB_HOME/runs")
    p.add_argument("--detach", action="store_true", help="start the job and return at once")
    p.add_argument("--stop-on-exit", action="store_true", help="Ctrl-C stops the job too")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            p.add_argument(flag, dest=f.name, type=kind, default=None, help=f"default {f.default!r}"
                           if f.default is not MISSING else None)
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> TrainConfig:
    data = json.loads(Path(args.config).read_text()) if args.config else {}
    data.update({f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None})
    return TrainConfig.from_dict(data)


def check(cfg: TrainConfig) -> int:
    """Validate and preview the data as the worker will see it; exit code 0 when it would train."""
    from transformers import AutoTokenizer

    from lab.models.registry import resolve_model
    from lab.train import data

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(cfg.model))
    rows = data.load_rows(cfg.dataset, cfg.dataset_split, cfg.dataset_config, cfg.max_rows)
    examples, report = data.prepare(rows, cfg.method, cfg.data_format, tokenizer, cfg.max_length)
    print(report.summary())
    for pv in data.preview(examples, tokenizer, n=2, max_length=cfg.max_length):
        print(f"\n== {pv.title}: {pv.n_tokens} tokens, {pv.n_loss_tokens} carry the loss (between [[ ]]) ==")
        print("".join(f"[[{text}]]" if loss else text for text, loss in pv.segments))
    return 0 if examples and (report.ok or cfg.drop_bad_rows) else 1


def format_record(r: dict) -> str:
    parts = [f"step {r.get('step', '?')}/{r.get('max_steps', '?')}"]
    for key, fmt in (("loss", "loss {:.4f}"), ("learning_rate", "lr {:.2e}"), ("rewards/margins", "margin {:.3f}"),
                     ("rewards/accuracies", "acc {:.2f}"), ("tokens_per_s", "{:.0f} tok/s"),
                     ("eta_s", "ETA {:.0f}s"), ("peak_mem_gb", "peak {:.2f} GB")):
        if isinstance(r.get(key), (int, float)):
            parts.append(fmt.format(r[key]))
    return "  ".join(parts)


def follow(run_dir: Path, stop_on_exit: bool) -> int:
    print(f"run folder: {run_dir}", flush=True)
    try:
        for st, records in jobs.follow(run_dir):
            for r in records:
                print(format_record(r) if "event" not in r else f"[{r['event']}] {json.dumps(r)}", flush=True)
    except KeyboardInterrupt:
        if stop_on_exit:
            print(jobs.stop(run_dir).describe())
        return 130
    print(st.describe())
    if st.state == "failed":
        print(st.log_tail, file=sys.stderr)
    return 0 if st.state == "finished" else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for st in jobs.list_runs():
            print(st.describe())
        return 0
    if args.stop:
        print(jobs.stop(Path(args.stop)).describe())
        return 0
    if args.resume:
        run_dir = jobs.resume(Path(args.resume))
    else:
        cfg = build_config(args)
        if args.check:
            return check(cfg)
        run_dir = jobs.start(cfg)
    return 0 if args.detach else follow(run_dir, args.stop_on_exit)


if __name__ == "__main__":
    raise SystemExit(main())
