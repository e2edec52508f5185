"""Embedding-request latency per version (p50 / p95 / p99, throughput) and its ratio to the baseline.

Percentiles use numpy's default linear interpolation (Hyndman & Fan type 7, the same as
``statistics.quantiles(method="inclusive")``).  A version whose every vector came from the cache
made no requests: its latency is *not measured* (``measured`` False), never zero, and the latency
gate says so instead of passing.  Latencies of two versions are only comparable at the same batch
size and concurrency; ``comparable`` is False (with the reason) when they differ.

>>> s = latency_summary(np.array([0.1, 0.2, 0.3, 0.4]), throughput=20.0)
>>> round(s.p50, 3), s.n_requests, s.measured
(0.25, 4, True)
>>> latency_summary(np.zeros(0)).measured
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evalkit.errors import DataError


@dataclass(frozen=True)
class LatencySummary:
    """One version's request latencies in seconds; NaN when nothing was measured."""

    n_requests: int
    p50: float
    p95: float
    p99: float
    mean: float
    throughput: float | None = None  # texts per second
    batch_size: int | None = None
    concurrency: int | None = None

    @property
    def measured(self) -> bool:
        return self.n_requests > 0


@dataclass(frozen=True)
class LatencyComparison:
    """Both versions' latency summaries and candidate / baseline ratios (NaN if not measured)."""

    baseline: LatencySummary
    candidate: LatencySummary
    p50_ratio: float
    p95_ratio: float
    p99_ratio: float
    throughput_ratio: float
    comparable: bool
    note: str = ""

    @property
    def measured(self) -> bool:
        return self.baseline.measured and self.candidate.measured


def latency_summary(
    latencies_s: np.ndarray,
    throughput: float | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
) -> LatencySummary:
    """Percentiles of per-request latencies (seconds)."""
    x = np.asarray(latencies_s, dtype=np.float64).ravel()
    bad = ~np.isfinite(x) | (x < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"request latency {i + 1} is {x[i]}",
            row=i + 1,
            field="latencies_s",
            expected="finite non-negative seconds",
        )
    if x.size == 0:
        nan = math.nan
        return LatencySummary(0, nan, nan, nan, nan, throughput, batch_size, concurrency)
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return LatencySummary(
        x.size,
        float(p50),
        float(p95),
        float(p99),
        float(x.mean()),
        throughput,
        batch_size,
        concurrency,
    )


def _ratio(candidate: float | None, baseline: float | None) -> float:
    if candidate is None or baseline is None or not baseline > 0 or math.isnan(candidate):
        return math.nan
    return float(candidate / baseline)


def compare_latency(baseline: LatencySummary, candidate: LatencySummary) -> LatencyComparison:
    """Candidate / baseline ratios, and whether the two were measured under the same load."""
    notes = []
    if baseline.batch_size != candidate.batch_size:
        notes.append(f"batch size {baseline.batch_size} vs {candidate.batch_size}")
    if baseline.concurrency != candidate.concurrency:
        notes.append(f"concurrency {baseline.concurrency} vs {candidate.concurrency}")
    return LatencyComparison(
        baseline=baseline,
        candidate=candidate,
        p50_ratio=_ratio(candidate.p50, baseline.p50),
        p95_ratio=_ratio(candidate.p95, baseline.p95),
        p99_ratio=_ratio(candidate.p99, baseline.p99),
        throughput_ratio=_ratio(candidate.throughput, baseline.throughput),
        comparable=not notes,
        note="; ".join(notes),
    )
