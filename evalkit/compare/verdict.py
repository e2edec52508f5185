"""The release verdict: compare every candidate version with the baseline and apply the gates.

This is what the pipeline calls once all versions are scored::

    verdict = compare_versions(baseline, candidates, data=data,
                               gates=GateConfig.from_mapping(cfg.gates, cfg.primary_metric),
                               settings=CompareSettings.from_mapping(cfg.compare),
                               checks=check_results)          # or None if checks were not run
    verdict.status, verdict.exit_code                          # e.g. (Status.BLOCK, 3)

A candidate's status is the worst of its gates (and of its slices' gates when
``gates.slices.affect_verdict`` is true); the verdict is the worst over candidates.  Versions
whose dataset fingerprints differ are refused with :class:`~evalkit.errors.FingerprintMismatch`.
A baseline rebuilt from an earlier MLflow run is an ordinary :class:`VersionResult`; whatever it
lacks (rankings, pair similarities, latencies) makes the matching gates "not measured".

>>> import numpy as np
>>> from evalkit.results import VersionResult
>>> pq = {"ndcg@10": {f"q{i}": i / 20 for i in range(20)}}
>>> a = VersionResult("a", {}, {"ndcg@10": 0.475}, pq, None)
>>> v = compare_versions(a, [a], checks=[])
>>> v.status, v.exit_code, v.candidates[0].metric("ndcg@10").delta
(<Status.WARN: 'WARN'>, 0, 0.0)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit.compare.drift import SimilarityDrift, align_pairs, similarity_drift
from evalkit.compare.fingerprint import check_fingerprints
from evalkit.compare.gates import (
    GateConfig,
    GateResult,
    Status,
    exit_code,
    gate_endpoint_checks,
    gate_latency_p95,
    gate_low_score_share,
    gate_mean_cosine_shift,
    gate_primary_metric,
    gate_top_k_agreement,
    worst,
)
from evalkit.compare.latency import LatencyComparison, compare_latency, latency_summary
from evalkit.compare.overlap import OverlapSummary, RankingOverlap, ranking_overlap
from evalkit.compare.regressions import Regression, worst_regressions
from evalkit.compare.significance import (
    TEST_LABELS,
    MetricComparison,
    check_test,
    compare_metrics,
)
from evalkit.compare.slices import Slice, query_slices
from evalkit.compare.unjudged import (
    UnjudgedAtK,
    UnjudgedSummary,
    judged_pairs_from_qrels,
    unjudged_at_k,
)
from evalkit.data.schema import EvalData
from evalkit.errors import ConfigError
from evalkit.results import VersionResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompareSettings:
    """How versions are compared (the ``compare`` config section)."""

    test: str = "student"
    permutations: int = 1000
    seed: int = 42
    correction: str = "holm"
    bootstrap: int = 1000
    confidence: float = 0.95
    regressions: int = 10
    regression_top_n: int = 5

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> CompareSettings:
        """Read ``cfg.compare`` (unknown keys such as ``baseline_run_id`` belong to other layers).

        >>> CompareSettings.from_mapping({"test": "fisher", "permutations": 500}).test
        'fisher'
        """
        cfg = dict(cfg or {})
        d = cls()
        try:
            out = cls(
                test=str(cfg.get("test", d.test)),
                permutations=int(cfg.get("permutations", d.permutations)),
                seed=int(cfg.get("seed", d.seed)),
                correction=str(cfg.get("correction", d.correction)),
                bootstrap=int(cfg.get("bootstrap", d.bootstrap)),
                confidence=float(cfg.get("confidence", d.confidence)),
                regressions=int(cfg.get("regressions", d.regressions)),
                regression_top_n=int(cfg.get("regression_top_n", d.regression_top_n)),
            )
        except (TypeError, ValueError) as err:
            raise ConfigError(f"compare settings are malformed: {err}") from None
        check_test(out.test)
        if out.correction not in ("holm", "none"):
            raise ConfigError(f"compare.correction={out.correction!r} (expected holm or none)")
        if out.permutations < 1 or out.bootstrap < 0 or out.regressions < 0:
            raise ConfigError(
                "compare.permutations must be >= 1 and compare.bootstrap / compare.regressions >= 0"
            )
        if not 0.0 < out.confidence < 1.0:
            raise ConfigError(f"compare.confidence={out.confidence} (expected between 0 and 1)")
        return out


@dataclass(frozen=True)
class SliceResult:
    """Every metric and slice-level gate of one candidate on one query slice."""

    dimension: str
    value: str
    n_queries: int
    metrics: list[MetricComparison]
    drift: SimilarityDrift | None
    overlap: OverlapSummary | None
    unjudged: dict[str, UnjudgedSummary]
    gates: list[GateResult]
    status: Status
    evaluated: bool  # False when the slice has fewer than gates.slices.min_queries queries

    @property
    def label(self) -> str:
        return f"{self.dimension}={self.value}"


@dataclass(frozen=True)
class CandidateComparison:
    """One candidate against the baseline: quality, drift, latency, gates, slices, regressions."""

    baseline: str
    candidate: str
    primary_metric: str
    metrics: list[MetricComparison]
    drift: SimilarityDrift | None
    overlap: OverlapSummary | None
    unjudged: dict[str, UnjudgedSummary]
    latency: LatencyComparison
    gates: list[GateResult]
    status: Status
    slices: list[SliceResult] = field(default_factory=list)
    regressions: list[Regression] = field(default_factory=list)
    primary_hist: dict[str, list[float]] = field(default_factory=dict)

    def metric(self, name: str) -> MetricComparison:
        for m in self.metrics:
            if m.metric == name:
                return m
        raise KeyError(name)

    def gate(self, name: str) -> GateResult:
        for g in self.gates:
            if g.name == name:
                return g
        raise KeyError(name)


@dataclass(frozen=True)
class Verdict:
    """The answer to "may we ship?": overall status, exit code and every candidate's comparison."""

    status: Status
    exit_code: int
    baseline: str
    candidates: list[CandidateComparison]
    settings: CompareSettings
    gate_config: GateConfig
    dataset: str = ""
    test_label: str = ""
    embedded: str = ""  # the catalog text embedded (EvalData.embedded_label)


