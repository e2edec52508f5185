"""Judged-only metrics: a ranking scored on its condensed list (Sakai's nDCG', trec_eval ``-J``).

The *condensed list* drops every item the query has no judgment for (grade 0 is a judgment)
before the cut-off, keeping the ranking's order, then scores as usual (equal to pytrec_eval's
``judged_docs_only_flag=True``).  MLflow name: ``<metric>_judged_only``.

>>> import numpy as np
>>> from evalkit.retrieve.ranking import Ranking
>>> r = Ranking(["q1"], np.array([[2, 0, 1]]), np.array([[0.9, 0.8, 0.7]], np.float32),
...             ["d1", "d2", "unjudged"])
>>> qrels = {"q1": {"d1": 1, "d2": 0}}
>>> condensed(r, qrels).top("q1")  # "unjudged" (rank 1) is dropped
['d1', 'd2']
>>> judged_only_scores(r, qrels, ["mrr@10"]).overall
{'mrr@10': 1.0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from evalkit.metrics.ir import Scores, mlflow_name, score
from evalkit.retrieve.ranking import Ranking

SUFFIX = "_judged_only"


def judged_only_name(metric: str) -> str:
    """MLflow name of a judged-only metric: ``ndcg@10`` -> ``ndcg_at_10_judged_only``."""
    return mlflow_name(metric) + SUFFIX


def judged_mask(ranking: Ranking, qrels: Mapping[str, Mapping[str, int]]) -> np.ndarray:
    """``(queries, k)`` bool: the ranked item has a judgment (any grade) for its query (padding
    cells are False); one key ``row * (items + 1) + item`` per judged pair, looked up with ``isin``.
    """
    idx = np.asarray(ranking.indices, dtype=np.int64)
    n, width = idx.shape[0], len(ranking.item_ids) + 1
    pairs = [(ranking._row.get(q), d) for q, docs in qrels.items() for d in docs]
    rows = np.fromiter((-1 if r is None else r for r, _ in pairs), np.int64, len(pairs))
    items = pd.Index(np.asarray(ranking.item_ids, dtype=object)).get_indexer(
        np.asarray([d for _, d in pairs], dtype=object)
    )
    keep = (rows >= 0) & (items >= 0)
    judged_keys = np.unique(rows[keep] * width + items[keep])
    cells = np.arange(n, dtype=np.int64)[:, None] * width + idx
    return np.isin(cells, judged_keys) & (idx >= 0)


def condensed(ranking: Ranking, qrels: Mapping[str, Mapping[str, int]]) -> Ranking:
    """The ranking with every unjudged item removed, judged items moved up in their order
    (``-1`` pads the freed cells at the end of each row)."""
    mask = judged_mask(ranking, qrels)
    order = np.argsort(~mask, axis=1, kind="stable")
    idx = np.take_along_axis(np.asarray(ranking.indices), order, axis=1)
    scores = np.take_along_axis(np.asarray(ranking.scores), order, axis=1)
    kept = np.take_along_axis(mask, order, axis=1)
    idx = np.where(kept, idx, -1)
    scores = np.where(kept, scores, np.float32(0.0)).astype(np.float32)
    return replace(ranking, indices=idx, scores=scores, ties=0, boundary_ties=0)


def judged_only_scores(
    ranking: Ranking, qrels: Mapping[str, Mapping[str, int]], metrics: Sequence[str]
) -> Scores:
    """``metrics`` of the condensed ranking (same queries as :func:`~evalkit.metrics.ir.score`:
    those with a judgment of grade >= 1)."""
    return score(condensed(ranking, qrels), {q: dict(j) for q, j in qrels.items()}, list(metrics))


def unjudged_share(
    ranking: Ranking,
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
    query_ids: Sequence[str] | None = None,
) -> float:
    """Mean share of each query's top ``k`` results that have no judgment (unjudged@k), over
    ``query_ids`` (default: those with a judgment of grade >= 1) with results; NaN when none.
    """
    if query_ids is None:
        query_ids = [q for q, j in qrels.items() if any(g >= 1 for g in j.values())]
    rows = np.fromiter(
        (r for r in (ranking._row.get(q) for q in query_ids) if r is not None), np.int64
    )
    if rows.size == 0:
        return float("nan")
    top = np.asarray(ranking.indices)[rows, :k]
    judged = judged_mask(ranking, qrels)[rows, :k]
    n_items = (top >= 0).sum(axis=1)
    ok = n_items > 0
    if not ok.any():
        return float("nan")
    return float((1.0 - judged.sum(axis=1)[ok] / n_items[ok]).mean())
