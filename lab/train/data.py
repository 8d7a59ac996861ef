"""Training data: load, recognise the format, validate row by row, convert to trl's formats, preview the loss mask.

Accepted row formats (the names in FORMATS):
- `instruction`: `instruction`, optional `input`, `output` (Alpaca); `qa`: `question`, `answer` (GSM8K);
- `prompt_completion`: trl's prompt-completion rows, strings or message lists;
- `messages`: a conversation whose last message is the assistant's answer (the loss is on that last answer);
- `preference`: trl's paired rows `prompt`/`chosen`/`rejected` (strings or message lists: the chat arena's export);
- `unpaired`: trl's `prompt`/`completion`/`label` (the arena's "both bad" export). DPO needs pairs, so rows of one
  prompt with opposite labels are paired; SFT trains on the `label: true` ones.
Everything becomes trl's *conversational* prompt-completion (SFT) or prompt/chosen/rejected (DPO) rows, so trl applies
the model's chat template and computes the loss on the completion only. `preview` rebuilds that mask exactly as trl's
SFT/DPO tokenisation does (tokenise the prompt with the generation prompt, then prompt + completion; the loss starts
where the two diverge).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("instruction", "qa", "prompt_completion", "messages", "preference", "unpaired")
ROLES = ("system", "user", "assistant")
_KEYS = [  # (format, columns that identify it), most specific first
    ("preference", {"chosen", "rejected"}),
    ("unpaired", {"prompt", "completion", "label"}),
    ("prompt_completion", {"prompt", "completion"}),
    ("messages", {"messages"}),
    ("instruction", {"instruction", "output"}),
    ("qa", {"question", "answer"}),
]


@dataclass
class Problem:
    """One thing wrong with one row; `row` counts from 1 (the line number of a JSONL file)."""

    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass
class DataReport:
    """What validation found: the format, the row counts and every problem with its row number."""

    data_format: str
    n_rows: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def bad_rows(self) -> set[int]:
        return {p.row for p in self.problems}

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, limit: int = 50) -> str:
        head = f"{self.n_rows} rows, format '{self.data_format}': "
        if self.ok:
            return head + "no problems found."
        lines = [head + f"{len(self.problems)} problem(s) in {len(self.bad_rows)} row(s)."]
        lines += [str(p) for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more")
        return "\n".join(lines)


def load_rows(source: str, split: str = "train", config: str | None = None, limit: int = 0) -> list[dict]:
    """Rows of a local file (.jsonl/.json/.parquet/.csv) or a hub dataset, in order. A JSONL line that is not valid
    JSON becomes {'__error__': reason} so row numbers stay equal to line numbers and validation can report it."""
    path = Path(source).expanduser()
    if path.suffix == ".jsonl":
        rows = _read_jsonl(path, limit)
    elif path.suffix == ".json":
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError:  # JSON lines saved as .json
            rows = _read_jsonl(path, limit)
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of row objects (or one JSON object per line)")
        rows = [r if isinstance(r, dict) else {"__error__": "row is not a JSON object"} for r in rows]
    elif path.exists() or path.suffix in (".parquet", ".csv"):
        import datasets

        if not path.exists():
            raise FileNotFoundError(f"dataset file not found: {path}")
        kind = {".parquet": "parquet", ".csv": "csv"}.get(path.suffix)
        if kind is None:
            raise ValueError(f"{path}: unsupported file type; use .jsonl, .json, .parquet or .csv")
        rows = list(datasets.load_dataset(kind, data_files=str(path), split="train"))
    else:
        import datasets

        rows = list(datasets.load_dataset(source, config, split=split))
    return rows[:limit] if limit else rows


def _read_jsonl(path: Path, limit: int) -> list[dict]:
    rows = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                rows.append({"__error__": "empty line"})
            else:
                try:
                    row = json.loads(line)
                    rows.append(row if isinstance(row, dict) else {"__error__": "line is not a JSON object"})
                except json.JSONDecodeError as exc:
                    rows.append({"__error__": f"invalid JSON ({exc.msg} at column {exc.colno})"})
            if limit and len(rows) >= limit:
                break
    return rows


def detect_format(rows: list[dict]) -> str:
    """The format the first valid rows share; an error naming the accepted column sets otherwise."""
    for row in rows[:20]:
        if "__error__" not in row:
            for name, keys in _KEYS:
                if keys <= set(row):
                    return name
    expected = "; ".join(f"{n}: {sorted(k)}" for n, k in _KEYS)
    seen = sorted(next((r for r in rows if "__error__" not in r), {}))
    raise ValueError(f"could not recognise the data format from columns {seen}; expected one of: {expected}")


def _as_messages(value, role: str) -> list[dict]:
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def to_example(row: dict, data_format: str) -> dict:
    """One row as trl conversational data: {'prompt', 'completion'} or {'prompt', 'chosen', 'rejected'}."""
    if data_format == "instruction":
        text = row["instruction"] + (f"\n\n{row['input']}" if str(row.get("input") or "").strip() else "")
        return {"prompt": _as_messages(text, "user"), "completion": _as_messages(row["output"], "assistant")}
    if data_format == "qa":
        return {"prompt": _as_messages(row["question"], "user"), "completion": _as_messages(row["answer"], "assistant")}
    if data_format == "messages":
        return {"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}
    if data_format == "preference":
        chosen = _as_messages(row["chosen"], "assistant")
        prompt = row.get("prompt")
        if prompt is None:  # trl's implicit-prompt rows: the shared conversation prefix is the prompt
            prompt, chosen = chosen[:-1], chosen[-1:]
            rejected = _as_messages(row["rejected"], "assistant")[-1:]
        else:
            rejected = _as_messages(row["rejected"], "assistant")
        return {"prompt": _as_messages(prompt, "user"), "chosen": chosen, "rejected": rejected}
    return {"prompt": _as_messages(row["prompt"], "user"), "completion": _as_messages(row["completion"], "assistant")}


def _check_messages(messages, what: str, last_role: str | None) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return [f"{what} must be a non-empty list of messages"]
    errors = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            errors.append(f"{what}[{i}] must be a {{'role', 'content'}} message")
        elif m["role"] not in ROLES:
            errors.append(f"{what}[{i}] has role {m['role']!r}; allowed roles: {', '.join(ROLES)}")
        elif m["role"] == "system" and i > 0:
            errors.append(f"{what}[{i}] is a system message after the start; only the first message may be 'system'")
        elif not str(m["content"] or "").strip():
            errors.append(f"{what}[{i}] ({m['role']}) has empty content")
    if not errors and last_role and messages[-1]["role"] != last_role:
        errors.append(f"{what} must end with a '{last_role}' message; it ends with '{messages[-1]['role']}'")
    return errors


def check_row(row: dict, data_format: str) -> list[str]:
    """Everything wrong with one row, as messages (empty when the row is usable)."""
    if "__error__" in row:
        return [row["__error__"]]
    missing = [k for k in dict(_KEYS)[data_format] if row.get(k) is None]
    if missing:
        return [f"missing field(s) {missing}"]
    if data_format == "unpaired" and not isinstance(row["label"], bool):
        return [f"label must be true or false; got {row['label']!r}"]
    if data_format == "messages" and not isinstance(row["messages"], list):
        return ["messages must be a list of {'role', 'content'} messages"]
    try:
        ex = to_example(row, data_format)
    except (TypeError, KeyError, IndexError, AttributeError) as exc:
        return [f"malformed row ({type(exc).__name__}: {exc})"]
    errors = _check_messages(ex["prompt"], "prompt", "user")
    turns = [m for m in ex["prompt"] if isinstance(m, dict) and m.get("role") != "system"] if not errors else []
    if turns and turns[0]["role"] != "user":
        errors.append("the conversation must start with a 'user' turn (after an optional system message)")
    for key in ("completion", "chosen", "rejected"):
        if key in ex:
            errors += _check_messages(ex[key], key, "assistant")
    if data_format == "preference" and not errors and ex["chosen"] == ex["rejected"]:
        errors.append("chosen and rejected are identical")
    return errors


def _token_lengths(example: dict, tokenizer) -> list[int]:
    return [
        len(tokenizer.apply_chat_template(example["prompt"] + example[k], tokenize=True, return_dict=True)["input_ids"])
        for k in ("completion", "chosen", "rejected")
        if k in example
    ]


def validate(rows: list[dict], data_format: str = "auto", tokenizer=None, max_length: int = 0) -> DataReport:
    """Check every row; with a tokenizer and max_length, also flag examples longer than max_length tokens."""
    fmt = detect_format(rows) if data_format == "auto" else data_format
    report = DataReport(fmt, len(rows))
    for i, row in enumerate(rows, start=1):
        errors = check_row(row, fmt)
        if not errors and tokenizer is not None and max_length:
            longest = max(_token_lengths(to_example(row, fmt), tokenizer))
            if longest > max_length:
                errors.append(f"{longest} tokens with the chat template, longer than max_length {max_length}")
        report.problems += [Problem(i, e) for e in errors]
    return report


def _pair_unpaired(examples: list[tuple[int, dict, bool]]) -> tuple[list[dict], list[Problem]]:
    """Pair label-true with label-false completions of the same prompt (in file order) into DPO rows."""
    groups: dict[str, tuple[list, list]] = {}
    for row_no, ex, label in examples:
        groups.setdefault(json.dumps(ex["prompt"], sort_keys=True), ([], []))[0 if label else 1].append((row_no, ex))
    pairs, problems = [], []
    for good, bad in groups.values():
        for (_, g), (_, b) in zip(good, bad):
            pairs.append({"prompt": g["prompt"], "chosen": g["completion"], "rejected": b["completion"]})
        for row_no, _ in good[len(bad) :] + bad[len(good) :]:
            problems.append(Problem(row_no, "no completion with the opposite label for this prompt: DPO needs a pair"))
    return pairs, problems


def prepare(rows: list[dict], method: str, data_format: str = "auto", tokenizer=None, max_length: int = 0):
    """Validate and convert rows for `method` ('sft' or 'dpo'): (examples, report). The report also lists rows the
    method cannot use (preference rows become SFT rows on `chosen`; unpaired rows are paired for DPO)."""
    report = validate(rows, data_format, tokenizer, max_length)
    fmt, bad = report.data_format, report.bad_rows
    good = [(i, to_example(r, fmt), r.get("label")) for i, r in enumerate(rows, start=1) if i not in bad]
    if method == "dpo" and fmt == "unpaired":
        examples, problems = _pair_unpaired(good)
        report.problems += problems
    elif method == "dpo":
        examples = [ex for _, ex, _ in good if "chosen" in ex]
        report.problems += [Problem(i, "not a preference pair; DPO needs chosen/rejected") for i, ex, _ in good
                            if "chosen" not in ex]
    else:
        examples = []
        for i, ex, label in good:
            if label is False:
                report.problems.append(Problem(i, "label false: a rejected answer is no SFT target"))
            else:
                examples.append({"prompt": ex["prompt"], "completion": ex.get("completion", ex.get("chosen"))})
    report.problems.sort(key=lambda p: p.row)
    return examples, report


@dataclass
class Preview:
    """One rendered example: (text, carries_loss) segments in order, as the trainer will see it."""

    title: str
    segments: list[tuple[str, bool]]
    n_tokens: int
    n_loss_tokens: int


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def render(prompt: list[dict], completion: list[dict], tokenizer, title: str, max_length: int = 0) -> Preview:
    """Tokenise as trl does and mark the tokens that carry the loss (those after the prompt, up to max_length)."""
    p_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
    f_ids = tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)["input_ids"]
    start = _common_prefix(p_ids["input_ids"], f_ids)
    end = min(len(f_ids), max_length) if max_length else len(f_ids)
    segments: list[tuple[str, bool]] = []
    for lo, hi, loss in ((0, min(start, end), False), (start, end, True), (end, len(f_ids), False)):
        if hi > lo:
            text = tokenizer.decode(f_ids[lo:hi])
            segments.append((text if lo < end else f"[cut at max_length]{text}", loss))
    return Preview(title, segments, len(f_ids), max(0, end - start))


def preview(examples: list[dict], tokenizer, n: int = 3, max_length: int = 0) -> list[Preview]:
    """The first n converted examples rendered with the chat template (chosen and rejected separately for DPO)."""
    out = []
    for i, ex in enumerate(examples[:n], start=1):
        for key in ("completion", "chosen", "rejected"):
            if key in ex:
                title = f"example {i}" + ("" if key == "completion" else f" ({key})")
                out.append(render(ex["prompt"], ex[key], tokenizer, title, max_length))
    return out
