"""Judgment coverage: how much of each top k is judged, and is that enough for the primary call?

:func:`unjudged_at_k` per query is (top-k items with no judged/logged pair) / (items in its top-k),
averaged over queries with a judged/logged pair and a retrieved item.  A :class:`Coverage` holds each version's unjudged share at the primary cut-off with the
judged-only call (the primary metric on the condensed list); above
``gates.judgments.max_unjudged``, :func:`reconcile` makes the primary call agree with it.  The
rule: docs/explanation/statistics.md ("Quality calls", judgment coverage).

>>> from evalkit.compare.calls import Quality, QualityCall
>>> primary = QualityCall("ndcg@10", 0.05, 0.01, 0.09, 0.01, 0.01, Quality.BETTER, 0.01)
>>> judged = QualityCall("ndcg@10", 0.03, -0.05, 0.11, 0.4, 0.4, Quality.INCONCLUSIVE, 0.01)
>>> cov = Coverage("ndcg@10", 10, {"A": 0.92, "B": 0.6}, 40, 0.5, judged, ("A", "B"))
>>> r = reconcile(primary, cov)
>>> str(r.status), r.note.split(";")[0]
('inconclusive', "judgments too sparse to call: 92% of A's top 10 unjudged")
>>> from evalkit.retrieve.ranking import Ranking
>>> rk = Ranking(["q1", "q2"], np.array([[0, 1], [1, 2]]), np.zeros((2, 2), np.float32),
...              ["a", "b", "c"])
>>> u = unjudged_at_k(rk, [("q1", "a"), ("q1", "c")], k=2)
>>> u.summary().mean, u.summary().n_queries
(0.5, 1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from evalkit.compare.calls import STATUS_TEXT, Quality, QualityCall
from evalkit.compare.calls import call as quality_call
from evalkit.compare.significance import DIFFERENCE_RANGE, clip_interval, paired_tests
from evalkit.compare.worklist import metric_cutoff
from evalkit.metrics.judged_only import judged_only_scores, unjudged_share
from evalkit.results import VersionResult

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.compare.compare_settings import CompareSettings
    from evalkit.compare.gate_config import GateConfig
    from evalkit.retrieve.ranking import Ranking


@dataclass(frozen=True)
class Coverage:
    """Each version's unjudged share of the top ``k`` and the judged-only comparison."""

    metric: str
    k: int
    unjudged: dict[str, float]  # version name -> mean unjudged@k over the scored queries
    n_queries: int
    max_unjudged: float
    judged_only: QualityCall | None  # the condensed-list paired comparison
    names: tuple[str, str] = ("", "")  # (baseline, candidate)

    @property
    def sparse(self) -> bool:
        return any(s > self.max_unjudged for s in self.unjudged.values() if math.isfinite(s))

    def sparsest(self) -> tuple[str, float]:
        """The version with the largest unjudged share, and that share."""
        name = max(self.names, key=lambda n: self.unjudged.get(n, -1.0))
        return name, self.unjudged.get(name, math.nan)

    def shares(self) -> str:
        """``A 92.0%, B 60.0%`` (baseline first)."""
        return ", ".join(f"{n} {self.unjudged.get(n, math.nan):.1%}" for n in self.names)


def judged_only_values(
    version: VersionResult, qrels: Mapping[str, Mapping[str, int]], metric: str
) -> dict[str, float] | None:
    """Per-query judged-only values of ``metric``: carried, else computed from the ranking."""
    if metric in version.judged_only:
        return version.judged_only[metric]
    if version.ranking is None:
        return None
    return judged_only_scores(version.ranking, qrels, [metric]).per_query[metric]


