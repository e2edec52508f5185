"""Paired significance tests of a candidate against the baseline, per metric, with their intervals.

:func:`compare_metrics` tests each metric's per-query differences by ``student`` (paired t) or
``fisher`` (Fisher's randomization test, exact when ``2**n <= permutations``), each with the
interval that inverts it.  The method: docs/explanation/statistics.md ("Quality calls").

>>> base = {"ndcg@10": {"q1": 0.2, "q2": 0.4, "q3": 0.6, "q4": 0.5}}
>>> cand = {"ndcg@10": {"q1": 0.3, "q2": 0.5, "q3": 0.6, "q4": 0.7}}
>>> [m] = compare_metrics(base, cand, ["ndcg@10"], test="student", n_bootstrap=200)
>>> round(m.delta, 3), (m.wins, m.ties, m.losses), m.test
(0.1, (3, 1, 0), 'student')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from evalkit.compare import intervals
from evalkit.compare.bootstrap import bootstrap_mean_ci
from evalkit.compare.intervals import DualTest, sign_blocks
from evalkit.compare.multiplicity import Adjusted, fixed_sequence
from evalkit.compare.multiplicity import holm as holm
from evalkit.errors import ConfigError, DataError

TESTS = ("student", "fisher")
TEST_LABELS = {
    "student": "paired Student t-test (two-sided)",
    "fisher": "Fisher randomization test (two-sided)",
}


@dataclass(frozen=True)
class MetricComparison:
    """One metric, candidate against baseline: ``delta`` (B - A), raw and corrected p, and the
    interval at ``ci_confidence`` (agreeing with ``p_corrected``), kept inside [-1, 1]."""

    metric: str
    test: str
    n_queries: int
    baseline_mean: float
    candidate_mean: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    p_corrected: float
    correction: str
    wins: int
    ties: int
    losses: int
    baseline_ci: tuple[float, float] = (math.nan, math.nan)
    candidate_ci: tuple[float, float] = (math.nan, math.nan)
    ci_confidence: float = math.nan
    family: str = "all"
    procedure: str = ""
    sd: float = math.nan  # standard deviation of the per-query differences

    @property
    def alpha(self) -> float:
        """The level the p-values are read at (``1 - confidence``)."""
        return 1.0 - self.confidence


def check_test(test: str) -> str:
    if test not in TESTS:
        raise ConfigError(f"compare.test={test!r} is unknown (expected one of {', '.join(TESTS)})")
    return test


def student_t_test(baseline: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Two-sided paired t-test p-values, column by column of ``(n_queries, n_metrics)`` arrays."""
    b = np.atleast_2d(np.asarray(baseline, dtype=np.float64).T).T
    c = np.atleast_2d(np.asarray(candidate, dtype=np.float64).T).T
    out = np.full(b.shape[1], np.nan)
    if b.shape[0] < 2:
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.atleast_1d(stats.ttest_rel(c, b, axis=0, alternative="two-sided").pvalue)
    out[:] = p
    identical = np.all(c == b, axis=0)
    out[identical] = 1.0
    return out


def fisher_randomization_test(
    baseline: np.ndarray, candidate: np.ndarray, permutations: int = 1000, seed: int = 42
) -> np.ndarray:
    """Two-sided Fisher randomization p-values, column by column of ``(n_queries, n_metrics)``."""
    if permutations < 1:
        raise ConfigError(f"compare.permutations={permutations} must be >= 1")
    b = np.atleast_2d(np.asarray(baseline, dtype=np.float64).T).T
    c = np.atleast_2d(np.asarray(candidate, dtype=np.float64).T).T
    d = c - b  # (n, m)
    n, m = d.shape
    if n < 1:
        return np.full(m, np.nan)
    observed = np.abs(d.sum(axis=0))
    tolerance = 1e-9 * np.abs(d).sum(axis=0)
    hits = np.zeros(m, dtype=np.int64)
    total = 0
    for swap in sign_blocks(n, permutations, seed):
        signs = 1.0 - 2.0 * swap  # swap -> -1
        permuted = np.abs(signs @ d)  # (rows, m)
        hits += np.count_nonzero(permuted >= observed - tolerance, axis=0)
        total += swap.shape[0]
    return hits / total


def paired_tests(
    baseline: np.ndarray,
    candidate: np.ndarray,
    *,
    test: str = "student",
    permutations: int = 1000,
    seed: int = 42,
) -> list[DualTest]:
    """One :class:`~evalkit.compare.intervals.DualTest` per column of ``(n_queries, n_metrics)``
    (``fisher``: the same sign assignments for every column).

    >>> [t] = paired_tests(np.array([[0.2], [0.4], [0.6]]), np.array([[0.3], [0.5], [0.8]]))
    >>> round(t.p_value, 3), t.procedure
    (0.057, 'paired t')
    """
    check_test(test)
    b = np.atleast_2d(np.asarray(baseline, dtype=np.float64).T).T
    c = np.atleast_2d(np.asarray(candidate, dtype=np.float64).T).T
    d = c - b
    if test == "student":
        return [intervals.student(d[:, j]) for j in range(d.shape[1])]
    if permutations < 1:
        raise ConfigError(f"compare.permutations={permutations} must be >= 1")
    signs = intervals.sign_matrix(d.shape[0], permutations, seed) if d.shape[0] else None
    return [
        intervals.randomization(d[:, j], permutations, seed, signs=signs) for j in range(d.shape[1])
    ]


