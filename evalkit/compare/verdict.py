"""The release verdict: compare every candidate version with the baseline and apply the gates.

A candidate's status is the worst of its gates (and of its slices' when
``gates.slices.affect_verdict``); the verdict is the worst over candidates.  Whatever a version
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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit.compare.actions import (
    as_int,
    length_action,
    pin_actions,
    reindex_action,
    threshold_actions,
)
from evalkit.compare.calls import Quality, QualityCall, bonferroni_confidence, worst_quality
from evalkit.compare.calls import call as quality_call
from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.coverage import Coverage, UnjudgedSummary
from evalkit.compare.drift import SimilarityDrift
from evalkit.compare.gate_config import GateConfig
from evalkit.compare.gate_rules import GateResult, annotate
from evalkit.compare.intervals import DualTest, level_of, student
from evalkit.compare.latency_stats import LatencyComparison
from evalkit.compare.overlap import OverlapSummary
from evalkit.compare.questions import (
    BehaviourAnswer,
    answer_behaviour,
    answer_contract,
    answer_quality,
)
from evalkit.compare.regressions import Regression, worst_regressions
from evalkit.compare.same_data import check_fingerprints
from evalkit.compare.significance import (
    DIFFERENCE_RANGE,
    TEST_LABELS,
    MetricComparison,
    compare_metrics,
)
from evalkit.compare.significance import clip_interval as kept_inside
from evalkit.compare.slices import Slice, query_slices
from evalkit.compare.status import Status, exit_code, worst
from evalkit.compare.thresholds import ThresholdMapping
from evalkit.data.schema import EvalData
from evalkit.errors import ConfigError
from evalkit.results import VersionResult


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
    reindex: Any = None  # evalkit.compare.reindex_analysis.ReindexAnalysis when computed
    click_quality: list[QualityCall] = field(default_factory=list)  # click differences' calls
    coverage: Coverage | None = None  # judgment coverage and the judged-only call

    @property
    def primary_call(self) -> QualityCall | None:
        return next((q for q in self.quality if q.metric == self.primary_metric), None)

    @property
    def quality_status(self) -> Quality:
        """The primary metric's call (inconclusive when it was not scored)."""
        q = self.primary_call
        return q.status if q is not None else Quality.INCONCLUSIVE

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
        return {m.metric: m for m in self.metrics}[name]

    def gate(self, name: str) -> GateResult:
        return {g.name: g for g in self.gates}[name]


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
        lists = [c.checklist() for c in self.candidates]
        keys = ("passed", "follow_ups", "undecided", "blockers", "actions")
        return {k: [i for one in lists for i in one[k]] for k in keys}


def _metrics_of(baseline: VersionResult, candidates: Sequence[VersionResult]) -> list[str]:
    """The per-query metrics every version scored, in the baseline's order."""
    names = [m for m in baseline.per_query if all(m in c.per_query for c in candidates)]
    if not names:
        raise ConfigError(
            f"versions {baseline.name} and {', '.join(c.name for c in candidates)} share no "
            "per-query metric to compare"
        )
    return names


def _primary_hist(
    baseline: VersionResult, candidate: VersionResult, metric: str, bins: int = 20
) -> dict[str, list[float]]:
    """Both versions' per-query ``metric`` histograms on shared edges spanning [0, 1] and both."""
    ids = list(baseline.per_query[metric])
    b = np.fromiter((baseline.per_query[metric][q] for q in ids), float, len(ids))
    c = np.fromiter((candidate.per_query[metric][q] for q in ids), float, len(ids))
    lo = float(min(b.min(initial=0.0), c.min(initial=0.0)))
    hi = float(max(b.max(initial=1.0), c.max(initial=1.0)))
    edges = np.linspace(lo, hi, bins + 1)
    return {
        "edges": edges.tolist(),
        "baseline": np.histogram(b, edges)[0].astype(float).tolist(),
        "candidate": np.histogram(c, edges)[0].astype(float).tolist(),
    }


