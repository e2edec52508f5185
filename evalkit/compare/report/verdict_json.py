"""``verdict.json``: the verdict, exit code, checklist lists, quality calls, gates, comparison
metrics and the evidence per candidate, as one JSON document (NaN / inf written as ``null``).

>>> from evalkit.results import VersionResult
>>> from evalkit.compare.verdict import compare_versions
>>> pq = {"ndcg@10": {f"q{i}": i / 20 for i in range(20)}}
>>> v = compare_versions(VersionResult("a", {}, {}, pq, None), [VersionResult("b", {}, {}, pq, None)])
>>> d = verdict_dict(v)
>>> d["verdict"], d["exit_code"], d["candidates"][0]["candidate"]
('WARN', 0, 'b')
"""

from __future__ import annotations

from typing import Any

from evalkit.compare.report.mlflow import candidate_metrics, comparison_metrics
from evalkit.compare.status import jsonable as jsonable
from evalkit.compare.verdict import CandidateComparison, Verdict


def _coverage(c: CandidateComparison) -> dict[str, Any] | None:
    cov = c.coverage
    if cov is None:
        return None
    return {
        "metric": cov.metric,
        "k": cov.k,
        "n_queries": cov.n_queries,
        "unjudged": jsonable(cov.unjudged),
        "max_unjudged": cov.max_unjudged,
        "sparse": cov.sparse,
        "judged_only": cov.judged_only.to_dict() if cov.judged_only is not None else None,
    }


def verdict_dict(verdict: Verdict) -> dict[str, Any]:
    candidates = []
    for c in verdict.candidates:
        candidates.append(
            {
                "candidate": c.candidate,
                "status": str(c.status),
                "quality_status": str(c.quality_status),
                **c.checklist(),
                "quality": [q.to_dict() for q in c.quality],
                "click_quality": [q.to_dict() for q in c.click_quality],
                "thresholds": [t.to_dict() for t in c.thresholds],
                "reindex": jsonable(c.reindex),
                "gates": [g.to_dict() for g in c.gates],
                "comparison_metrics": candidate_metrics(c),
                "metrics": jsonable(c.metrics),
                "drift": jsonable(c.drift),
                "overlap": jsonable(c.overlap),
                "unjudged": jsonable(c.unjudged),
                "coverage": _coverage(c),
                "latency": jsonable(c.latency),
                "slices": [
                    {
                        "slice": s.label,
                        "n_queries": s.n_queries,
                        "status": str(s.status) if s.evaluated else "not_called",
                        "evaluated": s.evaluated,
                        "min_queries": s.min_queries,
                        "ci_clipped": s.ci_clipped,
                        "quality": [
                            q.to_dict() if s.evaluated else {**q.to_dict(), "status": "not_called"}
                            for q in s.quality
                        ],
                        "metrics": jsonable(s.metrics),
                        "drift": jsonable(s.drift),
                        "overlap": jsonable(s.overlap),
                        "unjudged": jsonable(s.unjudged),
                    }
                    for s in c.slices
                ],
                "regressions": jsonable(c.regressions),
            }
        )
    several = len(verdict.candidates) > 1
    return {
        "verdict": str(verdict.status),
        "exit_code": verdict.exit_code,
        "quality_status": str(verdict.quality),
        **verdict.checklist(),  # passed, follow_ups, undecided, blockers, actions
        "quality": (
            {c.candidate: [q.to_dict() for q in c.quality] for c in verdict.candidates}
            if several
            else [q.to_dict() for q in verdict.candidates[0].quality]
        ),
        "baseline": verdict.baseline,
        "dataset": verdict.dataset,
        "embedded_text": verdict.embedded,
        "test": verdict.settings.test,
        "test_label": verdict.test_label,
        "correction": verdict.settings.correction,
        "settings": jsonable(verdict.settings),
        "gate_config": jsonable(verdict.gate_config),
        "comparison_metrics": comparison_metrics(verdict),
        "candidates": candidates,
    }
