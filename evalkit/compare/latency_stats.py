"""Embedding-request latency per version (p50 / p95 / p99, throughput) and its ratio to the
baseline.  A version that made no requests is *not measured*, never zero; versions at different
batch size, concurrency or backend kind are not ``comparable``.  Method and gate:
docs/explanation/statistics.md ("Behaviour change"), docs/explanation/verdict.md.

>>> s = latency_summary(np.array([0.1, 0.2, 0.3, 0.4]), throughput=20.0)
>>> round(s.p50, 3), s.n_requests, s.measured, latency_summary(np.zeros(0)).measured
(0.25, 4, True, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evalkit.embed.latency_store import format_age
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
    kind: str | None = None  # "in-process" | "http" (backend_kind), None if unknown
    retries: int = 0  # requests that failed and were retried while these were timed
    reused_age_s: float | None = None  # reused from a probe this old (latency.max_age_s)

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
    p95_ratio_ci_low: float = math.nan  # bootstrap interval of p95_ratio (p95_ratio_ci)
    p95_ratio_ci_high: float = math.nan
    confidence: float = 0.95

    @property
    def measured(self) -> bool:
        return self.baseline.measured and self.candidate.measured

    @property
    def retry_note(self) -> str:
        """ "" when no timed request was retried, else what the p95 was measured with."""
        counts = (("baseline", self.baseline.retries), ("candidate", self.candidate.retries))
        parts = [f"{n} {who} request(s) retried" for who, n in counts if n]
        if not parts:
            return ""
        return f"measured with retries: {', '.join(parts)} (the p95 times successful attempts only)"

    @property
    def reuse_note(self) -> str:
        """ "" when the latencies were measured in this run, else where they come from."""
        ages = [
            s.reused_age_s for s in (self.baseline, self.candidate) if s.reused_age_s is not None
        ]
        if not ages:
            return ""
        return (
            f"reused from a probe {format_age(max(ages))} ago on this machine (latency.max_age_s)"
        )


_KIND_LABEL = {"in-process": "in-process model", "http": "HTTP server"}


def _checked(latencies_s: np.ndarray) -> np.ndarray:
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
    return x


def latency_summary(
    latencies_s: np.ndarray,
    throughput: float | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
    kind: str | None = None,
    retries: int = 0,
    reused_age_s: float | None = None,
) -> LatencySummary:
    """Percentiles of per-request latencies (seconds)."""
    x = _checked(latencies_s)
    p50, p95, p99, mean = (math.nan,) * 4
    if x.size:
        p50, p95, p99 = (float(p) for p in np.percentile(x, [50, 95, 99]))
        mean = float(x.mean())
    return LatencySummary(
        x.size,
        p50,
        p95,
        p99,
        mean,
        throughput,
        batch_size,
        concurrency,
        kind,
        retries,
        reused_age_s,
    )


def p95_ratio_ci(
    baseline_s: np.ndarray,
    candidate_s: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 42,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of p95(candidate) / p95(baseline), each version resampled
    independently; NaN with fewer than 2 requests, no resamples or a resampled p95 of 0."""
    b, c = _checked(baseline_s), _checked(candidate_s)
    if b.size < 2 or c.size < 2 or n_resamples <= 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    pb = np.percentile(b[rng.integers(0, b.size, (n_resamples, b.size))], 95, axis=1)
    pc = np.percentile(c[rng.integers(0, c.size, (n_resamples, c.size))], 95, axis=1)
    if not (pb > 0).all():
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(pc / pb, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _ratio(candidate: float | None, baseline: float | None) -> float:
    if candidate is None or baseline is None or not baseline > 0 or math.isnan(candidate):
        return math.nan
    return float(candidate / baseline)


def compare_latency(
    baseline: LatencySummary,
    candidate: LatencySummary,
    *,
    baseline_s: np.ndarray | None = None,
    candidate_s: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 42,
    confidence: float = 0.95,
) -> LatencyComparison:
    """Candidate / baseline ratios and whether both were measured under the same load."""
    notes = []
    if baseline.kind and candidate.kind and baseline.kind != candidate.kind:
        b, c = (_KIND_LABEL.get(k, k) for k in (baseline.kind, candidate.kind))
        notes.append(f"{b} vs {c}")
    if baseline.batch_size != candidate.batch_size:
        notes.append(f"batch size {baseline.batch_size} vs {candidate.batch_size}")
    if baseline.concurrency != candidate.concurrency:
        notes.append(f"concurrency {baseline.concurrency} vs {candidate.concurrency}")
    low = high = math.nan
    if baseline_s is not None and candidate_s is not None:
        low, high = p95_ratio_ci(baseline_s, candidate_s, n_resamples, seed, confidence)
    return LatencyComparison(
        baseline=baseline,
        candidate=candidate,
        p50_ratio=_ratio(candidate.p50, baseline.p50),
        p95_ratio=_ratio(candidate.p95, baseline.p95),
        p99_ratio=_ratio(candidate.p99, baseline.p99),
        throughput_ratio=_ratio(candidate.throughput, baseline.throughput),
        comparable=not notes,
        note="; ".join(notes),
        p95_ratio_ci_low=low,
        p95_ratio_ci_high=high,
        confidence=confidence,
    )