@dataclass(frozen=True)
class _Pair:
    """One comparison's inputs, shared by the helpers of :func:`compare_pair`."""

    baseline: VersionResult
    candidate: VersionResult
    metrics: list[str]
    cfg: GateConfig
    st: CompareSettings
    data: EvalData | None
    behaviour: BehaviourAnswer

    @property
    def qrels(self) -> Mapping[str, Mapping[str, int]]:
        data = self.data
        return data.judgments.qrels if data is not None and data.judgments is not None else {}


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
    """Compare one candidate with the baseline: three questions, slices, actions, regressions."""
    cfg = gates or GateConfig()
    st = settings or CompareSettings()
    check_fingerprints(
        baseline.fingerprint, candidate.fingerprint, names=(baseline.name, candidate.name)
    )
    names = list(metrics or _metrics_of(baseline, [candidate]))
    if cfg.metric not in names:
        raise ConfigError(
            f"primary_metric={cfg.metric!r} is not among the scored metrics "
            f"({', '.join(names)}); add it to metrics"
        )
    behaviour = answer_behaviour(baseline, candidate, data, cfg, st)
    p = _Pair(baseline, candidate, names, cfg, st, data, behaviour)
    unjudged = [u.mean for u in behaviour.unjudged.values()]
    quality = answer_quality(
        baseline,
        candidate,
        names,
        cfg,
        st,
        click_tests,
        qrels=p.qrels,
        worklist=st.worklist_size > 0 and (not unjudged or max(unjudged) > 0),
        queries_in_set=len(data.queries) if data is not None else None,
    )
    latency, contract_gates = answer_contract(baseline, candidate, cfg, st, checks)
    gate_results = [annotate(g) for g in (*quality.gates, *behaviour.gates, *contract_gates)]
    slices = _slices(p)
    return CandidateComparison(
        baseline=baseline.name,
        candidate=candidate.name,
        primary_metric=cfg.metric,
        metrics=quality.comparisons,
        drift=behaviour.drift,
        overlap=behaviour.overlap,
        unjudged=behaviour.unjudged,
        latency=latency,
        gates=gate_results,
        status=_candidate_status(gate_results, slices, cfg),
        slices=slices,
        actions=_actions(p, reindex, checks),
        regressions=_regressions(p),
        primary_hist=_primary_hist(baseline, candidate, cfg.metric),
        quality=quality.calls,
        thresholds=behaviour.thresholds,
        reindex=reindex,
        click_quality=quality.click_calls,
        coverage=quality.coverage,
    )


def _candidate_status(
    gate_results: Sequence[GateResult], slices: Sequence[SliceResult], cfg: GateConfig
) -> Status:
    """The worst gate; with ``gates.slices.affect_verdict`` a worse slice fails as the primary."""
    statuses = [g.status for g in gate_results]
    if cfg.slices.affect_verdict:
        statuses += [
            cfg.primary_metric.on_fail for s in slices if s.evaluated and s.status == Quality.WORSE
        ]
    return worst(statuses)