def clip_interval(low: float, high: float, bounds: tuple[float, float]) -> tuple[float, float]:
    """An interval kept inside the range a difference can take (NaN stays NaN)."""
    lo, hi = bounds
    return (
        low if math.isnan(low) else min(max(low, lo), hi),
        high if math.isnan(high) else min(max(high, lo), hi),
    )


def aligned_scores(
    baseline: Mapping[str, Mapping[str, float]],
    candidate: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str],
    query_ids: Sequence[str] | None = None,
    *,
    names: tuple[str, str] = ("baseline", "candidate"),
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Both versions' per-query scores as ``(n_queries, n_metrics)`` arrays on the baseline's
    queries of the first metric; a query only one version scored is a ``DataError``."""
    if not metrics:
        raise ConfigError("no metrics to compare (expected e.g. metrics=[ndcg@10])")
    for side, per_query in zip(names, (baseline, candidate)):
        missing = [m for m in metrics if m not in per_query]
        if missing:
            raise DataError(
                f"{side} has no per-query values for {', '.join(missing)}",
                field="per_query",
                expected=f"per-query values for every compared metric ({', '.join(metrics)})",
            )
    first = baseline[metrics[0]]
    ids = list(first) if query_ids is None else [q for q in query_ids if q in first]
    b = np.empty((len(ids), len(metrics)))
    c = np.empty((len(ids), len(metrics)))
    for j, m in enumerate(metrics):
        for side, per_query, arr in ((names[0], baseline, b), (names[1], candidate, c)):
            values = per_query[m]
            try:
                arr[:, j] = [values[q] for q in ids]
            except KeyError as err:
                raise DataError(
                    f"{side} has no {m} value for query {err.args[0]!r} that the baseline scored; "
                    "the versions were not evaluated on the same queries",
                    field=f"per_query[{m!r}]",
                    expected="both versions scored on the same queries",
                ) from None
        extra = len(candidate[m]) - len(baseline[m])
        if query_ids is None and extra > 0:
            raise DataError(
                f"{names[1]} scored {extra} more queries on {m} than {names[0]}; "
                "the versions were not evaluated on the same queries",
                field=f"per_query[{m!r}]",
                expected="both versions scored on the same queries",
            )
    return ids, b, c


#: The range of a difference of two metrics in [0, 1]: every interval is kept inside it.
DIFFERENCE_RANGE = (-1.0, 1.0)


def metric_comparisons(
    metrics: Sequence[str],
    b: np.ndarray,
    c: np.ndarray,
    adjusted: Mapping[str, Adjusted],
    *,
    test: str,
    correction: str,
    confidence: float,
    n_bootstrap: int = 1000,
    seed: int = 42,
    tie_tolerance: float = 1e-12,
) -> list[MetricComparison]:
    """:class:`MetricComparison` rows from aligned scores and the family-corrected tests."""
    n, m = b.shape
    d = c - b
    boot = bootstrap_mean_ci(
        np.concatenate([b, c], axis=1), n_resamples=n_bootstrap, seed=seed, confidence=confidence
    )
    wins = np.count_nonzero(d > tie_tolerance, axis=0)
    losses = np.count_nonzero(d < -tie_tolerance, axis=0)
    with np.errstate(invalid="ignore"):
        b_mean = b.mean(axis=0) if n else np.full(m, np.nan)
        c_mean = c.mean(axis=0) if n else np.full(m, np.nan)
        sd = d.std(axis=0, ddof=1) if n > 1 else np.full(m, np.nan)
    out = []
    for j, metric in enumerate(metrics):
        a = adjusted[metric]
        low, high = clip_interval(a.ci_low, a.ci_high, DIFFERENCE_RANGE)
        out.append(
            MetricComparison(
                metric=metric,
                test=test,
                n_queries=n,
                baseline_mean=float(b_mean[j]),
                candidate_mean=float(c_mean[j]),
                delta=float(c_mean[j] - b_mean[j]),
                ci_low=low,
                ci_high=high,
                confidence=confidence,
                p_value=a.p_value,
                p_corrected=a.p_adjusted,
                correction="none" if a.family == "primary" else correction,
                wins=int(wins[j]),
                ties=int(n - wins[j] - losses[j]),
                losses=int(losses[j]),
                baseline_ci=(float(boot.low[j]), float(boot.high[j])),
                candidate_ci=(float(boot.low[m + j]), float(boot.high[m + j])),
                ci_confidence=a.confidence,
                family=a.family,
                procedure=a.procedure,
                sd=float(sd[j]),
            )
        )
    return out


def compare_metrics(
    baseline: Mapping[str, Mapping[str, float]],
    candidate: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str],
    *,
    test: str = "student",
    permutations: int = 1000,
    seed: int = 42,
    correction: str = "holm",
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    query_ids: Sequence[str] | None = None,
    tie_tolerance: float = 1e-12,
    primary: str | None = None,
) -> list[MetricComparison]:
    """One :class:`MetricComparison` per metric of ``{metric: {query_id: value}}`` (``primary``:
    tested alone, the others corrected among themselves)."""
    check_test(test)
    ids, b, c = aligned_scores(baseline, candidate, metrics, query_ids)
    tests = paired_tests(b, c, test=test, permutations=permutations, seed=seed)
    adjusted = fixed_sequence(
        dict(zip(metrics, tests)), primary=primary, alpha=1.0 - confidence, correction=correction
    )
    return metric_comparisons(
        metrics,
        b,
        c,
        adjusted,
        test=test,
        correction=correction,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        seed=seed,
        tie_tolerance=tie_tolerance,
    )
