"""MMLU (Hendrycks et al., 2021): 57 subjects of four-choice questions, under three protocols.

`seed-0shot` (generative; the seed project's protocol, which reports Qwen2.5-7B-Instruct at 68.64%): the instruction
below, then "Question:", the four lettered options and "Answer:", sent through the chat template by default (the seed
evaluated chat models); the letter is parsed from the reply ("The correct answer is (B).", see `extract.mmlu_letter`).
A reply with no letter is wrong, never a guess. 64 new tokens are plenty for one sentence.

`harness-0shot` and `harness-5shot` (log-likelihood; lm-evaluation-harness tasks/mmlu/default, v1.0):
    "The following are multiple choice questions (with answers) about {subject}.\n\n"
    + for each shot: "{question.strip()}\nA. {c0}\nB. {c1}\nC. {c2}\nD. {c3}\nAnswer: {letter}\n\n"
    + "{question.strip()}\nA. {c0}\nB. {c1}\nC. {c2}\nD. {c3}\nAnswer:"
and the prediction is the argmax over the log-likelihoods of the continuations " A", " B", " C", " D". Why each detail:
- the space belongs to the continuation, not the prompt: BPE tokenizers merge the space into the letter (" A" is one
  token, different from "A"), and the model saw "Answer: A" in the shots, so " A" is the natural next token;
- the subject in the header has underscores replaced by spaces, as the harness writes it;
- shots are the first five of the subject's dev split (the harness's first_n sampler). Offline copies have no dev
  split, so the shots are then the first five questions of the same subject in the test split with the question
  itself excluded (what the harness does when the few-shot split is the test split); the results say which;
- no chat template by default (base-model protocol); when chosen, the whole prompt becomes one user message.
"""

from __future__ import annotations

from lab.eval.extract import LETTERS, letter_of, mmlu_letter
from lab.eval.protocol import Item, Protocol

SEED_INSTRUCTION = (
    "Answer the following multiple choice question about {subject}. Respond with a single sentence of the form "
    '"The correct answer is _", filling the blank with the letter corresponding to the correct answer '
    "(i.e., A, B, C or D)."
)
HARNESS_HEADER = "The following are multiple choice questions (with answers) about {subject}.\n\n"

PROTOCOLS = {
    "seed-0shot": Protocol(
        "seed-0shot", "generate", 0, chat_template=True, max_new_tokens=64,
        summary="seed protocol: zero-shot instruction, letter parsed from 'The correct answer is _'",
    ),
    "harness-0shot": Protocol(
        "harness-0shot", "loglikelihood", 0, chat_template=False, continuations=tuple(f" {c}" for c in LETTERS),
        summary="lm-evaluation-harness mmlu: argmax log-likelihood of ' A'..' D', zero-shot",
    ),
    "harness-5shot": Protocol(
        "harness-5shot", "loglikelihood", 5, chat_template=False, continuations=tuple(f" {c}" for c in LETTERS),
        summary="lm-evaluation-harness mmlu: argmax log-likelihood of ' A'..' D', five shots from the same subject",
    ),
}

CATEGORIES = {
    "STEM": "abstract_algebra anatomy astronomy college_biology college_chemistry college_computer_science "
    "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
    "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
    "high_school_mathematics high_school_physics high_school_statistics machine_learning",
    "humanities": "formal_logic high_school_european_history high_school_us_history high_school_world_history "
    "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy prehistory "
    "professional_law world_religions",
    "social sciences": "econometrics high_school_geography high_school_government_and_politics "
    "high_school_macroeconomics high_school_microeconomics high_school_psychology human_sexuality "
    "professional_psychology public_relations security_studies sociology us_foreign_policy",
    "other": "business_ethics clinical_knowledge college_medicine global_facts human_aging management marketing "
    "medical_genetics miscellaneous nutrition professional_accounting professional_medicine virology",
}
# The standard subject -> category map (the harness's mmlu_{stem,humanities,social_sciences,other} groups).
SUBJECT_CATEGORY = {s: cat for cat, subjects in CATEGORIES.items() for s in subjects.split()}


