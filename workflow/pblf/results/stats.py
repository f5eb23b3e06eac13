"""The statistics the tables, the benchmarks and the docs claim with, each with what it assumes.

* :func:`paired`: the paired t-test of two methods over the seeds they share. With common random numbers seed s of
  every method starts from the same weights and sees the same batches, so the seed is the pair. Its interval and p
  are conditional on the candidates compared: they measure retraining noise, not how another search would choose.
* :func:`holm`: Holm's step-down adjustment of a family of p-values (Holm 1979), so that "significant" holds for
  the family, not for the one comparison picked out of it.
* :func:`welch`: a difference of means without pairs (the thesis's runs, which say nothing of pairing).
* :func:`method_level`: whether a *method* beats Standard, over several searches (``search.repeats``): a claim about
  what the search chooses, which one search's retrains cannot support. See its docstring for the model.
* :func:`equivalence`: two one-sided tests (TOST, Schuirmann 1987) that a mean difference lies inside a margin
  stated in advance: how "as good as" is claimed here, never as "within one standard deviation".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

#: The confidence level of every interval (TOST's is 1 - 2 alpha: its two one-sided tests at alpha each).
CONFIDENCE = 0.95
#: The level of each of TOST's one-sided tests.
ALPHA = 0.05


def paired(first: dict[int, float], second: dict[int, float], prefix: str = "") -> dict[str, Any]:
    """The paired difference first - second over the seeds both have: its mean, the 95 % confidence interval and
    the two-sided p-value of the paired t-test, and the number of pairs (keys ``prefix`` + diff, ci_low, ci_high, p,
    n, all_equal). Undefined statistics are None: everything with no shared seed, the interval and p with one, and
    both when every difference is the same (``all_equal``: a t-test needs a spread)."""
    from scipy import stats

    seeds = sorted(set(first) & set(second))
    diffs = [first[s] - second[s] for s in seeds]
    result: dict[str, Any] = {"diff": statistics.mean(diffs) if diffs else None, "ci_low": None, "ci_high": None,
                              "p": None, "n": len(seeds), "all_equal": len(diffs) > 1 and len(set(diffs)) == 1}
    if len(diffs) > 1 and not result["all_equal"]:
        test = stats.ttest_rel([first[s] for s in seeds], [second[s] for s in seeds])
        interval = test.confidence_interval(CONFIDENCE)
        result.update(ci_low=float(interval.low), ci_high=float(interval.high), p=float(test.pvalue))
    return {prefix + key: value for key, value in result.items()}


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (Holm 1979) of a family of p-values, in their order; None (no test) stays None
    and is not counted in the family. The i-th smallest of m is multiplied by m - i + 1, kept monotone, capped at 1:
    it controls the family-wise error rate under any dependence between the tests."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted


def welch(first: Sequence[float], second: Sequence[float]) -> dict[str, float | None]:
    """The difference of means first - second with Welch's 95 % confidence interval (unpaired, unequal variances)."""
    from scipy import stats

    test = stats.ttest_ind(first, second, equal_var=False)
    interval = test.confidence_interval(CONFIDENCE)
    return {"diff": statistics.mean(first) - statistics.mean(second), "ci_low": float(interval.low),
            "ci_high": float(interval.high)}


def equivalence(differences: Sequence[float], margin: float, alpha: float = ALPHA) -> dict[str, Any]:
    """Whether the mean of ``differences`` lies within (-margin, margin): two one-sided t-tests (TOST), each at
    ``alpha``, of H0 mean <= -margin and of H0 mean >= margin; equivalence is shown when both are rejected, that is
    when the 1 - 2 alpha interval lies inside the margin. Returns n, the mean, its 95 % interval, the 1 - 2 alpha
    interval, the two one-sided p-values, their maximum (TOST's p) and the verdict. With every difference equal there
    is no spread to test with: the intervals are None and the verdict is whether that difference lies inside."""
    from scipy import stats

    if margin <= 0:
        raise ValueError(f"the equivalence margin {margin} must be positive")
    n = len(differences)
    if n < 2:
        raise ValueError(f"an equivalence test needs at least 2 differences, got {n}")
    mean = statistics.mean(differences)
    result: dict[str, Any] = {"n": n, "mean": mean, "margin": margin, "alpha": alpha}
    if len(set(differences)) == 1:
        inside = -margin < mean < margin
        return {**result, "ci95": None, "ci_tost": None, "p_lower": None, "p_upper": None,
                "p": 0.0 if inside else 1.0, "equivalent": inside, "all_equal": True}
    se = statistics.stdev(differences) / n ** 0.5
    t = stats.t(n - 1)
    half95, half_tost = t.ppf(1 - (1 - CONFIDENCE) / 2) * se, t.ppf(1 - alpha) * se
    p_lower = float(t.sf((mean + margin) / se))  # H0: mean <= -margin
    p_upper = float(t.cdf((mean - margin) / se))  # H0: mean >= margin
    return {**result, "ci95": [mean - half95, mean + half95], "ci_tost": [mean - half_tost, mean + half_tost],
            "p_lower": p_lower, "p_upper": p_upper, "p": max(p_lower, p_upper),
            "equivalent": max(p_lower, p_upper) < alpha, "all_equal": False}


def method_level(searches: dict[int, dict[int, float]], standard: dict[int, float]) -> dict[str, Any]:
    """The method-level difference to Standard over several searches: each search's choice is retrained with the
    repeat seeds, and ``searches`` maps each search to its Top-1 by seed, ``standard`` Standard's by seed.

    The model is a one-way random-effects model of the seed-paired differences d_rs = y_rs - standard_s: search r
    chose a candidate whose effect is mu + b_r (b_r ~ N(0, sigma_b^2): another search chooses another candidate),
    and its retrains scatter around that by the seed noise (sigma_w^2). For a balanced design (every search
    retrained with the same seeds) the exact interval for mu is the one-sample t interval over the S search means
    with S - 1 degrees of freedom: the variance of the grand mean is (sigma_w^2 + n sigma_b^2) / (S n), which the
    between-search mean square estimates without bias (Searle, Casella & McCulloch 1992, Variance Components,
    ch. 3; the "summary statistics" approach of Holmes & Friston 1998). It is used here rather than a bootstrap over
    searches because with the few searches a study affords (2 to 10) a bootstrap has too few distinct resamples to
    give a reliable interval, and this one is exact under the model, deterministic and checkable by hand.

    Returns the mean difference (``diff``), its 95 % interval and two-sided p (None with one search), the number of
    searches compared (``n``), ``all_equal`` when every search's mean difference is the same, and ``search_means``
    (each search's mean paired difference over the seeds it shares with Standard)."""
    from scipy import stats

    means = {}
    for search, by_seed in sorted(searches.items()):
        seeds = sorted(set(by_seed) & set(standard))
        if seeds:
            means[search] = statistics.mean(by_seed[s] - standard[s] for s in seeds)
    values = list(means.values())
    result: dict[str, Any] = {"diff": statistics.mean(values) if values else None, "ci_low": None, "ci_high": None,
                              "p": None, "n": len(values), "all_equal": len(values) > 1 and len(set(values)) == 1,
                              "search_means": means}
    if len(values) > 1 and not result["all_equal"]:
        test = stats.ttest_1samp(values, 0.0)
        interval = test.confidence_interval(CONFIDENCE)
        result.update(ci_low=float(interval.low), ci_high=float(interval.high), p=float(test.pvalue))
    return result
