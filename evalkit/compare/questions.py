"""The three questions a comparison answers apart: quality (is B at least as good?), behaviour
(how differently does B rank and score?) and contract (does B keep its contracts, at what cost?);
:func:`evalkit.compare.verdict.compare_pair` asks all three.

>>> from evalkit.results import VersionResult
>>> pq = lambda shift: {"ndcg@10": {f"q{i}": min(1.0, i / 40 + shift * (i % 3)) for i in range(40)}}
>>> a, b = VersionResult("a", {}, {}, pq(0.0), None), VersionResult("b", {}, {}, pq(0.05), None)
>>> q = answer_quality(a, b, ["ndcg@10"], GateConfig(), CompareSettings())
>>> q.primary.status, [g.name for g in q.gates]
(<Quality.BETTER: 'better'>, ['primary_metric', 'secondary_metrics'])
>>> ans = answer_behaviour(a, b, None, GateConfig(), CompareSettings())
>>> [(g.name, g.measured) for g in ans.gates][:2]
[('top_k_agreement', False), ('mean_cosine_shift', False)]
>>> latency, gates = answer_contract(a, b, GateConfig(), CompareSettings(), checks=None)
>>> [(g.name, str(g.status)) for g in gates]
[('vector_contract', 'WARN'), ('endpoint_checks', 'WARN'), ('latency_p95_increase', 'WARN')]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from evalkit.compare.calls import QualityCall
from evalkit.compare.calls import call as quality_call
from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.coverage import (
    Coverage,
    UnjudgedAtK,
    UnjudgedSummary,
    judged_pairs_from_qrels,
    measure_coverage,
    reconcile,
    unjudged_at_k,
)
from evalkit.compare.drift import SimilarityDrift, align_pairs, similarity_drift
from evalkit.compare.gate_config import GateConfig
from evalkit.compare.gate_rules import (
    GateResult,
    gate_click_correlation,
    gate_endpoint_checks,
    gate_judgment_coverage,
    gate_latency_p95,
    gate_low_score_share,
    gate_mean_cosine_shift,
    gate_primary_metric,
    gate_secondary_metrics,
    gate_top_k_agreement,
    gate_unjudged_increase,
    gate_vector_contract,
)
from evalkit.compare.intervals import DualTest
from evalkit.compare.latency_stats import LatencyComparison, compare_latency, latency_summary
from evalkit.compare.multiplicity import Adjusted, fixed_sequence
from evalkit.compare.overlap import OverlapSummary, RankingOverlap, ranking_overlap
from evalkit.compare.power import plan_queries
from evalkit.compare.significance import (
    MetricComparison,
    aligned_scores,
    metric_comparisons,
    paired_tests,
)
from evalkit.compare.thresholds import ThresholdMapping, map_threshold, population_of
from evalkit.data.schema import EvalData
from evalkit.embed.latency_probe import backend_kind
from evalkit.results import VersionResult


@dataclass(frozen=True)
class QualityAnswer:
    """The metrics compared, their calls, the click differences' calls and the quality gates."""

    comparisons: list[MetricComparison]
    calls: list[QualityCall]
    primary: QualityCall
    n_queries: int
    gates: list[GateResult]
    click_calls: list[QualityCall] = field(default_factory=list)
    coverage: Coverage | None = None  # judgment coverage and the judged-only call


def quality_calls(
    comparisons: Sequence[MetricComparison],
    margin: float,
    alpha: float,
    *,
    primary: str | None = None,
    power: float = 0.8,
) -> list[QualityCall]:
    """Calls from each metric's interval; the ``primary`` one with its query plan."""
    out = []
    for m in comparisons:
        status = quality_call(
            m.delta, m.ci_low, m.ci_high, margin=margin, p_value=m.p_corrected, alpha=alpha
        )
        plan = (
            plan_queries(
                m.delta, m.sd, m.n_queries, margin=margin, alpha=alpha, power=power,
                status=str(status),
            )
            if m.metric == primary
            else None
        )  # fmt: skip
        out.append(
            QualityCall(
                metric=m.metric,
                delta=m.delta,
                ci_low=m.ci_low,
                ci_high=m.ci_high,
                p_value=m.p_value,
                p_corrected=m.p_corrected,
                status=status,
                margin=margin,
                baseline=m.baseline_mean,
                candidate=m.candidate_mean,
                confidence=m.ci_confidence,
                family=m.family,
                n_queries=m.n_queries,
                queries_needed=plan.n if plan is not None else None,
                plan=plan,
            )
        )
    return out