def _metrics_of(baseline: VersionResult, candidates: Sequence[VersionResult]) -> list[str]:
    names = [m for m in baseline.per_query if all(m in c.per_query for c in candidates)]
    if not names:
        raise ConfigError(
            f"versions {baseline.name} and {', '.join(c.name for c in candidates)} share no "
            "per-query metric to compare"
        )
    return names


def _pair_query_codes(
    pair_ids: Sequence[tuple[str, str]], query_index: Mapping[str, int]
) -> np.ndarray:
    return np.fromiter(
        (query_index.get(q, -1) for q, _ in pair_ids), dtype=np.int64, count=len(pair_ids)
    )


@dataclass
class _Shared:
    """Per-candidate inputs computed once and subset per slice."""

    pair_b: np.ndarray | None = None
    pair_c: np.ndarray | None = None
    pair_codes: np.ndarray | None = None
    query_index: dict[str, int] = field(default_factory=dict)
    overlap: RankingOverlap | None = None
    unjudged: dict[str, UnjudgedAtK] = field(default_factory=dict)


def _drift(
    shared: _Shared, cfg: GateConfig, mask: np.ndarray | None = None
) -> SimilarityDrift | None:
    if shared.pair_b is None or shared.pair_c is None:
        return None
    b, c = shared.pair_b, shared.pair_c
    if mask is not None:
        b, c = b[mask], c[mask]
    return similarity_drift(b, c, cfg.low_score_threshold)


def _quality_gates(
    cfg: GateConfig,
    primary: MetricComparison | None,
    drift: SimilarityDrift | None,
    overlap: OverlapSummary | None,
) -> list[GateResult]:
    return [
        gate_mean_cosine_shift(
            cfg, drift.mean_shift if drift else None, drift.n_pairs if drift else 0
        ),
        gate_top_k_agreement(
            cfg, overlap.agreement if overlap else None, overlap.n_queries if overlap else 0
        ),
        gate_low_score_share(
            cfg,
            drift.low_share_delta if drift else None,
            drift.baseline_low_share if drift else math.nan,
            drift.candidate_low_share if drift else math.nan,
        ),
        gate_primary_metric(
            cfg,
            primary.delta if primary else None,
            primary.p_corrected if primary else None,
            test=primary.test if primary else "",
            n_queries=primary.n_queries if primary else 0,
        ),
    ]


