"""Is B at least as good as A?  Paired tests per metric, the fixed-sequence family, the calls and
the quality gates of one comparison.

>>> from evalkit.compare.gate_rules import GateConfig
>>> from evalkit.compare.compare_settings import CompareSettings
>>> from evalkit.results import VersionResult
>>> pq = lambda shift: {"ndcg@10": {f"q{i}": min(1.0, i / 40 + shift * (i % 3)) for i in range(40)}}
>>> a, b = VersionResult("a", {}, {}, pq(0.0), None), VersionResult("b", {}, {}, pq(0.05), None)
>>> q = answer_quality(a, b, ["ndcg@10"], GateConfig(), CompareSettings())
>>> q.primary.status, [g.name for g in q.gates]
(<Quality.BETTER: 'better'>, ['primary_metric', 'secondary_metrics'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from evalkit.compare.calls import QualityCall
from evalkit.compare.calls import call as quality_call
from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.coverage import Coverage, reconcile
from evalkit.compare.gate_config import GateConfig
from evalkit.compare.gate_rules import (
    GateResult,
    gate_click_correlation,
    gate_judgment_coverage,
    gate_primary_metric,
    gate_secondary_metrics,
)
from evalkit.compare.intervals import DualTest
from evalkit.compare.multiplicity import Adjusted, fixed_sequence
from evalkit.compare.power import plan_queries
from evalkit.compare.significance import (
    MetricComparison,
    aligned_scores,
    metric_comparisons,
    paired_tests,
)
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


def quality_calls(
    comparisons: Sequence[MetricComparison],
    margin: float,
    alpha: float,
    *,
    primary: str | None = None,
    power: float = 0.8,
) -> list[QualityCall]:
    """Calls from each metric's interval; the ``primary`` one carries the judged queries that
    would decide."""
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
    worklist: bool = True,
    queries_in_set: int | None = None,
    coverage: Coverage | None = None,
    judged: bool = False,
) -> QualityAnswer:
    """Tests, family correction, calls and quality gates of ``candidate`` against ``baseline``.
    ``worklist``: the top-k results hold unjudged items; ``queries_in_set``: the queries the data
    holds, judged or not."""
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
    if judged or coverage is not None:
        gates.insert(1, gate_judgment_coverage(cfg, coverage))
    if clicked:
        gates.append(gate_click_correlation(cfg, pooled, within, primary_passed=passed))
    return QualityAnswer(comparisons, calls, primary, n_primary, gates, clicked)
