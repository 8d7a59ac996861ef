"""Answer extraction on hand-written strings: the harness's GSM8K filters, the seed's final number, MMLU letters."""

import pytest

from lab.eval.extract import (
    INVALID,
    final_number,
    gsm8k_flexible,
    gsm8k_strict,
    gsm8k_target,
    harness_match,
    letter_of,
    mmlu_letter,
    numbers_equal,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("She makes 9 * 2 = $18 every day.\n#### 18", "18"),
        ("#### 1,234", "1,234"),
        ("#### -5", "-5"),
        ("#### 3.50\n\nQuestion: next", "3.50"),
        ("#### 7 and later #### 8", "7"),  # the first one counts
        ("The answer is 18.", INVALID),
        ("####18", INVALID),  # the harness wants the space
        ("#### $18", INVALID),
    ],
)
def test_strict(text, expected):
    assert gsm8k_strict(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("She makes 9 * 2 = $18 every day.", "$18"),
        ("So 16 - 3 - 4 = 9 eggs", "9"),  # single digits come from the second group
        ("Total: 1,234.", "1,234."),
        ("It costs -3 dollars", "-3"),
        ("I owe 2.5 and then 7", "7"),  # the last number counts
        ("no numbers here", INVALID),
        ("#### 42", "42"),
    ],
)
def test_flexible(text, expected):
    assert gsm8k_flexible(text) == expected


@pytest.mark.parametrize(
    "prediction, reference, same",
    [
        ("$18", "blah\n#### 18", True),
        ("1,234.", "x #### 1234", True),
        ("18.00", "#### 18", False),  # the harness compares strings
        ("-3", "#### -3", True),
        (INVALID, "#### 3", False),
        ("17", "#### 18", False),
    ],
)
def test_harness_match(prediction, reference, same):
    assert harness_match(prediction, reference) is same


def test_target_from_reference():
    assert gsm8k_target("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n#### 1,800") == "1800"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is 18.", "18"),
        ("She earns $1,234.50 in total", "1234.5"),
        ("So the result is -7", "-7"),
        ("That gives 18.00 dollars.", "18"),
        ("Between 3 and 4, the answer is 0.25.", "0.25"),
        ("first 12 then 1,000,000", "1000000"),
        ("no number", None),
        ("costs $ 5", "5"),
    ],
)
def test_final_number(text, expected):
    assert final_number(text) == expected


def test_numbers_equal_by_value():
    assert numbers_equal("18", "18.0")
    assert numbers_equal("1234", "1,234")
    assert not numbers_equal("17", "18")
    assert not numbers_equal(None, "18")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The correct answer is (B).", "B"),
        ("The correct answer is B.", "B"),
        ("The correct answer is: C", "C"),
        ("the correct answer is **D**", "D"),
        ("I think the answer is (A) because ...", "A"),
        ("Answer: C", "C"),
        ("B", "B"),
        ("(D)", "D"),
        ("A. Paris", "A"),
        ("C) 42", "C"),
        ("The best option is option B.", "B"),
        ("A good question; I am not sure.", None),  # an article, not an answer
        ("The correct answer is _", None),
        ("The answer is Among the options none fit", None),
        ("", None),
    ],
)
def test_mmlu_letter(text, expected):
    assert mmlu_letter(text) == expected


def test_letter_of():
    assert [letter_of(i) for i in range(4)] == ["A", "B", "C", "D"]
    with pytest.raises(ValueError, match="\\[0, 3\\]"):
        letter_of(4)
