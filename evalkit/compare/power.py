"""The judged queries that would decide: the sample size of the call that can be reached.

:func:`plan_queries` powers the nearer call of an undecided primary by the one-sided t-test at
``alpha / 2``, with a range from the delta's central 50% t-interval.  The method:
docs/explanation/statistics.md ("The judgments that would decide").

>>> p = plan_queries(0.0171, 0.206, 35, margin=0.01, alpha=0.05, status="inconclusive")
>>> p.call, p.n, p.low, p.high
('no worse', 456, 131, 29499)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

MAX_QUERIES = 1_000_000  # no plan beyond this is printed ("more than a million")
RANGE_CONFIDENCE = 0.5  # the central interval of the delta whose ends give the planning range


@dataclass(frozen=True)
class QueryPlan:
    """Judged queries in all for ``call`` (``n``), and the range over the delta's uncertainty."""

    call: str  # no worse | worse | better
    n: int
    low: int
    high: int
    alpha: float  # the one-sided level the call tests at (alpha / 2)
    power: float
    range_confidence: float = RANGE_CONFIDENCE


def sample_size(effect: float, *, alpha: float, power: float = 0.8) -> int:
    """Pairs for a one-sided paired t-test at ``alpha`` to reach ``power`` at ``effect``
    (mean difference / sd); :data:`MAX_QUERIES` when it cannot within it."""
    if not math.isfinite(effect) or effect <= 0.0:
        return MAX_QUERIES
    from statsmodels.stats.power import TTestPower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            n = TTestPower().solve_power(
                effect_size=effect, nobs=None, alpha=alpha, power=power, alternative="larger"
            )
        except (ValueError, RuntimeError, ZeroDivisionError):
            return MAX_QUERIES
    n = float(n[0] if hasattr(n, "__len__") else n)
    if not math.isfinite(n) or n > MAX_QUERIES:
        return MAX_QUERIES
    return max(2, math.ceil(n))


def _effect(call: str, delta: float, sd: float, margin: float) -> float:
    if call == "no worse":
        return (delta + margin) / sd
    if call == "worse":
        return -delta / sd
    return delta / sd


def plan_queries(
    delta: float,
    sd: float,
    n_queries: int,
    *,
    margin: float = 0.01,
    alpha: float = 0.05,
    power: float = 0.8,
    status: str = "inconclusive",
    range_confidence: float = RANGE_CONFIDENCE,
) -> QueryPlan | None:
    """The plan for the call an ``inconclusive`` or ``no_worse`` primary can reach, or None."""
    if not (math.isfinite(delta) and math.isfinite(sd)) or sd <= 0.0:
        return None
    if status == "inconclusive":
        call = "no worse" if delta > -margin else "worse"
    elif status == "no_worse" and delta > 0.0:
        call = "better"
    else:
        return None
    one_sided = alpha / 2.0
    n = sample_size(_effect(call, delta, sd, margin), alpha=one_sided, power=power)
    lo_d, hi_d = _delta_range(delta, sd, n_queries, range_confidence)
    ends = sorted(
        sample_size(_effect(call, x, sd, margin), alpha=one_sided, power=power)
        for x in (lo_d, hi_d)
    )
    return QueryPlan(call, n, min(ends[0], n), max(ends[1], n), one_sided, power, range_confidence)


def _delta_range(delta: float, sd: float, n: int, confidence: float) -> tuple[float, float]:
    if n < 2:
        return delta, delta
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * sd / math.sqrt(n)
    return delta - half, delta + half


def queries_needed(
    delta: float, sd: float, *, alpha: float = 0.05, power: float = 0.8, margin: float = 0.01
) -> int | None:
    """Judged queries in all for the call an inconclusive primary can reach (None: no plan)."""
    plan = plan_queries(delta, sd, 2, margin=margin, alpha=alpha, power=power)
    return None if plan is None else plan.n


def show_count(n: int) -> str:
    """``1,234`` or ``more than a million``."""
    return "more than a million" if n >= MAX_QUERIES else f"{n:,}"