def _actions(
    p: _Pair, reindex: Any, checks: Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    b, c = p.baseline, p.candidate
    b_dim, c_dim = as_int(b.extra.get("dim")), as_int(c.extra.get("dim"))
    return [
        *threshold_actions(p.behaviour.thresholds),
        *reindex_action(reindex, b_dim, c_dim),
        *pin_actions(b.params, c.params, b_dim, c_dim),
        *length_action(checks, b.name, c.name),
    ]


def _regressions(p: _Pair) -> list[Regression]:
    """The queries whose primary metric dropped most, with titles and texts when there is data."""
    titles: dict[str, str] = {}
    texts: dict[str, str] = {}
    if p.data is not None:
        titles = dict(zip(p.data.catalog.ids, p.data.catalog.titles))
        texts = dict(zip(p.data.queries.ids, p.data.queries.texts))
    return worst_regressions(
        p.baseline.per_query[p.cfg.metric],
        p.candidate.per_query[p.cfg.metric],
        p.baseline.ranking,
        p.candidate.ranking,
        qrels=p.qrels,
        titles=titles,
        query_texts=texts,
        n=p.st.regressions,
        top_n=p.st.regression_top_n,
    )


def _slices(p: _Pair) -> list[SliceResult]:
    """Every metric and behaviour figure per query slice (Bonferroni over the called slices)."""
    if p.data is None or not p.cfg.slices.enabled:
        return []
    queries, behaviour = p.data.queries, p.behaviour
    query_index = {q: i for i, q in enumerate(queries.ids)}
    pair_codes = None  # each pair's query row (-1: a query not in the data)
    if behaviour.pair_b is not None:
        codes = (query_index.get(q, -1) for q, _ in behaviour.pair_ids)
        pair_codes = np.fromiter(codes, dtype=np.int64, count=len(behaviour.pair_ids))

    def drift(sl: Slice) -> SimilarityDrift | None:
        if pair_codes is None:
            return None
        member = np.zeros(len(queries) + 1, dtype=bool)  # last cell: unknown queries
        member[[query_index[q] for q in sl.query_ids]] = True
        return behaviour.drift_of(p.cfg, member[pair_codes])

    query_sets = list(query_slices(queries, p.cfg.slices))
    level = _slice_level(p, query_sets)
    return [_compare_slice(p, sl, level, drift(sl)) for sl in query_sets]


def _slice_level(p: _Pair, query_sets: Sequence[Slice]) -> float:
    """The slices' confidence: Bonferroni over the metrics of the slices that get a call."""
    scored_b = p.baseline.per_query[p.cfg.metric]
    scored_c = p.candidate.per_query[p.cfg.metric]
    n_called = sum(
        sum(q in scored_b and q in scored_c for q in sl.query_ids) >= p.st.min_slice_queries
        for sl in query_sets
    )
    return bonferroni_confidence(p.st.confidence, max(1, n_called * len(p.metrics)))


def clip_interval(low: float, high: float) -> tuple[float, float, bool]:
    """``[low, high]`` clipped to :data:`DIFFERENCE_RANGE`, and whether the clip changed it."""
    if math.isnan(low) or math.isnan(high):
        return low, high, False
    clipped = kept_inside(low, high, DIFFERENCE_RANGE)
    return clipped[0], clipped[1], clipped != (low, high)


def slice_calls(
    baseline: Mapping[str, Mapping[str, float]],
    candidate: Mapping[str, Mapping[str, float]],
    comparisons: Sequence[MetricComparison],
    query_ids: Sequence[str],
    margin: float,
    confidence: float,
    min_queries: int = 2,
    alpha: float = 0.05,
) -> tuple[list[QualityCall], set[str]]:
    """Slice calls from paired t-intervals at (Bonferroni) ``confidence``, and the metrics whose
    interval was clipped; ``p_corrected = min(1, p * alpha / (1 - confidence))``."""
    out, clipped = [], set()
    for m in comparisons:
        b, c = baseline[m.metric], candidate[m.metric]
        ids = [q for q in query_ids if q in b and q in c]
        d = np.fromiter((c[q] - b[q] for q in ids), dtype=np.float64, count=len(ids))
        test = student(d)
        low, high, was_clipped = clip_interval(*test.interval(confidence))
        if was_clipped:
            clipped.add(m.metric)
        level = level_of(confidence)
        p_adj = min(1.0, test.p_value * alpha / level) if level > 0 else test.p_value
        status = (
            quality_call(m.delta, low, high, margin=margin, p_value=p_adj, alpha=alpha)
            if len(ids) >= min_queries
            else Quality.INCONCLUSIVE
        )
        out.append(
            QualityCall(
                metric=m.metric,
                delta=m.delta,
                ci_low=low,
                ci_high=high,
                p_value=test.p_value,
                p_corrected=p_adj,
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


def _compare_slice(p: _Pair, sl: Slice, level: float, drift: SimilarityDrift | None) -> SliceResult:
    """One slice's comparisons and calls (at the Bonferroni ``level``), drift, overlap, unjudged."""
    cfg, st, behaviour = p.cfg, p.st, p.behaviour
    comparisons = compare_metrics(
        p.baseline.per_query,
        p.candidate.per_query,
        p.metrics,
        query_ids=sl.query_ids,
        test=st.test,
        permutations=st.permutations,
        seed=st.seed,
        correction=st.correction,
        n_bootstrap=st.bootstrap,
        confidence=st.confidence,
    )
    n = next(
        (m.n_queries for m in comparisons if m.metric == cfg.metric),
        comparisons[0].n_queries if comparisons else 0,
    )
    min_queries, margin = st.min_slice_queries, cfg.primary_metric.margin
    calls, clipped = slice_calls(
        p.baseline.per_query,
        p.candidate.per_query,
        comparisons,
        sl.query_ids,
        margin,
        level,
        min_queries,
        alpha=1.0 - st.confidence,
    )
    primary = next((q for q in calls if q.metric == cfg.metric), None)
    overlap = behaviour.ranking_overlap.summary(sl.query_ids) if behaviour.ranking_overlap else None
    evaluated = n >= min_queries
    return SliceResult(
        dimension=sl.dimension,
        value=sl.value,
        n_queries=n,
        metrics=comparisons,
        drift=drift,
        overlap=overlap,
        unjudged={name: u.summary(sl.query_ids) for name, u in behaviour.unjudged_at.items()},
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
    ``checks``: None when not run; ``reindex`` and ``click_tests`` are keyed by candidate."""
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
