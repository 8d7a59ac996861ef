"""Statistics against known values: Wilson (Brown, Cai & DasGupta 2001 table), McNemar exact, bootstrap sanity."""

import numpy as np
import pytest

from lab.eval.stats import bootstrap_interval, group_accuracy, mcnemar_exact, paired_bootstrap, wilson_interval


def test_wilson_known_values():
    low, high = wilson_interval(81, 263)  # the classic example: 0.3080 with interval (0.2553, 0.3662)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    low, high = wilson_interval(0, 10)  # stays inside [0, 1] where the normal approximation would not
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="k <= n"):
        wilson_interval(5, 3)


def test_mcnemar_exact_known_values():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)  # 2 * 0.5**6
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)  # 2 * (1 + 10) / 2**10
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)


def test_bootstrap_interval_contains_mean_and_shrinks():
    rng = np.random.default_rng(0)
    x = np.array([1] * 30 + [0] * 70)
    low, high = bootstrap_interval(x, rng)
    assert low < 0.3 < high
    low2, high2 = bootstrap_interval(np.tile(x, 10), np.random.default_rng(0))
    assert high2 - low2 < (high - low) / 2


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    a = np.array([0] * 50 + [1] * 50)
    b = np.array([1] * 90 + [0] * 10)  # fixes 40 more than it breaks
    res = paired_bootstrap(a, b, np.random.default_rng(1))
    assert res["diff"] == pytest.approx(0.4) and res["low"] > 0 and res["p_value"] < 0.01
    same = paired_bootstrap(a, a, np.random.default_rng(1))
    assert same["diff"] == 0 and same["p_value"] == 1.0
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap([1, 0], [1], np.random.default_rng(0))


def test_group_accuracy():
    recs = [{"s": "x", "correct": True}, {"s": "x", "correct": False}, {"s": "y", "correct": True}]
    rows = group_accuracy(recs, lambda r: r["s"])
    assert [(r["group"], r["correct"], r["n"], r["accuracy"]) for r in rows] == [("x", 1, 2, 0.5), ("y", 1, 1, 1.0)]
