"""Uncertainty for eval scores: intervals for one accuracy, paired tests for two runs on the same questions.

- Wilson score interval (Wilson, 1927; Brown, Cai & DasGupta, 2001 recommend it over the normal approximation, which
  breaks near 0% and 100% accuracy, common for small models on GSM8K).
- Percentile bootstrap interval of a mean (Efron & Tibshirani, 1993), resampling questions with a passed-in Generator.
- McNemar's exact test (McNemar, 1947): only the discordant pairs carry information; under "no difference" the
  b questions fixed and c broken are Binomial(b + c, 1/2); two-sided p = min(1, 2 P[X <= min(b, c)]).
- Paired bootstrap of the accuracy difference (Koehn, 2004, for MT; Dror et al., 2018): resample questions, keep pairs.
- Per-group accuracy (MMLU subjects and the four categories) with Wilson intervals.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Iterable

import numpy as np
from scipy.stats import binom, norm


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n; (0, 1) when n == 0."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n; got k={k}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if n == 0:
        return 0.0, 1.0
    z = norm.ppf(0.5 + confidence / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(
    values, rng: np.random.Generator, n_boot: int = 2000, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (questions resampled with replacement)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return 0.0, 1.0
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def mcnemar_exact(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (wrong->right, right->wrong)."""
    if fixed < 0 or broken < 0:
        raise ValueError(f"counts must be >= 0; got fixed={fixed}, broken={broken}")
    n = fixed + broken
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * binom.cdf(min(fixed, broken), n, 0.5)))


def paired_bootstrap(
    a, b, rng: np.random.Generator, n_boot: int = 5000, confidence: float = 0.95
) -> dict:
    """Bootstrap of mean(b) - mean(a) over paired questions: the difference, its interval and a two-sided p-value."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples need equal lengths; got {x.size} and {y.size}")
    if x.size == 0:
        return {"diff": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0}
    d = y - x
    diffs = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    # p: how often the resampled difference lands on the other side of zero, doubled (percentile test).
    tail = min((diffs <= 0).mean(), (diffs >= 0).mean())
    return {
        "diff": float(d.mean()),
        "low": float(np.quantile(diffs, alpha)),
        "high": float(np.quantile(diffs, 1 - alpha)),
        "p_value": float(min(1.0, 2 * tail)),
    }


def group_accuracy(records: Iterable[dict], key: Callable[[dict], str], field: str = "correct") -> list[dict]:
    """Accuracy per group with a Wilson interval, sorted by group name."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        c = counts[key(r)]
        c[0] += bool(r.get(field))
        c[1] += 1
    rows = []
    for name in sorted(counts):
        k, n = counts[name]
        low, high = wilson_interval(k, n)
        rows.append({"group": name, "correct": k, "n": n, "accuracy": k / n, "low": low, "high": high})
    return rows
