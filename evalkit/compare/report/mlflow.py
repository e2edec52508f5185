"""The names logged to MLflow: the parent run's flat comparison metrics and verdict tags.

Unmeasured values are left out; with several candidates each name is prefixed by
``<candidate>/``.  Every name: docs/reference/mlflow.md.

>>> from evalkit.results import VersionResult
>>> from evalkit.compare.verdict import compare_versions
>>> pq = {"ndcg@10": {f"q{i}": i / 20 for i in range(20)}}
>>> v = compare_versions(VersionResult("a", {}, {}, pq, None), [VersionResult("b", {}, {}, pq, None)])
>>> m = comparison_metrics(v)
>>> m["delta_ndcg_at_10"], m["p_ndcg_at_10"], verdict_tags(v)["evalkit.verdict"]
(0.0, 1.0, 'WARN')
"""

from __future__ import annotations

from evalkit.compare.calls import Quality
from evalkit.compare.report.cells import _finite
from evalkit.compare.thresholds import threshold_key
from evalkit.compare.verdict import CandidateComparison, Verdict
from evalkit.metrics.ir import mlflow_name
from evalkit.metrics.judged_only import judged_only_name

#: ``quality_code`` metric: 0 better, 1 no_worse, 2 inconclusive, 3 worse.
_QUALITY_CODE = {
    Quality.BETTER: 0,
    Quality.NO_WORSE: 1,
    Quality.INCONCLUSIVE: 2,
    Quality.WORSE: 3,
}


def _p_name(p: float) -> str:
    return "rbo_p" + f"{p:g}".replace(".", "_")


def candidate_metrics(c: CandidateComparison) -> dict[str, float]:
    """Flat comparison metrics of one candidate (names as in the module docstring)."""
    out: dict[str, float] = {}
    for m in c.metrics:
        name = mlflow_name(m.metric)
        out[f"delta_{name}"] = m.delta
        out[f"p_{name}"] = m.p_corrected
        out[f"p_raw_{name}"] = m.p_value
        out[f"ci_low_{name}"] = m.ci_low
        out[f"ci_high_{name}"] = m.ci_high
        out[f"ci_level_{name}"] = m.ci_confidence
        out[f"wins_{name}"] = m.wins
        out[f"ties_{name}"] = m.ties
        out[f"losses_{name}"] = m.losses
    if c.overlap is not None:
        out[f"top{c.overlap.k}_agreement"] = c.overlap.agreement
        for p, v in c.overlap.rbo.items():
            out[_p_name(p)] = v
    if c.drift is not None:
        out["mean_cosine_baseline"] = c.drift.baseline_mean
        out["mean_cosine_candidate"] = c.drift.candidate_mean
        out["mean_cosine_shift"] = c.drift.mean_shift
        out["low_score_share_baseline"] = c.drift.baseline_low_share
        out["low_score_share_candidate"] = c.drift.candidate_low_share
        out["low_score_share_delta"] = c.drift.low_share_delta
    for role, version in (("baseline", c.baseline), ("candidate", c.candidate)):
        u = c.unjudged.get(version)
        if u is not None:
            out[f"unjudged_at_{u.k}_{role}"] = u.mean
    for t in c.thresholds:
        key = threshold_key(t.threshold)
        if t.mapped is not None:  # no mapping: no metric (never a cut-off outside the scores)
            out[f"threshold_{key}_mapped"] = t.mapped
        out[f"threshold_{key}_precision_baseline"] = t.baseline_precision
        out[f"threshold_{key}_recall_baseline"] = t.baseline_recall
        out[f"threshold_{key}_precision_candidate"] = t.candidate_precision
        out[f"threshold_{key}_recall_candidate"] = t.candidate_recall
    out["quality_code"] = float(_QUALITY_CODE[c.quality_status])
    lat = c.latency
    out["latency_p50_ratio"] = lat.p50_ratio
    out["latency_p95_ratio"] = lat.p95_ratio
    out["latency_p95_ratio_ci_low"] = lat.p95_ratio_ci_low
    out["latency_p95_ratio_ci_high"] = lat.p95_ratio_ci_high
    out["latency_p99_ratio"] = lat.p99_ratio
    out["throughput_ratio"] = lat.throughput_ratio
    if c.reindex is not None:
        for state, value in c.reindex.scores.items():
            out[f"reindex_{state}_{mlflow_name(c.reindex.metric)}"] = value
        if c.reindex.rolling_safe is not None:
            out["reindex_rolling_safe"] = float(c.reindex.rolling_safe)
    primary = c.primary_call
    if primary is not None and primary.queries_needed is not None:
        out["queries_needed"] = primary.queries_needed
    if primary is not None and primary.plan is not None:
        out["queries_needed_low"] = primary.plan.low
        out["queries_needed_high"] = primary.plan.high
    judged = c.coverage.judged_only if c.coverage is not None else None
    if judged is not None:
        name = judged_only_name(judged.metric)
        out[f"delta_{name}"] = judged.delta
        out[f"ci_low_{name}"] = judged.ci_low
        out[f"ci_high_{name}"] = judged.ci_high
        out[f"p_{name}"] = judged.p_value
        out[f"quality_code_{name}"] = float(_QUALITY_CODE[judged.status])
    for q in c.click_quality:
        out[f"p_{q.metric}"] = q.p_corrected
        out[f"p_raw_{q.metric}"] = q.p_value
        out[f"ci_low_{q.metric}"] = q.ci_low
        out[f"ci_high_{q.metric}"] = q.ci_high
    out["verdict_code"] = c.status.code
    return {k: float(v) for k, v in out.items() if _finite(v)}


def comparison_metrics(verdict: Verdict) -> dict[str, float]:
    """Flat ``{name: value}`` for the parent MLflow run (prefixed per candidate if several)."""
    if len(verdict.candidates) == 1:
        return candidate_metrics(verdict.candidates[0])
    return {
        f"{c.candidate}/{k}": v for c in verdict.candidates for k, v in candidate_metrics(c).items()
    }


def verdict_tags(verdict: Verdict) -> dict[str, str]:
    """The parent run's ``evalkit.*`` tags and its MLflow description (the verdict first)."""
    text = verdict_summary(verdict)
    counts = ", ".join(
        f"{len(v)} {k.replace('_', '-')}" for k, v in verdict.checklist().items() if v
    )
    where = f" on {verdict.dataset}" if verdict.dataset else ""
    return {
        "evalkit.verdict": str(verdict.status),
        "evalkit.quality": str(verdict.quality),
        "evalkit.exit_code": str(verdict.exit_code),
        "evalkit.summary": text,
        "mlflow.note.content": f"**{text}**\n\nevalkit verdict{where}: {counts or 'no gates'}.",
    }


def verdict_summary(verdict: Verdict) -> str:
    """``evalkit.summary``: e.g. ``BLOCK: e5_small vs use_m3: ndcg@10 -0.0257 [...] (worse)``."""
    parts = []
    for c in verdict.candidates:
        q = c.primary_call
        call = f"{q.describe()} ({q.status.value.replace('_', ' ')})" if q else "not scored"
        parts.append(f"{c.candidate} vs {c.baseline}: {call}")
    return f"{verdict.status}: " + "; ".join(parts)
