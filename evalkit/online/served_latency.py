"""Served latency per arm (one value per request): percentiles and the p95 ratio's percentile
bootstrap, each replicate drawn as multinomial counts over :data:`BINS` quantile bins of the
pooled requests, so it costs O(bins) whatever the traffic.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, b = rng.gamma(4, 10, 20_000), rng.gamma(4, 12, 20_000)
>>> s = latency_summary(a, b, seed=1)
>>> round(s.ratio, 2), s.ci_low < s.ratio < s.ci_high
(1.2, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Quantile bins of the pooled latencies the bootstrap draws counts over.
BINS = 8192
QUANTILES = (50.0, 95.0, 99.0)


@dataclass(frozen=True)
class LatencySummary:
    """p50 / p95 / p99 per arm (ms), the p95 ratio and its bootstrap interval."""

    control: dict[str, float]
    treatment: dict[str, float]
    ratio: float
    ci_low: float
    ci_high: float
    n_control: int
    n_treatment: int
    resamples: int


def _p95_of_counts(counts: np.ndarray, tops: np.ndarray) -> np.ndarray:
    """Per replicate (row of ``counts``): the top of the bin where 95% of the mass is reached."""
    cum = np.cumsum(counts, axis=1)
    target = 0.95 * cum[:, -1:]
    idx = (cum < target).sum(axis=1)
    return tops[np.minimum(idx, tops.size - 1)]


def latency_summary(
    control_ms: np.ndarray,
    treatment_ms: np.ndarray,
    *,
    n_resamples: int = 1000,
    seed: int = 42,
    confidence: float = 0.95,
) -> LatencySummary:
    """Percentiles per arm and the p95 ratio (treatment / control) with its interval (NaN when
    an arm has fewer than 2 requests)."""
    a = np.asarray(control_ms, dtype=np.float64)
    b = np.asarray(treatment_ms, dtype=np.float64)
    pct = {
        name: dict(zip(("p50", "p95", "p99"), np.percentile(x, QUANTILES).tolist()))
        if x.size
        else dict.fromkeys(("p50", "p95", "p99"), math.nan)
        for name, x in (("control", a), ("treatment", b))
    }
    ratio = pct["treatment"]["p95"] / pct["control"]["p95"] if pct["control"]["p95"] else math.nan
    low = high = math.nan
    resamples = n_resamples if a.size >= 2 and b.size >= 2 and n_resamples >= 1 else 0
    if resamples:
        pooled = np.concatenate([a, b])
        tops = np.unique(np.quantile(pooled, np.linspace(0, 1, BINS + 1)[1:], method="higher"))
        rng = np.random.default_rng(seed)
        reps = []
        for x in (a, b):
            counts = np.bincount(np.searchsorted(tops, x, side="left"), minlength=tops.size)
            share = counts / counts.sum()
            reps.append(_p95_of_counts(rng.multinomial(x.size, share, size=n_resamples), tops))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = reps[1] / reps[0]
        ratios = ratios[np.isfinite(ratios)]
        if ratios.size:
            tail = (1.0 - confidence) / 2.0
            low, high = (float(q) for q in np.quantile(ratios, [tail, 1.0 - tail]))
    return LatencySummary(
        pct["control"], pct["treatment"], ratio, low, high, a.size, b.size, resamples
    )
