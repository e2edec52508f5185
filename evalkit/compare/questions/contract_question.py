"""Does B keep its contracts, and at what cost?  The vector contract, endpoint checks and
latency gates of one comparison.

>>> from evalkit.compare.gate_rules import GateConfig
>>> from evalkit.compare.compare_settings import CompareSettings
>>> from evalkit.results import VersionResult
>>> pq = {"ndcg@10": {"q1": 0.5}}
>>> a, b = VersionResult("a", {}, {}, pq, None), VersionResult("b", {}, {}, pq, None)
>>> latency, gates = answer_contract(a, b, GateConfig(), CompareSettings(), checks=None)
>>> [(g.name, str(g.status)) for g in gates]
[('vector_contract', 'WARN'), ('endpoint_checks', 'WARN'), ('latency_p95_increase', 'WARN')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.gate_config import GateConfig
from evalkit.compare.gate_rules import (
    GateResult,
    gate_endpoint_checks,
    gate_latency_p95,
    gate_vector_contract,
)
from evalkit.compare.latency_stats import (
    LatencyComparison,
    compare_latency,
    latency_summary,
)
from evalkit.embed.latency_probe import backend_kind
from evalkit.results import VersionResult


def _vector_stats(v: VersionResult) -> dict[str, float]:
    return {k[len("vectors_") :]: float(x) for k, x in v.extra.items() if k.startswith("vectors_")}


def answer_contract(
    baseline: VersionResult,
    candidate: VersionResult,
    cfg: GateConfig,
    st: CompareSettings,
    checks: Sequence[Mapping[str, Any]] | None,
) -> tuple[LatencyComparison, list[GateResult]]:
    """The latency comparison and the contract gates (vector norms, endpoint checks, latency)."""
    latency = compare_latency(
        *(
            latency_summary(
                v.latencies_s,
                v.throughput,
                v.batch_size,
                v.concurrency,
                backend_kind(v.params),
                retries=int(v.extra.get("latency_probe_retries", 0) or 0),
                reused_age_s=v.extra.get("latency_probe_age_s"),
            )
            for v in (baseline, candidate)
        ),
        baseline_s=baseline.latencies_s,
        candidate_s=candidate.latencies_s,
        n_resamples=st.bootstrap,
        seed=st.seed,
        confidence=st.confidence,
    )
    gates = [
        gate_vector_contract(cfg, _vector_stats(baseline), _vector_stats(candidate)),
        gate_endpoint_checks(cfg, checks, candidate.name),
        gate_latency_p95(
            cfg,
            latency.p95_ratio,
            measured=latency.measured,
            comparable=latency.comparable,
            note=latency.note,
            ci_low=latency.p95_ratio_ci_low,
            ci_high=latency.p95_ratio_ci_high,
            in_process=latency.baseline.kind == latency.candidate.kind == "in-process",
            retried=latency.retry_note,
            reused=latency.reuse_note,
        ),
    ]
    return latency, gates
