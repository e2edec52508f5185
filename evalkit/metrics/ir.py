"""IR metrics of a replayed ranking, computed by ranx, overall and per query.

Metrics are ranx's strings (``ndcg@10``); MLflow names replace ``@`` with ``_at_``.  Only queries
with a judgment of grade >= 1 are scored (as BEIR does).  The values match trec_eval's on a run
truncated at k (tests/test_metrics_vs_trec_eval.py).

>>> import numpy as np
>>> from evalkit.retrieve.ranking import Ranking
>>> r = Ranking(["q1"], np.array([[1, 0]]), np.array([[0.9, 0.5]], dtype=np.float32), ["d1", "d2"])
>>> s = score(r, {"q1": {"d1": 1}}, ["mrr@10", "recall@1"])
>>> s.overall, s.n_scored
({'mrr@10': 0.5, 'recall@1': 0.0}, 1)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evalkit.errors import ConfigError, DataError
from evalkit.retrieve.ranking import Ranking

#: Queries handed to ranx per call: bounds the arrays built for it (~k x 16 bytes per query).
SCORE_CHUNK = 50_000
DEFAULT_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100")
_METRIC = re.compile(r"^(ndcg|recall|mrr|map|precision|hit_rate|ndcg_burges|r-precision)(@\d+)?$")


def mlflow_name(metric: str) -> str:
    """``ndcg@10`` -> ``ndcg_at_10``."""
    return metric.replace("@", "_at_")


def check_metrics(metrics: list[str], k: int) -> list[str]:
    """Validate metric strings and their cut-offs against the retrieval depth ``k``."""
    out = []
    for m in metrics:
        m = str(m).strip()
        match = _METRIC.match(m)
        if not match:
            raise ConfigError(
                f"metric {m!r} is not supported (expected e.g. ndcg@10, recall@100, mrr@10, map@100)"
            )
        if match.group(2) and int(match.group(2)[1:]) > k:
            raise ConfigError(f"metric {m!r} needs depth {match.group(2)[1:]} but k={k}; raise k")
        out.append(m)
    return out


def check_primary_metric(primary: str, metrics: list[str]) -> str:
    """The verdict's metric must be one of the scored ``metrics`` (also with a single model)."""
    primary = str(primary).strip()
    if primary not in metrics:
        raise ConfigError(
            f"primary_metric={primary!r} is not in metrics={list(metrics)} "
            "(expected one of the scored metrics; add it to metrics or pick another)"
        )
    return primary


def check_scorable(
    qrels: dict[str, dict[str, int]], query_ids: Sequence[str], source: str = "judgments"
) -> None:
    """:class:`DataError` when no replayed query has a judgment of grade >= 1."""
    present = set(query_ids)
    judged = {q: j for q, j in qrels.items() if q in present}
    if any(g >= 1 for j in judged.values() for g in j.values()):
        return
    n = sum(len(j) for j in judged.values())
    raise DataError(
        f"nothing to score: all {n} judgments of the {len(judged)} replayed judged queries "
        "have grade 0",
        file=source or "judgments",
        expected="at least one judgment of grade >= 1",
    )


def missing_relevant(
    qrels: dict[str, dict[str, int]], query_ids: Sequence[str], item_ids: Sequence[str]
) -> tuple[int, int]:
    """``(judgments, items)``: relevant judgments of replayed queries whose item is not in the
    catalog, and the distinct items they name (they stay in the qrels: relevant, never retrieved).

    >>> missing_relevant({"q1": {"d1": 2, "gone": 1, "gone0": 0}, "q2": {"gone": 3}}, ["q1", "q2"], ["d1"])
    (2, 1)
    """
    present, catalog = set(query_ids), set(item_ids)
    names = [
        d
        for q, j in qrels.items()
        if q in present
        for d, g in j.items()
        if g >= 1 and d not in catalog
    ]
    return len(names), len(set(names))


@dataclass(frozen=True)
class Scores:
    """Metric means over scored queries and per-query values (``{metric: {query_id: value}}``)."""

    overall: dict[str, float]
    per_query: dict[str, dict[str, float]]
    n_scored: int
    n_without_relevant: int = 0
    scored_query_ids: list[str] = field(default_factory=list)


def scorable_qrels(
    qrels: dict[str, dict[str, int]], query_ids: list[str]
) -> dict[str, dict[str, int]]:
    """Judgments of replayed queries that have at least one item of grade >= 1."""
    present = set(query_ids)
    return {
        q: dict(j) for q, j in qrels.items() if q in present and any(g >= 1 for g in j.values())
    }


