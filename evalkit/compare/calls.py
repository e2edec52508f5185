"""Quality calls: is the candidate better, no worse, or worse than the baseline on a metric?

:func:`call` reads the two-sided interval ``[low, high]`` of the paired difference B - A against
a non-inferiority ``margin``: ``better`` (``low > 0``, and the test agrees), ``no_worse``
(``low > -margin``), ``worse`` (``high < 0`` and ``low <= -margin``), else ``inconclusive``.
The calls: docs/explanation/statistics.md ("Quality calls").

>>> call(0.10, 0.06, 0.14, margin=0.01), call(0.002, -0.004, 0.008, margin=0.01)
(<Quality.BETTER: 'better'>, <Quality.NO_WORSE: 'no_worse'>)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

from evalkit.compare.power import QueryPlan


class Quality(StrEnum):
    BETTER = "better"
    NO_WORSE = "no_worse"
    WORSE = "worse"
    INCONCLUSIVE = "inconclusive"

    @property
    def shown_no_worse(self) -> bool:
        return self in (Quality.BETTER, Quality.NO_WORSE)


def call(
    delta: float,
    low: float,
    high: float,
    *,
    margin: float = 0.01,
    p_value: float | None = None,
    alpha: float = 0.05,
) -> Quality:
    """The call of a difference with interval ``[low, high]``; ``p_value >= alpha`` caps it at
    ``no_worse``."""
    if any(x is None or math.isnan(x) for x in (delta, low, high)):
        return Quality.INCONCLUSIVE
    if low > 0 and (p_value is None or math.isnan(p_value) or p_value < alpha):
        return Quality.BETTER
    if low > -margin:
        return Quality.NO_WORSE
    if high < 0:
        return Quality.WORSE
    return Quality.INCONCLUSIVE


def worst_quality(statuses: list[Quality]) -> Quality:
    """The least favourable status: worse > inconclusive > no_worse > better.

    >>> worst_quality([Quality.BETTER, Quality.NO_WORSE])
    <Quality.NO_WORSE: 'no_worse'>
    """
    order = [Quality.WORSE, Quality.INCONCLUSIVE, Quality.NO_WORSE, Quality.BETTER]
    return next((q for q in order if q in statuses), Quality.NO_WORSE)


def bonferroni_confidence(confidence: float, n_comparisons: int) -> float:
    """Per-interval confidence for ``n_comparisons`` intervals to hold jointly at ``confidence``."""
    return 1.0 - (1.0 - confidence) / max(1, int(n_comparisons))


def t_interval(differences: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided paired t-interval of the mean of ``differences`` (NaN for fewer than two)."""
    d = np.asarray(differences, dtype=np.float64).ravel()
    n = d.size
    if n < 2:
        return math.nan, math.nan
    mean = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(n)
    if se == 0.0:
        return mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * se
    return mean - half, mean + half


@dataclass(frozen=True)
class QualityCall:
    """One metric's call: the difference, its interval at ``confidence`` (agreeing with
    ``p_corrected``), the p-values and the status; ``note``: why the status overrides it."""

    metric: str
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    p_corrected: float
    status: Quality
    margin: float
    baseline: float = math.nan
    candidate: float = math.nan
    confidence: float = 0.95
    family: str = "primary"
    tested: bool = True
    n_queries: int = 0
    queries_needed: int | None = None
    queries_in_set: int | None = None
    plan: QueryPlan | None = None
    note: str = ""

    def to_dict(self) -> dict:
        def clean(x: float) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return {
            "metric": self.metric,
            "baseline": clean(self.baseline),
            "candidate": clean(self.candidate),
            "delta": clean(self.delta),
            "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high),
            "p": clean(self.p_value),
            "p_corrected": clean(self.p_corrected),
            "margin": self.margin,
            "status": str(self.status),
            "ci_confidence": clean(self.confidence),
            "family": self.family,
            "tested": self.tested,
            "n_queries": self.n_queries,
            "queries_needed": self.queries_needed,
            "queries_needed_for": self.plan.call if self.plan else None,
            "queries_needed_low": self.plan.low if self.plan else None,
            "queries_needed_high": self.plan.high if self.plan else None,
            "note": self.note or None,
        }

    def ci_label(self) -> str:
        """``95% CI`` or ``Holm-adjusted 98.3% CI``."""
        pct = f"{100 * self.confidence:.3g}%"
        adjusted = self.family != "primary" and not math.isclose(
            self.p_value, self.p_corrected, rel_tol=0, abs_tol=0
        )
        return f"{'Holm-adjusted ' if adjusted else ''}{pct} CI"

    def describe(self) -> str:
        """``ndcg@10 +0.1000 [95% CI +0.0600, +0.1400], p=7.8e-13`` (or ``p=0.01, Holm p=0.03``)."""
        if math.isnan(self.p_value):
            p = "p n/a"
        elif self.p_corrected != self.p_value and not math.isnan(self.p_corrected):
            p = f"p={self.p_value:.2g}, Holm p={self.p_corrected:.2g}"
        else:
            p = f"p={self.p_value:.2g}"
        return (
            f"{self.metric} {self.delta:+.4f} [{self.ci_label()} {_bound(self.ci_low)}, "
            f"{_bound(self.ci_high)}], {p}"
        )


def _bound(x: float) -> str:
    if math.isinf(x):
        return "-inf" if x < 0 else "+inf"
    return f"{x:+.4f}"


STATUS_TEXT = {
    Quality.BETTER: "better",
    Quality.NO_WORSE: "no worse",
    Quality.WORSE: "worse",
    Quality.INCONCLUSIVE: "inconclusive",
}