def click_calls(
    family: Mapping[str, Adjusted], names: Sequence[str], margin: float, alpha: float
) -> list[QualityCall]:
    """The click-correlation differences' calls (secondary family, adjusted intervals)."""
    out = []
    for name in names:
        a = family[name]
        status = quality_call(
            a.estimate, a.ci_low, a.ci_high, margin=margin, p_value=a.p_adjusted, alpha=alpha
        )
        out.append(
            QualityCall(
                metric=name,
                delta=a.estimate,
                ci_low=a.ci_low,
                ci_high=a.ci_high,
                p_value=a.p_value,
                p_corrected=a.p_adjusted,
                status=status,
                margin=margin,
                confidence=a.confidence,
                family=a.family,
                n_queries=a.n,
            )
        )
    return out


def answer_quality(
    baseline: VersionResult,
    candidate: VersionResult,
    metrics: Sequence[str],
    cfg: GateConfig,
    st: CompareSettings,
    click_tests: Mapping[str, DualTest] | None = None,
    *,
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    worklist: bool = True,
    queries_in_set: int | None = None,
) -> QualityAnswer:
    """Tests, family correction, calls and quality gates of ``candidate`` against ``baseline``,
    with the judgment coverage when there are ``qrels``."""
    alpha = cfg.primary_metric.alpha
    coverage = measure_coverage(baseline, candidate, qrels, cfg, st) if qrels else None
    _, b_scores, c_scores = aligned_scores(baseline.per_query, candidate.per_query, metrics)
    tests = paired_tests(
        b_scores, c_scores, test=st.test, permutations=st.permutations, seed=st.seed
    )
    clicks = dict(click_tests or {})
    family = fixed_sequence(
        {**dict(zip(metrics, tests)), **clicks},
        primary=cfg.metric,
        alpha=alpha,
        correction=st.correction,
    )
    comparisons = metric_comparisons(
        metrics,
        b_scores,
        c_scores,
        family,
        test=st.test,
        correction=st.correction,
        confidence=1.0 - alpha,
        n_bootstrap=st.bootstrap,
        seed=st.seed,
    )
    calls = quality_calls(comparisons, cfg.primary_metric.margin, alpha, primary=cfg.metric)
    primary = next(q for q in calls if q.metric == cfg.metric)
    primary = reconcile(replace(primary, queries_in_set=queries_in_set), coverage)
    passed = primary.status.shown_no_worse
    calls = [primary if q.metric == cfg.metric else replace(q, tested=passed) for q in calls]
    n_primary = next(m.n_queries for m in comparisons if m.metric == cfg.metric)
    clicked = [
        replace(q, tested=passed)
        for q in click_calls(family, list(clicks), cfg.click_correlation.margin, alpha)
    ]
    pooled = next((q for q in clicked if not q.metric.endswith("_within")), None)
    within = next((q for q in clicked if q.metric.endswith("_within")), None)
    gates = [
        gate_primary_metric(cfg, primary, n_queries=n_primary, worklist=worklist),
        gate_secondary_metrics(cfg, calls, primary_passed=passed),
    ]
    if qrels:
        gates.insert(1, gate_judgment_coverage(cfg, coverage))
    if clicked:
        gates.append(gate_click_correlation(cfg, pooled, within, primary_passed=passed))
    return QualityAnswer(comparisons, calls, primary, n_primary, gates, clicked, coverage)