def score(
    ranking: Ranking,
    qrels: dict[str, dict[str, int]],
    metrics: list[str],
    chunk: int = SCORE_CHUNK,
) -> Scores:
    """Evaluate ``ranking`` against ``qrels`` with ranx, ``chunk`` queries per ranx call (ranx gets
    ``[item number, k - rank]`` arrays, not typed dicts of strings: memory bounded by the chunk)."""
    judged = scorable_qrels(qrels, ranking.query_ids)
    n_without = sum(1 for q in ranking.query_ids if q in qrels and q not in judged)
    if not judged:
        return Scores({m: float("nan") for m in metrics}, {m: {} for m in metrics}, 0, n_without)
    qids = sorted(judged)
    qrel_ids, qrel_grades, qrel_starts = qrels_arrays(judged, qids, ranking.item_ids)
    run_rows = ranking.indices[[ranking.row(q) for q in qids]]
    values = {m: np.empty(len(qids), dtype=np.float64) for m in metrics}
    for s in range(0, len(qids), max(1, chunk)):
        e = min(s + max(1, chunk), len(qids))
        lo, hi = qrel_starts[s], qrel_starts[e]
        part = _ranx_evaluate(
            _qrels_chunk(qrel_ids[lo:hi], qrel_grades[lo:hi], qrel_starts[s : e + 1] - lo),
            _run_chunk(run_rows[s:e]),
            metrics,
        )
        for m in metrics:
            values[m][s:e] = part[m]
    per_query = {m: dict(zip(qids, v.tolist())) for m, v in values.items()}
    overall = {m: float(sum(v.values()) / len(v)) for m, v in per_query.items()}
    return Scores(overall, per_query, len(qids), n_without, qids)


def qrels_arrays(
    judged: dict[str, dict[str, int]], qids: list[str], item_ids: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Judgments of ``qids`` as flat arrays: item numbers (catalog rows; ``len(item_ids) + j``
    for items missing from it), grades (each query's best first) and each query's start offset.

    >>> ids, grades, starts = qrels_arrays({"q": {"x": 1, "b": 2}}, ["q"], ["a", "b"])
    >>> ids.tolist(), grades.tolist(), starts.tolist()
    ([1.0, 2.0], [2.0, 1.0], [0, 2])
    """
    counts = np.fromiter((len(judged[q]) for q in qids), dtype=np.int64, count=len(qids))
    n = int(counts.sum())
    items = np.fromiter((d for q in qids for d in judged[q]), dtype=object, count=n)
    grades = np.fromiter((g for q in qids for g in judged[q].values()), dtype=np.float64, count=n)
    rows = pd.Index(np.asarray(item_ids, dtype=object)).get_indexer(items).astype(np.int64)
    missing = rows < 0
    if missing.any():
        _, unknown = np.unique(items[missing].astype(str), return_inverse=True)
        rows[missing] = len(item_ids) + unknown
    query = np.repeat(np.arange(len(qids)), counts)
    order = np.lexsort((-grades, query))  # within each query: grade descending (ranx's order)
    starts = np.zeros(len(qids) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    return rows[order].astype(np.float64), grades[order], starts


def _qrels_chunk(ids: np.ndarray, grades: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``(queries, max judged, 2)``: padding rows have item number -1 and grade 0, which every
    ranx metric drops (only grades >= 1 count, and -1 is never retrieved)."""
    counts = np.diff(starts)
    out = np.zeros((len(counts), int(counts.max(initial=1)), 2), dtype=np.float64)
    out[:, :, 0] = -1.0
    query = np.repeat(np.arange(len(counts)), counts)
    col = np.arange(len(ids)) - np.repeat(starts[:-1], counts)
    out[query, col, 0] = ids
    out[query, col, 1] = grades
    return out


def _run_chunk(rows: np.ndarray):
    """Rankings as ranx's run arrays ``[item number, k - rank]``, best first: one ``(queries, k,
    2)`` array, or with padding a numba typed list of exact-length arrays (padding would change
    ``precision``)."""
    k = rows.shape[1]
    rank_score = np.arange(k, 0, -1, dtype=np.float64)
    if (rows >= 0).all():
        out = np.empty((len(rows), k, 2), dtype=np.float64)
        out[:, :, 0] = rows
        out[:, :, 1] = rank_score
        return out
    from numba.typed import List as TypedList

    return TypedList(
        [
            np.column_stack((r[r >= 0].astype(np.float64), rank_score[: int((r >= 0).sum())]))
            for r in rows
        ]
    )


def _ranx_evaluate(qrels, run, metrics: list[str]) -> dict[str, np.ndarray]:
    import numba
    from ranx import evaluate  # imported when scoring starts (loads numba's cache)

    # ranx 0.3.21 fails on a single metric with return_mean=False (KeyError): ask twice.
    asked = list(metrics) if len(metrics) > 1 else [metrics[0], metrics[0]]
    threads = numba.get_num_threads()
    try:
        out = evaluate(qrels, run, asked, return_mean=False, save_results_in_run=False)
    finally:  # ranx drops numba to 1 thread for calls with < 10 queries (a short last chunk)
        numba.set_num_threads(threads)
    return {m: np.asarray(out[m], dtype=np.float64) for m in metrics}
