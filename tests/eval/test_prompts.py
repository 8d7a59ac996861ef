"""Prompt rendering against prompts written out by hand, and the few-shot choices each protocol makes."""

import random

import pytest

from lab.eval import gsm8k, mmlu

ROW = {"id": 7, "subject": "high_school_physics", "question": " What is 2+2? ", "choices": ["3", "4", "5", "22"],
       "answer": 1}


def test_harness_mmlu_zero_shot():
    expected = (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:"
    )
    assert mmlu.harness_prompt(ROW, []) == expected
    assert mmlu.PROTOCOLS["harness-0shot"].continuations == (" A", " B", " C", " D")  # the space is on the letter


def test_harness_mmlu_with_shots():
    shot = {"id": 1, "subject": "high_school_physics", "question": "Unit of force?", "choices": ["N", "J", "W", "Pa"],
            "answer": 0}
    expected = (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "Unit of force?\nA. N\nB. J\nC. W\nD. Pa\nAnswer: A\n\n"
        "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:"
    )
    assert mmlu.harness_prompt(ROW, [shot]) == expected


def test_seed_mmlu_prompt():
    expected = (
        "Answer the following multiple choice question about high school physics. Respond with a single sentence of "
        'the form "The correct answer is _", filling the blank with the letter corresponding to the correct answer '
        "(i.e., A, B, C or D).\n\nQuestion: What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:"
    )
    assert mmlu.seed_prompt(ROW) == expected


def _rows(n, subject="s"):
    return [{"id": i, "subject": subject, "question": f"q{i}", "choices": list("wxyz"), "answer": i % 4}
            for i in range(n)]


def test_mmlu_shots_from_test_exclude_the_question():
    test = _rows(8)
    items = mmlu.prepare([test[2]], mmlu.PROTOCOLS["harness-5shot"], None, test)
    assert items[0].extra["shot_ids"] == [0, 1, 3, 4, 5]
    assert items[0].target == "C"


def test_mmlu_shots_from_dev_when_present():
    dev = [dict(r, id=100 + r["id"]) for r in _rows(6)]
    items = mmlu.prepare([_rows(3)[2]], mmlu.PROTOCOLS["harness-5shot"], dev, _rows(3))
    assert items[0].extra["shot_ids"] == [100, 101, 102, 103, 104]


def test_mmlu_too_few_shots_is_an_error():
    with pytest.raises(ValueError, match="few-shot candidates"):
        mmlu.prepare(_rows(3), mmlu.PROTOCOLS["harness-5shot"], None, _rows(3))


def test_categories_cover_the_57_subjects():
    assert len(mmlu.SUBJECT_CATEGORY) == 57
    assert mmlu.category_of("college_physics") == "STEM"
    assert mmlu.category_of("philosophy") == "humanities"
    assert mmlu.category_of("sociology") == "social sciences"
    assert mmlu.category_of("virology") == "other"


def test_gsm8k_harness_prompt():
    shots = [{"question": "1+1?", "answer": "1+1=2\n#### 2"}, {"question": "2*3?", "answer": "2*3=6\n#### 6"}]
    row = {"id": 0, "question": "3-1?", "answer": "#### 2"}
    expected = "Question: 1+1?\nAnswer: 1+1=2\n#### 2\n\nQuestion: 2*3?\nAnswer: 2*3=6\n#### 6\n\nQuestion: 3-1?\nAnswer:"
    assert gsm8k.harness_prompt(row, shots) == expected


def test_gsm8k_shots_replay_the_harness_draws():
    rnd = random.Random(1234)
    first_three = [rnd.sample(range(50), 5) for _ in range(3)]
    draws = gsm8k.harness_shot_ids([0, 2], 50)
    assert draws == {0: first_three[0], 2: first_three[2]}  # a question keeps its draw in any subset


def test_gsm8k_prepare_targets_and_stop():
    train = [{"id": i, "question": f"t{i}", "answer": f"#### {i}"} for i in range(10)]
    rows = [{"id": 0, "question": "q", "answer": "so\n#### 1,200"}]
    item = gsm8k.prepare(rows, gsm8k.PROTOCOLS["harness-5shot"], train)[0]
    assert item.target == "1200" and item.prompt.endswith("Question: q\nAnswer:")
    assert item.prompt.count("Question:") == 6
    assert gsm8k.PROTOCOLS["harness-5shot"].stop == ("Question:", "</s>", "<|im_end|>")
    seed = gsm8k.prepare(rows, gsm8k.PROTOCOLS["seed-0shot"], None)[0]
    assert seed.prompt == "q"


def test_gsm8k_scoring_both_filters():
    item = gsm8k.prepare([{"id": 0, "question": "q", "answer": "#### 18"}], gsm8k.PROTOCOLS["seed-0shot"], None)[0]
    harness = gsm8k.score_generation(item, " 9 * 2 = 18 dollars.", gsm8k.PROTOCOLS["harness-5shot"])
    assert harness == {"extracted": "[invalid]", "correct": False, "extracted_flexible": "18", "correct_flexible": True}
    assert gsm8k.score_generation(item, "She makes $18.00.", gsm8k.PROTOCOLS["seed-0shot"])["correct"]
