"""Formatting of saved results: table filters and search, details, comparison text, and the chart's bars."""

import subprocess
import sys

import pytest

from lab.eval import report

RECORDS = [
    {"id": 3, "question": "What is the capital of France?", "prompt": "P3", "target": "B", "extracted": "B",
     "correct": True, "subject": "geography", "category": "social sciences", "generation": "",
     "loglikelihoods": [-2.0, -0.5, -3.0, -4.0]},
    {"id": 1, "question": "2+2?", "prompt": "P1", "target": "A", "extracted": None, "correct": False,
     "subject": "math", "category": "STEM", "generation": "I do not know"},
]


def test_rows_filter_and_search():
    assert [r[0] for r in report.question_rows(RECORDS)] == [1, 3]
    assert [r[0] for r in report.question_rows(RECORDS, show="right")] == [3]
    assert [r[0] for r in report.question_rows(RECORDS, show="no answer")] == [1]
    assert [r[0] for r in report.question_rows(RECORDS, search="FRANCE")] == [3]
    assert [r[0] for r in report.question_rows(RECORDS, search="not know")] == [1]
    with pytest.raises(ValueError, match="show must be"):
        report.question_rows(RECORDS, show="maybe")


def test_details_show_prompt_output_and_verdict():
    text = report.details_markdown(RECORDS[0])
    assert "✓ right" in text and "P3" in text and "B: -0.5000" in text and "social sciences" in text
    assert "✗ wrong" in report.details_markdown(RECORDS[1])


def test_chart_has_one_bar_per_category_and_subject():
    summary = {"per_category": [{"group": "STEM", "correct": 1, "n": 2, "accuracy": 0.5, "low": 0.1, "high": 0.9}],
               "per_subject": [{"group": "college_math", "correct": 1, "n": 2, "accuracy": 0.5, "low": 0.1,
                                "high": 0.9}]}
    fig = report.score_figure(summary)
    assert list(fig.data[0].y) == ["STEM", "college math"]


def test_compare_text_names_the_verdict():
    block = {"correct": 5, "n": 10, "accuracy": 0.5, "ci95": [0.2, 0.8]}
    c = {"run_a": "a", "run_b": "b", "a": block, "b": block, "n_paired": 10, "fixed": [1], "broken": [2],
         "mcnemar_p": 1.0, "bootstrap": {"diff": 0.0, "low": -0.2, "high": 0.2, "p_value": 1.0}, "same_prompts": True}
    assert "no significant difference" in report.compare_markdown(c)


def test_lab_eval_does_not_import_gradio():
    code = ("import sys, lab.eval.runner, lab.eval.report, lab.eval.results, lab.eval.__main__; "
            "assert 'gradio' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