@dataclass
class BehaviourAnswer:
    """The behaviour figures and gates, plus the per-pair and per-query inputs slices subset."""

    pair_ids: list[tuple[str, str]]
    pair_b: np.ndarray | None = None
    pair_c: np.ndarray | None = None
    ranking_overlap: RankingOverlap | None = None
    unjudged_at: dict[str, UnjudgedAtK] = field(default_factory=dict)
    drift: SimilarityDrift | None = None
    overlap: OverlapSummary | None = None
    unjudged: dict[str, UnjudgedSummary] = field(default_factory=dict)
    thresholds: list[ThresholdMapping] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)

    def drift_of(self, cfg: GateConfig, mask: np.ndarray | None = None) -> SimilarityDrift | None:
        """Score drift over all pairs, or over the pairs ``mask`` selects (a slice)."""
        if self.pair_b is None or self.pair_c is None:
            return None
        b, c = self.pair_b, self.pair_c
        if mask is not None:
            b, c = b[mask], c[mask]
        return similarity_drift(b, c, cfg.low_score_share.threshold)


def _behaviour_gates(
    cfg: GateConfig,
    drift: SimilarityDrift | None,
    overlap: OverlapSummary | None,
    unjudged: Mapping[str, UnjudgedSummary],
    names: tuple[str, str],
) -> list[GateResult]:
    ub, uc = unjudged.get(names[0]), unjudged.get(names[1])
    shift = drift.mean_shift if drift else None
    changed = shift if shift is not None and abs(shift) > cfg.mean_cosine_shift.max_abs else None
    low = (drift.baseline_low_share, drift.candidate_low_share) if drift else (math.nan, math.nan)
    return [
        gate_top_k_agreement(
            cfg, overlap.agreement if overlap else None, overlap.n_queries if overlap else 0
        ),
        gate_mean_cosine_shift(cfg, shift, drift.n_pairs if drift else 0),
        gate_low_score_share(
            cfg, drift.low_share_delta if drift else None, *low, scale_shift=changed
        ),
        gate_unjudged_increase(
            cfg, ub.mean if ub else None, uc.mean if uc else None, cfg.drift.unjudged_k
        ),
    ]


def answer_behaviour(
    baseline: VersionResult,
    candidate: VersionResult,
    data: EvalData | None,
    cfg: GateConfig,
    st: CompareSettings,
) -> BehaviourAnswer:
    """How much ``candidate`` changes rankings and scores relative to ``baseline``."""
    if baseline.pair_similarity is not None and candidate.pair_similarity is not None:
        pair_ids, pair_b, pair_c = align_pairs(
            baseline.pair_ids,
            baseline.pair_similarity,
            candidate.pair_ids,
            candidate.pair_similarity,
        )
        ans = BehaviourAnswer(list(pair_ids), pair_b, pair_c)
    else:
        ans = BehaviourAnswer(list(baseline.pair_ids))
    ans.drift = ans.drift_of(cfg)
    if baseline.ranking is not None and candidate.ranking is not None:
        ans.ranking_overlap = ranking_overlap(
            baseline.ranking, candidate.ranking, cfg.top_k_agreement.k, cfg.drift.rbo_p
        )
        ans.overlap = ans.ranking_overlap.summary()
    judged = ans.pair_ids or (
        judged_pairs_from_qrels(data.judgments.qrels) if data and data.judgments else []
    )
    for version in (baseline, candidate):
        if version.ranking is not None and judged:
            ans.unjudged_at[version.name] = unjudged_at_k(
                version.ranking, judged, cfg.drift.unjudged_k
            )
    ans.unjudged = {name: u.summary() for name, u in ans.unjudged_at.items()}
    if ans.pair_b is not None and st.score_thresholds:
        # Judged pairs + unjudged top-k pairs of A and B, each scored by both versions.
        qrels = data.judgments.qrels if data is not None and data.judgments else {}
        population = population_of(baseline, candidate, ans.pair_ids, ans.pair_b, ans.pair_c, qrels)
        ans.thresholds = [map_threshold(population, float(t)) for t in st.score_thresholds]
    ans.gates = _behaviour_gates(
        cfg, ans.drift, ans.overlap, ans.unjudged, (baseline.name, candidate.name)
    )
    return ans


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