def _hist(b: np.ndarray, c: np.ndarray, bins: int = 20) -> dict[str, list[float]]:
    lo = float(min(b.min(initial=0.0), c.min(initial=0.0)))
    hi = float(max(b.max(initial=1.0), c.max(initial=1.0)))
    edges = np.linspace(lo, hi, bins + 1)
    return {
        "edges": edges.tolist(),
        "baseline": np.histogram(b, edges)[0].astype(float).tolist(),
        "candidate": np.histogram(c, edges)[0].astype(float).tolist(),
    }


def compare_pair(
    baseline: VersionResult,
    candidate: VersionResult,
    *,
    data: EvalData | None = None,
    gates: GateConfig | None = None,
    settings: CompareSettings | None = None,
    checks: Sequence[Mapping[str, Any]] | None = None,
    metrics: Sequence[str] | None = None,
) -> CandidateComparison:
    """Compare one candidate with the baseline (fingerprints checked first)."""
    cfg = gates or GateConfig()
    st = settings or CompareSettings()
    check_fingerprints(
        baseline.fingerprint, candidate.fingerprint, names=(baseline.name, candidate.name)
    )
    metrics = list(metrics or _metrics_of(baseline, [candidate]))
    if cfg.primary_metric not in metrics:
        raise ConfigError(
            f"primary_metric={cfg.primary_metric!r} is not among the scored metrics "
            f"({', '.join(metrics)}); add it to metrics"
        )
    stats_kw = dict(
        test=st.test,
        permutations=st.permutations,
        seed=st.seed,
        correction=st.correction,
        n_bootstrap=st.bootstrap,
        confidence=st.confidence,
    )
    comparisons = compare_metrics(baseline.per_query, candidate.per_query, metrics, **stats_kw)
    primary = next(m for m in comparisons if m.metric == cfg.primary_metric)

    shared = _Shared()
    if baseline.pair_similarity is not None and candidate.pair_similarity is not None:
        pair_ids, shared.pair_b, shared.pair_c = align_pairs(
            baseline.pair_ids,
            baseline.pair_similarity,
            candidate.pair_ids,
            candidate.pair_similarity,
        )
    else:
        pair_ids = list(baseline.pair_ids)
    drift = _drift(shared, cfg)

    if baseline.ranking is not None and candidate.ranking is not None:
        shared.overlap = ranking_overlap(
            baseline.ranking, candidate.ranking, cfg.agreement_k, cfg.rbo_p
        )
    overlap = shared.overlap.summary() if shared.overlap else None

    judged = pair_ids or (
        judged_pairs_from_qrels(data.judgments.qrels) if data and data.judgments else []
    )
    for version in (baseline, candidate):
        if version.ranking is not None and judged:
            shared.unjudged[version.name] = unjudged_at_k(version.ranking, judged, cfg.unjudged_k)
    unjudged = {name: u.summary() for name, u in shared.unjudged.items()}

    latency = compare_latency(
        latency_summary(
            baseline.latencies_s, baseline.throughput, baseline.batch_size, baseline.concurrency
        ),
        latency_summary(
            candidate.latencies_s, candidate.throughput, candidate.batch_size, candidate.concurrency
        ),
    )
    gate_results = _quality_gates(cfg, primary, drift, overlap)
    gate_results.insert(
        3,
        gate_latency_p95(
            cfg,
            latency.p95_ratio,
            measured=latency.measured,
            comparable=latency.comparable,
            note=latency.note,
        ),
    )
    gate_results.append(gate_endpoint_checks(cfg, checks, candidate.name))

    slices = []
    if data is not None and cfg.slices.enabled:
        shared.query_index = {q: i for i, q in enumerate(data.queries.ids)}
        if shared.pair_b is not None:
            shared.pair_codes = _pair_query_codes(pair_ids, shared.query_index)
        for sl in query_slices(data.queries, cfg.slices):
            slices.append(
                _compare_slice(sl, baseline, candidate, metrics, cfg, stats_kw, shared, data)
            )
    statuses = [g.status for g in gate_results]
    if cfg.slices.affect_verdict:
        statuses += [s.status for s in slices]

    titles: dict[str, str] = {}
    texts: dict[str, str] = {}
    qrels: Mapping[str, Mapping[str, int]] = {}
    if data is not None:
        titles = dict(zip(data.catalog.ids, data.catalog.titles))
        texts = dict(zip(data.queries.ids, data.queries.texts))
        qrels = data.judgments.qrels if data.judgments else {}
    regressions = worst_regressions(
        baseline.per_query[cfg.primary_metric],
        candidate.per_query[cfg.primary_metric],
        baseline.ranking,
        candidate.ranking,
        qrels=qrels,
        titles=titles,
        query_texts=texts,
        n=st.regressions,
        top_n=st.regression_top_n,
    )
    ids = list(baseline.per_query[cfg.primary_metric])
    pb = np.fromiter((baseline.per_query[cfg.primary_metric][q] for q in ids), float, len(ids))
    pc = np.fromiter((candidate.per_query[cfg.primary_metric][q] for q in ids), float, len(ids))
    return CandidateComparison(
        baseline=baseline.name,
        candidate=candidate.name,
        primary_metric=cfg.primary_metric,
        metrics=comparisons,
        drift=drift,
        overlap=overlap,
        unjudged=unjudged,
        latency=latency,
        gates=gate_results,
        status=worst(statuses),
        slices=slices,
        regressions=regressions,
        primary_hist=_hist(pb, pc),
    )


