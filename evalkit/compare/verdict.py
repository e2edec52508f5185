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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from evalkit.compare.actions import (
    as_int,
    length_action,
    pin_actions,
    reindex_action,
    threshold_actions,
)
from evalkit.compare.drift import SimilarityDrift, align_pairs, similarity_drift
from evalkit.compare.fingerprint import check_fingerprints
from evalkit.compare.gates import (
    GateConfig,
    GateResult,
    Status,
    annotate,
    exit_code,
    gate_click_correlation,
    gate_endpoint_checks,
    gate_latency_p95,
    gate_low_score_share,
    gate_mean_cosine_shift,
    gate_primary_metric,
    gate_secondary_metrics,
    gate_top_k_agreement,
    gate_unjudged_increase,
    gate_vector_contract,
    worst,
)
from evalkit.compare.intervals import DualTest
from evalkit.compare.latency import (
    LatencyComparison,
    backend_kind,
    compare_latency,
    latency_summary,
)
from evalkit.compare.multiplicity import Adjusted, fixed_sequence
from evalkit.compare.overlap import OverlapSummary, RankingOverlap, ranking_overlap
from evalkit.compare.power import queries_needed
from evalkit.compare.quality import (
    Quality,
    QualityCall,
    bonferroni_confidence,
    t_interval,
    worst_quality,
)
from evalkit.compare.quality import call as quality_call
from evalkit.compare.regressions import Regression, worst_regressions
from evalkit.compare.significance import (
    TEST_LABELS,
    MetricComparison,
    aligned_scores,
    check_test,
    compare_metrics,
    metric_comparisons,
    paired_tests,
)
from evalkit.compare.slices import Slice, query_slices
from evalkit.compare.thresholds import ThresholdMapping, map_thresholds, population_of
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
    score_thresholds: tuple[float, ...] = (0.3,)
    min_slice_queries: int = 10  # the smallest query slice that gets a quality call

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
                score_thresholds=tuple(
                    float(t) for t in (cfg.get("score_thresholds", d.score_thresholds) or ())
                ),
                min_slice_queries=int(cfg.get("min_slice_queries", d.min_slice_queries)),
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
        if out.min_slice_queries < 2:
            raise ConfigError(
                f"compare.min_slice_queries={out.min_slice_queries} (expected an integer >= 2: "
                "a paired interval needs two queries)"
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
    quality: list[QualityCall]
    status: Quality  # the slice's primary-metric call (Bonferroni across metrics x called slices)
    evaluated: bool  # False when the slice has fewer than compare.min_slice_queries queries
    min_queries: int = 10  # compare.min_slice_queries
    ci_clipped: bool = False  # the primary metric's t-interval reached past [-1, 1]

    @property
    def label(self) -> str:
        return f"{self.dimension}={self.value}"

    @property
    def gate_status(self) -> Status:
        """PASS when the slice is shown no worse, else WARN (BLOCK only via affect_verdict)."""
        return Status.PASS if self.status.shown_no_worse else Status.WARN


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
    quality: list[QualityCall] = field(default_factory=list)
    thresholds: list[ThresholdMapping] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    reindex: Any = None  # evalkit.compare.reindex.ReindexAnalysis when computed
    click_quality: list[QualityCall] = field(default_factory=list)  # click differences' calls

    @property
    def primary_call(self) -> QualityCall | None:
        """The primary metric's :class:`QualityCall` (None when it was not scored)."""
        return next((q for q in self.quality if q.metric == self.primary_metric), None)

    @property
    def quality_status(self) -> Quality:
        """The primary metric's call: better / no_worse / worse / inconclusive."""
        for q in self.quality:
            if q.metric == self.primary_metric:
                return q.status
        return Quality.INCONCLUSIVE

    def checklist(self) -> dict[str, list[dict[str, Any]]]:
        """``passed``, ``follow_ups`` (WARN), ``undecided`` (INCONCLUSIVE: more evidence
        needed), ``blockers`` (BLOCK) and ``actions`` before switching."""
        items = [(g.status, {**g.item(), "candidate": self.candidate}) for g in self.gates]
        return {
            "passed": [i for s, i in items if s == Status.PASS],
            "follow_ups": [i for s, i in items if s == Status.WARN],
            "undecided": [i for s, i in items if s == Status.INCONCLUSIVE],
            "blockers": [i for s, i in items if s == Status.BLOCK],
            "actions": [{**a, "candidate": self.candidate} for a in self.actions],
        }

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

    @property
    def quality(self) -> Quality:
        """The least favourable primary-metric call over candidates (tag ``evalkit.quality``)."""
        return worst_quality([c.quality_status for c in self.candidates])

    def checklist(self) -> dict[str, list[dict[str, Any]]]:
        """Every candidate's checklist lists, concatenated (each item names its candidate)."""
        out: dict[str, list[dict[str, Any]]] = {
            "passed": [],
            "follow_ups": [],
            "undecided": [],
            "blockers": [],
            "actions": [],
        }
        for c in self.candidates:
            for k, v in c.checklist().items():
                out[k] += v
        return out


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
    return similarity_drift(b, c, cfg.low_score_share.threshold)


def quality_calls(
    comparisons: Sequence[MetricComparison],
    margin: float,
    alpha: float,
    *,
    primary: str | None = None,
    power: float = 0.8,
) -> list[QualityCall]:
    """Calls from each metric's interval (the one that agrees with its corrected p).

    The ``primary`` metric's call carries the judged queries that would decide
    (:func:`evalkit.compare.power.queries_needed`) when it is inconclusive or no worse but not
    better; the secondaries are ``tested`` only when the primary is shown no worse (fixed
    sequence).
    """
    out = []
    for m in comparisons:
        status = quality_call(
            m.delta, m.ci_low, m.ci_high, margin=margin, p_value=m.p_corrected, alpha=alpha
        )
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
                queries_needed=(
                    queries_needed(m.delta, m.sd, alpha=alpha, power=power)
                    if m.metric == primary and status in (Quality.INCONCLUSIVE, Quality.NO_WORSE)
                    else None
                ),
            )
        )
    passed = any(q.metric == primary and q.status.shown_no_worse for q in out)
    if primary is None:
        return out
    return [q if q.metric == primary else replace(q, tested=passed) for q in out]