def category_of(subject: str) -> str:
    """STEM, humanities, social sciences or other; 'other' for subjects outside the 57."""
    return SUBJECT_CATEGORY.get(subject, "other")


def pretty(subject: str) -> str:
    return subject.replace("_", " ")


def question_block(row: dict) -> str:
    """Question and lettered options ending in "Answer:" (the harness's doc_to_text)."""
    options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, row["choices"]))
    return f"{row['question'].strip()}{options}\nAnswer:"


def seed_prompt(row: dict) -> str:
    """The seed's zero-shot prompt: instruction, blank line, "Question: ...", options, "Answer:"."""
    options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, row["choices"]))
    instruction = SEED_INSTRUCTION.format(subject=pretty(row["subject"]))
    return f"{instruction}\n\nQuestion: {row['question'].strip()}{options}\nAnswer:"


def harness_prompt(row: dict, shots: list[dict]) -> str:
    """The harness prompt with the given worked examples (each ending in " {letter}\n\n")."""
    examples = "".join(f"{question_block(s)} {letter_of(s['answer'])}\n\n" for s in shots)
    return HARNESS_HEADER.format(subject=pretty(row["subject"])) + examples + question_block(row)


def by_subject(rows: list[dict] | None) -> dict[str, list[dict]] | None:
    """Rows grouped by subject, in split order (None stays None: no dev split)."""
    if rows is None:
        return None
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["subject"], []).append(r)
    return groups


def pick_shots(row: dict, k: int, dev: dict | None, test: dict) -> list[dict]:
    """First k of the subject's dev rows; without a dev split, first k same-subject test rows other than `row`."""
    if k == 0:
        return []
    pool = (dev if dev is not None else test).get(row["subject"], [])
    same = [r for r in pool[: k + 1] if dev is not None or r["id"] != row["id"]]
    if len(same) < k:
        raise ValueError(f"subject {row['subject']!r} has {len(same)} few-shot candidates; {k} needed")
    return same[:k]


def prepare(rows: list[dict], protocol: Protocol, dev: list[dict] | None, test: list[dict]) -> list[Item]:
    """Items for the selected rows; `dev`/`test` are the full splits the shots are drawn from."""
    dev_groups, test_groups = by_subject(dev), by_subject(test)
    items = []
    for row in rows:
        if protocol.kind == "generate":
            prompt, shot_ids = seed_prompt(row), []
        else:
            shots = pick_shots(row, protocol.shots, dev_groups, test_groups)
            prompt, shot_ids = harness_prompt(row, shots), [s["id"] for s in shots]
        extra = {"choices": list(row["choices"]), "shot_ids": shot_ids}
        items.append(Item(row["id"], prompt, letter_of(row["answer"]), row["question"], row["subject"], extra))
    return items


def fewshot_source(protocol: Protocol, dev: list[dict] | None) -> str:
    """The sentence saved with results saying where the shots came from."""
    if protocol.shots == 0:
        return "zero-shot"
    if dev is not None:
        return f"first {protocol.shots} questions of the subject's dev split (harness first_n)"
    return f"first {protocol.shots} same-subject questions of the test split, the question itself excluded (no dev split)"


def score_generation(item: Item, text: str) -> dict:
    """The stated letter against the target; no letter is wrong."""
    letter = mmlu_letter(text)
    return {"extracted": letter, "correct": letter == item.target}


def score_loglikelihoods(item: Item, lls: list[float]) -> dict:
    """Argmax of the letters' log-likelihoods; ties go to the first letter, as the harness's np.argmax does."""
    best = max(range(len(lls)), key=lambda i: lls[i])
    return {"extracted": LETTERS[best], "correct": LETTERS[best] == item.target, "loglikelihoods": lls}