def _compare_slice(
    sl: Slice,
    baseline: VersionResult,
    candidate: VersionResult,
    metrics: Sequence[str],
    cfg: GateConfig,
    stats_kw: Mapping[str, Any],
    shared: _Shared,
    data: EvalData,
) -> SliceResult:
    comparisons = compare_metrics(
        baseline.per_query, candidate.per_query, metrics, query_ids=sl.query_ids, **stats_kw
    )
    n = comparisons[0].n_queries if comparisons else 0
    primary = next((m for m in comparisons if m.metric == cfg.primary_metric), None)
    drift = None
    if shared.pair_codes is not None:
        member = np.zeros(len(data.queries) + 1, dtype=bool)  # last cell: pairs of unknown queries
        member[[shared.query_index[q] for q in sl.query_ids]] = True
        drift = _drift(shared, cfg, member[shared.pair_codes])
    overlap = shared.overlap.summary(sl.query_ids) if shared.overlap else None
    unjudged = {name: u.summary(sl.query_ids) for name, u in shared.unjudged.items()}
    evaluated = n >= cfg.slices.min_queries
    gates = _quality_gates(cfg, primary, drift, overlap) if evaluated else []
    return SliceResult(
        dimension=sl.dimension,
        value=sl.value,
        n_queries=n,
        metrics=comparisons,
        drift=drift,
        overlap=overlap,
        unjudged=unjudged,
        gates=gates,
        status=worst(g.status for g in gates),
        evaluated=evaluated,
    )


def compare_versions(
    baseline: VersionResult,
    candidates: Sequence[VersionResult],
    *,
    data: EvalData | None = None,
    gates: GateConfig | Mapping[str, Any] | None = None,
    settings: CompareSettings | Mapping[str, Any] | None = None,
    checks: Sequence[Mapping[str, Any]] | None = None,
    metrics: Sequence[str] | None = None,
) -> Verdict:
    """Compare every candidate with the baseline; the verdict is the worst candidate status.

    ``checks`` are endpoint-check results (``{name, status: PASS|WARN|FAIL, observed, expected,
    reason}``, optionally ``version``); ``None`` means the checks were not run.
    """
    if not candidates:
        raise ConfigError(
            f"nothing to compare: only the baseline {baseline.name!r} was evaluated "
            "(configure at least two model versions, the first is the baseline)"
        )
    cfg = gates if isinstance(gates, GateConfig) else GateConfig.from_mapping(gates)
    st = (
        settings
        if isinstance(settings, CompareSettings)
        else CompareSettings.from_mapping(settings)
    )
    metrics = list(metrics or _metrics_of(baseline, candidates))
    results = [
        compare_pair(baseline, c, data=data, gates=cfg, settings=st, checks=checks, metrics=metrics)
        for c in candidates
    ]
    status = worst(r.status for r in results)
    return Verdict(
        status=status,
        exit_code=exit_code(status),
        baseline=baseline.name,
        candidates=results,
        settings=st,
        gate_config=cfg,
        dataset=data.name if data is not None else "",
        embedded=data.embedded_label() if data is not None else "",
        test_label=TEST_LABELS[st.test],
    )