def click_calls(
    family: Mapping[str, Adjusted], names: Sequence[str], margin: float, alpha: float
) -> list[QualityCall]:
    """The click-correlation differences' calls (secondary family, adjusted intervals)."""
    out = []
    for name in names:
        a = family[name]
        out.append(
            QualityCall(
                metric=name,
                delta=a.estimate,
                ci_low=a.ci_low,
                ci_high=a.ci_high,
                p_value=a.p_value,
                p_corrected=a.p_adjusted,
                status=quality_call(
                    a.estimate,
                    a.ci_low,
                    a.ci_high,
                    margin=margin,
                    p_value=a.p_adjusted,
                    alpha=alpha,
                ),
                margin=margin,
                confidence=a.confidence,
                family=a.family,
                n_queries=a.n,
            )
        )
    return out


def _behaviour_gates(
    cfg: GateConfig,
    drift: SimilarityDrift | None,
    overlap: OverlapSummary | None,
    unjudged: Mapping[str, UnjudgedSummary],
    names: tuple[str, str],
) -> list[GateResult]:
    ub, uc = unjudged.get(names[0]), unjudged.get(names[1])
    return [
        gate_top_k_agreement(
            cfg, overlap.agreement if overlap else None, overlap.n_queries if overlap else 0
        ),
        gate_mean_cosine_shift(
            cfg, drift.mean_shift if drift else None, drift.n_pairs if drift else 0
        ),
        gate_low_score_share(
            cfg,
            drift.low_share_delta if drift else None,
            drift.baseline_low_share if drift else math.nan,
            drift.candidate_low_share if drift else math.nan,
        ),
        gate_unjudged_increase(
            cfg, ub.mean if ub else None, uc.mean if uc else None, cfg.drift.unjudged_k
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


def _vector_stats(v: VersionResult) -> dict[str, float]:
    return {k[len("vectors_") :]: float(x) for k, x in v.extra.items() if k.startswith("vectors_")}


def compare_pair(
    baseline: VersionResult,
    candidate: VersionResult,
    *,
    data: EvalData | None = None,
    gates: GateConfig | None = None,
    settings: CompareSettings | None = None,
    checks: Sequence[Mapping[str, Any]] | None = None,
    metrics: Sequence[str] | None = None,
    reindex: Any = None,
    click_tests: Mapping[str, DualTest] | None = None,
) -> CandidateComparison:
    """Compare one candidate with the baseline (fingerprints checked first).

    ``reindex`` is the candidate's :class:`~evalkit.compare.reindex.ReindexAnalysis` (or None);
    ``click_tests`` the paired click-correlation differences
    (:func:`evalkit.compare.clicks.click_tests`) when a click log was scored.

    Statistics (README "The verdict"): the primary metric is tested alone at
    ``gates.primary_metric.alpha``; the other metrics and the click differences form the
    secondary family, Holm-corrected among themselves and claimed only when the primary passed
    (fixed sequence); every interval agrees with the p-value beside it.
    """
    cfg = gates or GateConfig()
    st = settings or CompareSettings()
    check_fingerprints(
        baseline.fingerprint, candidate.fingerprint, names=(baseline.name, candidate.name)
    )
    metrics = list(metrics or _metrics_of(baseline, [candidate]))
    if cfg.metric not in metrics:
        raise ConfigError(
            f"primary_metric={cfg.metric!r} is not among the scored metrics "
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
    alpha = cfg.primary_metric.alpha
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
    primary_passed = primary.status.shown_no_worse
    n_primary = next(m.n_queries for m in comparisons if m.metric == cfg.metric)
    click_quality = [
        replace(q, tested=primary_passed)
        for q in click_calls(family, list(clicks), cfg.click_correlation.margin, alpha)
    ]
    pooled = next((q for q in click_quality if not q.metric.endswith("_within")), None)
    within = next((q for q in click_quality if q.metric.endswith("_within")), None)

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
            baseline.ranking, candidate.ranking, cfg.top_k_agreement.k, cfg.drift.rbo_p
        )
    overlap = shared.overlap.summary() if shared.overlap else None

    judged = pair_ids or (
        judged_pairs_from_qrels(data.judgments.qrels) if data and data.judgments else []
    )
    for version in (baseline, candidate):
        if version.ranking is not None and judged:
            shared.unjudged[version.name] = unjudged_at_k(
                version.ranking, judged, cfg.drift.unjudged_k
            )
    unjudged = {name: u.summary() for name, u in shared.unjudged.items()}

    latency = compare_latency(
        *(
            latency_summary(
                v.latencies_s,
                v.throughput,
                v.batch_size,
                v.concurrency,
                backend_kind(v.params),
                retries=int(v.extra.get("latency_probe_retries", 0) or 0),
            )
            for v in (baseline, candidate)
        ),
        baseline_s=baseline.latencies_s,
        candidate_s=candidate.latencies_s,
        n_resamples=st.bootstrap,
        seed=st.seed,
        confidence=st.confidence,
    )
    gate_results = [
        # Quality: can block.
        gate_primary_metric(cfg, primary, n_queries=n_primary),
        gate_secondary_metrics(cfg, calls, primary_passed=primary_passed),
        *(
            [gate_click_correlation(cfg, pooled, within, primary_passed=primary_passed)]
            if click_quality
            else []
        ),
        # Behaviour change: follow-ups (WARN) in the default preset.
        *_behaviour_gates(cfg, drift, overlap, unjudged, (baseline.name, candidate.name)),
        # Contract and cost: can block.
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
        ),
    ]
    gate_results = [annotate(g) for g in gate_results]

    slices = []
    if data is not None and cfg.slices.enabled:
        shared.query_index = {q: i for i, q in enumerate(data.queries.ids)}
        if shared.pair_b is not None:
            shared.pair_codes = _pair_query_codes(pair_ids, shared.query_index)
        query_sets = list(query_slices(data.queries, cfg.slices))
        # Bonferroni over the slices that get a call (>= compare.min_slice_queries queries).
        scored_b = baseline.per_query[cfg.metric]
        scored_c = candidate.per_query[cfg.metric]
        n_called = sum(
            sum(q in scored_b and q in scored_c for q in sl.query_ids) >= st.min_slice_queries
            for sl in query_sets
        )
        level = bonferroni_confidence(st.confidence, max(1, n_called * len(metrics)))
        for sl in query_sets:
            slices.append(
                _compare_slice(
                    sl,
                    baseline,
                    candidate,
                    metrics,
                    cfg,
                    stats_kw,
                    shared,
                    data,
                    level,
                    st.min_slice_queries,
                )
            )
    statuses = [g.status for g in gate_results]
    if cfg.slices.affect_verdict:
        statuses += [
            cfg.primary_metric.on_fail
            for s in slices
            if s.evaluated and s.status in (Quality.WORSE,)
        ]

    thresholds: list[ThresholdMapping] = []
    if shared.pair_b is not None and st.score_thresholds:
        # Judged pairs + unjudged top-k pairs of A and B, each scored by both versions.
        qrels = data.judgments.qrels if data is not None and data.judgments else {}
        population = population_of(
            baseline, candidate, pair_ids, shared.pair_b, shared.pair_c, qrels
        )
        thresholds = map_thresholds(population, st.score_thresholds)
    b_dim, c_dim = as_int(baseline.extra.get("dim")), as_int(candidate.extra.get("dim"))
    actions = [
        *threshold_actions(thresholds),
        *reindex_action(reindex, b_dim, c_dim),
        *pin_actions(baseline.params, candidate.params, b_dim, c_dim),
        *length_action(checks, baseline.name, candidate.name),
    ]

    titles: dict[str, str] = {}
    texts: dict[str, str] = {}
    qrels_: Mapping[str, Mapping[str, int]] = {}
    if data is not None:
        titles = dict(zip(data.catalog.ids, data.catalog.titles))
        texts = dict(zip(data.queries.ids, data.queries.texts))
        qrels_ = data.judgments.qrels if data.judgments else {}
    regressions = worst_regressions(
        baseline.per_query[cfg.metric],
        candidate.per_query[cfg.metric],
        baseline.ranking,
        candidate.ranking,
        qrels=qrels_,
        titles=titles,
        query_texts=texts,
        n=st.regressions,
        top_n=st.regression_top_n,
    )
    ids = list(baseline.per_query[cfg.metric])
    pb = np.fromiter((baseline.per_query[cfg.metric][q] for q in ids), float, len(ids))
    pc = np.fromiter((candidate.per_query[cfg.metric][q] for q in ids), float, len(ids))
    return CandidateComparison(
        baseline=baseline.name,
        candidate=candidate.name,
        primary_metric=cfg.metric,
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
        quality=calls,
        thresholds=thresholds,
        actions=actions,
        reindex=reindex,
        click_quality=click_quality,
    )


#: Every evalkit metric lies in [0, 1], so a paired difference lies in [-1, 1].
DIFFERENCE_RANGE = (-1.0, 1.0)


def clip_interval(low: float, high: float) -> tuple[float, float, bool]:
    """``[low, high]`` clipped to :data:`DIFFERENCE_RANGE`, and whether the clip changed it.

    A t-interval on a few queries can reach past the range a difference of two [0, 1] metrics
    can take; the clip never changes a call (0 and -margin lie inside the range).

    >>> clip_interval(-1.79, 2.70), clip_interval(-0.2, 0.1)
    ((-1.0, 1.0, True), (-0.2, 0.1, False))
    """
    lo, hi = DIFFERENCE_RANGE
    if math.isnan(low) or math.isnan(high):
        return low, high, False
    clipped = (max(low, lo), min(high, hi))
    return clipped[0], clipped[1], clipped != (low, high)


def slice_calls(
    baseline: Mapping[str, Mapping[str, float]],
    candidate: Mapping[str, Mapping[str, float]],
    comparisons: Sequence[MetricComparison],
    query_ids: Sequence[str],
    margin: float,
    confidence: float,
    min_queries: int = 2,
) -> tuple[list[QualityCall], set[str]]:
    """Slice calls from paired t-intervals at ``confidence`` (already Bonferroni-adjusted),
    clipped to [-1, 1]; a metric scored on fewer than ``min_queries`` queries of the slice gets
    no call (``inconclusive``, reported as "not called").  Also returns the metrics whose
    interval was clipped."""
    out, clipped = [], set()
    for m in comparisons:
        b, c = baseline[m.metric], candidate[m.metric]
        ids = [q for q in query_ids if q in b and q in c]
        d = np.fromiter((c[q] - b[q] for q in ids), dtype=np.float64, count=len(ids))
        low, high, was_clipped = clip_interval(*t_interval(d, confidence))
        if was_clipped:
            clipped.add(m.metric)
        status = (
            quality_call(m.delta, low, high, margin=margin)
            if len(ids) >= min_queries
            else Quality.INCONCLUSIVE
        )
        out.append(
            QualityCall(
                metric=m.metric,
                delta=m.delta,
                ci_low=low,
                ci_high=high,
                p_value=m.p_value,
                p_corrected=m.p_corrected,
                status=status,
                margin=margin,
                baseline=m.baseline_mean,
                candidate=m.candidate_mean,
                confidence=confidence,
                family="slice",
                n_queries=len(ids),
            )
        )
    return out, clipped


def _compare_slice(
    sl: Slice,
    baseline: VersionResult,
    candidate: VersionResult,
    metrics: Sequence[str],
    cfg: GateConfig,
    stats_kw: Mapping[str, Any],
    shared: _Shared,
    data: EvalData,
    level: float,
    min_queries: int = 10,
) -> SliceResult:
    comparisons = compare_metrics(
        baseline.per_query, candidate.per_query, metrics, query_ids=sl.query_ids, **stats_kw
    )
    n = next(
        (m.n_queries for m in comparisons if m.metric == cfg.metric),
        comparisons[0].n_queries if comparisons else 0,
    )
    calls, clipped = slice_calls(
        baseline.per_query,
        candidate.per_query,
        comparisons,
        sl.query_ids,
        cfg.primary_metric.margin,
        level,
        min_queries,
    )
    primary = next((q for q in calls if q.metric == cfg.metric), None)
    drift = None
    if shared.pair_codes is not None:
        member = np.zeros(len(data.queries) + 1, dtype=bool)  # last cell: pairs of unknown queries
        member[[shared.query_index[q] for q in sl.query_ids]] = True
        drift = _drift(shared, cfg, member[shared.pair_codes])
    overlap = shared.overlap.summary(sl.query_ids) if shared.overlap else None
    unjudged = {name: u.summary(sl.query_ids) for name, u in shared.unjudged.items()}
    evaluated = n >= min_queries
    return SliceResult(
        dimension=sl.dimension,
        value=sl.value,
        n_queries=n,
        metrics=comparisons,
        drift=drift,
        overlap=overlap,
        unjudged=unjudged,
        quality=calls,
        status=primary.status if primary is not None and evaluated else Quality.INCONCLUSIVE,
        evaluated=evaluated,
        min_queries=min_queries,
        ci_clipped=cfg.metric in clipped,
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
    reindex: Mapping[str, Any] | None = None,
    click_tests: Mapping[str, Mapping[str, DualTest]] | None = None,
) -> Verdict:
    """Compare every candidate with the baseline; the verdict is the worst candidate status.

    ``checks`` are endpoint-check results (``{name, status: PASS|WARN|FAIL, observed, expected,
    reason}``, optionally ``version``); ``None`` means the checks were not run.  ``reindex`` and
    ``click_tests`` are keyed by candidate name (see :func:`compare_pair`).
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
        compare_pair(
            baseline,
            c,
            data=data,
            gates=cfg,
            settings=st,
            checks=checks,
            metrics=metrics,
            reindex=(reindex or {}).get(c.name),
            click_tests=(click_tests or {}).get(c.name),
        )
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