def measure_coverage(
    baseline: VersionResult,
    candidate: VersionResult,
    qrels: Mapping[str, Mapping[str, int]],
    cfg: GateConfig,
    st: CompareSettings,
) -> Coverage | None:
    """Both versions' top-k coverage and judged-only comparison; None without rankings or qrels."""
    if baseline.ranking is None or candidate.ranking is None or not qrels:
        return None
    metric, margin, alpha = cfg.metric, cfg.primary_metric.margin, cfg.primary_metric.alpha
    k = metric_cutoff(metric, baseline.ranking.k)[1]
    scored = list(baseline.per_query.get(metric, {}))
    names = (baseline.name, candidate.name)
    # the share the version's scoring stage logged, else computed here
    key = f"unjudged_at_{k}"
    unjudged = {
        v.name: v.extra[key] if key in v.extra else unjudged_share(v.ranking, qrels, k, scored)
        for v in (baseline, candidate)
    }
    b, c = (judged_only_values(v, qrels, metric) for v in (baseline, candidate))
    judged = None
    ids = [q for q in scored if b is not None and c is not None and q in b and q in c]
    if ids:
        bv = np.fromiter((b[q] for q in ids), np.float64, len(ids))
        cv = np.fromiter((c[q] for q in ids), np.float64, len(ids))
        [t] = paired_tests(
            bv[:, None], cv[:, None], test=st.test, permutations=st.permutations, seed=st.seed
        )
        low, high = clip_interval(*t.interval(1.0 - alpha), DIFFERENCE_RANGE)
        judged = QualityCall(
            metric=metric,
            delta=t.estimate,
            ci_low=low,
            ci_high=high,
            p_value=t.p_value,
            p_corrected=t.p_value,
            status=quality_call(
                t.estimate, low, high, margin=margin, p_value=t.p_value, alpha=alpha
            ),
            margin=margin,
            baseline=float(bv.mean()),
            candidate=float(cv.mean()),
            confidence=1.0 - alpha,
            family="judged_only",
            n_queries=len(ids),
        )
    return Coverage(metric, k, unjudged, len(scored), cfg.judgments.max_unjudged, judged, names)


def reconcile(primary: QualityCall, cov: Coverage | None) -> QualityCall:
    """The primary call, changed only when judgments are sparse and the judged-only call differs."""
    if cov is None or not cov.sparse or cov.judged_only is None:
        return primary
    judged = cov.judged_only.status
    status = primary.status
    if status == Quality.BETTER and judged == Quality.NO_WORSE:
        new = Quality.NO_WORSE
    elif (
        status.shown_no_worse
        and not judged.shown_no_worse
        or status == Quality.WORSE
        and judged.shown_no_worse
    ):
        new = Quality.INCONCLUSIVE
    else:
        return primary
    name, share = cov.sparsest()
    head = "judgments too sparse to call" if new == Quality.INCONCLUSIVE else "judgments sparse"
    note = (
        f"{head}: {share:.0%} of {name}'s top {cov.k} unjudged; the judged-only delta is "
        f"{STATUS_TEXT[judged]} ({cov.judged_only.describe()})"
    )
    if new == Quality.NO_WORSE:
        note += ", so the gain is not confirmed on the judged items"
    return replace(primary, status=new, note=note, queries_needed=None, plan=None)


@dataclass(frozen=True)
class UnjudgedSummary:
    k: int
    n_queries: int
    mean: float


@dataclass(frozen=True)
class UnjudgedAtK:
    """Per-query unjudged share of the top-k (NaN for queries without judgments or results)."""

    query_ids: list[str]
    k: int
    share: np.ndarray

    def summary(self, query_ids: Sequence[str] | None = None) -> UnjudgedSummary:
        mask = ~np.isnan(self.share)
        if query_ids is not None:
            wanted = set(query_ids)
            mask &= np.fromiter((q in wanted for q in self.query_ids), bool, len(self.query_ids))
        n = int(mask.sum())
        return UnjudgedSummary(self.k, n, float(self.share[mask].mean()) if n else math.nan)


def judged_pairs_from_qrels(qrels: Mapping[str, Mapping[str, int]]) -> list[tuple[str, str]]:
    """Every judged (query_id, item_id) pair, whatever its grade (0 is a judgment too)."""
    return [(q, d) for q, docs in qrels.items() for d in docs]


def unjudged_at_k(ranking: Ranking, judged: Iterable[tuple[str, str]], k: int = 10) -> UnjudgedAtK:
    """Share of each query's top-k items that are not among the ``judged`` (query, item) pairs."""
    idx = np.asarray(ranking.indices, dtype=np.int64)[:, :k]
    n = idx.shape[0]
    width = len(ranking.item_ids) + 1
    item_code = {item: i for i, item in enumerate(ranking.item_ids)}
    row_of = ranking._row
    keys = []
    judged_rows = np.zeros(n, dtype=bool)
    for q, item in judged:
        r = row_of.get(q)
        if r is None:
            continue
        judged_rows[r] = True
        c = item_code.get(item)
        if c is not None:
            keys.append(r * width + c)
    judged_keys = np.unique(np.asarray(keys, dtype=np.int64))
    cell_keys = np.arange(n, dtype=np.int64)[:, None] * width + idx
    present = idx >= 0
    covered = np.isin(cell_keys, judged_keys) & present
    n_items = present.sum(axis=1)
    ok = judged_rows & (n_items > 0)
    share = np.full(n, np.nan)
    share[ok] = 1.0 - covered.sum(axis=1)[ok] / n_items[ok]
    return UnjudgedAtK(list(ranking.query_ids), k, share)
