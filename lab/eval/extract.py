"""Answer extraction: compiled regexes plus pure functions, one per protocol, tested on hand-written strings.

GSM8K, lm-evaluation-harness (tasks/gsm8k/gsm8k.yaml, v3.0), both filters reported:
- strict-match: `#### (\\-?[0-9\\.\\,]+)`, first match; no match gives "[invalid]".
- flexible-extract: `(-?[$0-9.,]{2,})|(-?[0-9]+)`, the *last* match, its first non-empty group.
Scoring is the harness's `exact_match` with `regexes_to_ignore` [",", "\\$", "(?s).*#### ", "\\.$"] and
`ignore_case`, applied to the prediction and to the full reference answer alike; after that they must be equal as
strings ("18.00" is not "18", exactly as the harness scores it).

GSM8K, the seed's zero-shot protocol: the final number in the generation, compared by value (commas, "$" and a
trailing "." dropped; 18.00 equals 18), because a chat answer ends with the number rather than "#### N".

MMLU, the seed's protocol: the letter from "The correct answer is (B)." and its common variants (no parentheses,
bold, "Answer: C", a bare leading "C." ...). Anything else counts as no answer, never as a guess.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

INVALID = "[invalid]"  # the harness's fallback when a regex finds nothing

GSM8K_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
GSM8K_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
HARNESS_IGNORE = [re.compile(p) for p in (",", r"\$", r"(?s).*#### ", r"\.$")]

# A number as people write it: optional sign and "$", digits with thousands commas, optional decimals.
NUMBER = re.compile(r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\$?\.\d+")

LETTERS = "ABCD"
# Order matters: the explicit sentence the seed prompt asks for first, then looser forms.
MMLU_PATTERNS = [
    re.compile(r"(?i:answer is)\s*:?\s*[\*\(\[\s]*([ABCD])(?![A-Za-z])"),
    re.compile(r"(?i:answer)\s*:\s*[\*\(\[\s]*([ABCD])(?![A-Za-z])"),
    re.compile(r"^[\s\*\(\[]*([ABCD])(?:[\)\]\.:\*]|\s*$)"),
    re.compile(r"(?i:option|choice)\s+\(?([ABCD])\)?(?![A-Za-z])"),
]


def gsm8k_strict(text: str) -> str:
    """The harness's strict-match filter: the number after the first '#### ', or "[invalid]"."""
    found = GSM8K_STRICT.findall(text)
    return found[0].strip() if found else INVALID


def gsm8k_flexible(text: str) -> str:
    """The harness's flexible-extract filter: the last number-like token, or "[invalid]"."""
    found = GSM8K_FLEXIBLE.findall(text)
    if not found:
        return INVALID
    groups = [g for g in found[-1] if g]
    return groups[0].strip() if groups else INVALID


def harness_normalize(text: str) -> str:
    """The harness's exact_match preprocessing: drop ',' '$' everything up to '#### ' and a final '.'; lower case."""
    for pattern in HARNESS_IGNORE:
        text = pattern.sub("", text)
    return text.lower()


def harness_match(prediction: str, reference_answer: str) -> bool:
    """Exact match as lm-evaluation-harness scores GSM8K (both sides normalized the same way)."""
    return harness_normalize(prediction) == harness_normalize(reference_answer)


def gsm8k_target(reference_answer: str) -> str:
    """The final number of a GSM8K reference solution ("... #### 1,234" -> "1234")."""
    return harness_normalize(reference_answer).strip()


def parse_number(text: str) -> Decimal | None:
    """A written number as a Decimal ("$1,234.50" -> 1234.50, "-3" -> -3); None when it is not a number."""
    cleaned = text.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def final_number(text: str) -> str | None:
    """The seed protocol's answer: the last number in the text, normalized ("1,234.00" -> "1234"); None if none."""
    found = NUMBER.findall(text)
    for candidate in reversed(found):
        value = parse_number(candidate)
        if value is not None:
            return format_number(value)
    return None


def format_number(value: Decimal) -> str:
    """Canonical text of a number: no exponent, no trailing zeros ("18.00" -> "18", "-0.50" -> "-0.5")."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def numbers_equal(prediction: str | None, target: str) -> bool:
    """Value equality of two written numbers; a missing prediction is wrong."""
    if prediction is None:
        return False
    a, b = parse_number(prediction), parse_number(target)
    return a is not None and b is not None and a == b


def mmlu_letter(text: str) -> str | None:
    """The answer letter A-D stated in a generation ("The correct answer is (B)." -> "B"); None if none is stated."""
    for pattern in MMLU_PATTERNS:
        match = pattern.search(text.strip())
        if match:
            return match.group(1)
    return None


def letter_of(index: int) -> str:
    """0..3 -> "A".."D" with a clear error for anything else."""
    if not 0 <= index < len(LETTERS):
        raise ValueError(f"MMLU answer index must be in [0, 3]; got {index}")
    return LETTERS[index]
