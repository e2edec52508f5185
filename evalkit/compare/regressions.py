"""The queries whose primary metric dropped most, with both versions' top results side by side.

Each version's top-n items are ``(item_id, title or id, grade or None)``; only queries that
dropped are listed, worst first, ties by query id.

>>> import numpy as np
>>> from evalkit.retrieve.ranking import Ranking
>>> items = ["d1", "d2", "d3"]
>>> a = Ranking(["q1"], np.array([[0, 1]]), np.zeros((1, 2), np.float32), items)
>>> b = Ranking(["q1"], np.array([[2, 1]]), np.zeros((1, 2), np.float32), items)
>>> [r] = worst_regressions({"q1": 1.0}, {"q1": 0.4}, a, b, qrels={"q1": {"d1": 2}},
...                        titles=dict(zip(items, ["red", "blue", "green"])))
>>> r.delta, r.baseline_top[0], r.candidate_top[0]
(-0.6, ('d1', 'red', 2), ('d3', 'green', None))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from evalkit.retrieve.ranking import Ranking


@dataclass(frozen=True)
class Regression:
    """One query's drop, with each version's top items as ``(item_id, title, grade)``."""

    query_id: str
    query: str
    baseline_value: float
    candidate_value: float
    delta: float
    baseline_top: list[tuple[str, str, int | None]] = field(default_factory=list)
    candidate_top: list[tuple[str, str, int | None]] = field(default_factory=list)


def _top(
    ranking: Ranking | None,
    query_id: str,
    n: int,
    titles: Mapping[str, str],
    grades: Mapping[str, int],
) -> list[tuple[str, str, int | None]]:
    if ranking is None or query_id not in ranking._row:
        return []
    return [(d, titles.get(d) or d, grades.get(d)) for d in ranking.top(query_id, n)]


def worst_regressions(
    baseline: Mapping[str, float],
    candidate: Mapping[str, float],
    baseline_ranking: Ranking | None,
    candidate_ranking: Ranking | None,
    *,
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    titles: Mapping[str, str] | None = None,
    query_texts: Mapping[str, str] | None = None,
    n: int = 10,
    top_n: int = 5,
) -> list[Regression]:
    """The ``n`` largest per-query drops (``{query_id: value}`` of the primary metric)."""
    ids = [q for q in baseline if q in candidate]
    if not ids or n <= 0:
        return []
    b = np.fromiter((baseline[q] for q in ids), dtype=np.float64, count=len(ids))
    c = np.fromiter((candidate[q] for q in ids), dtype=np.float64, count=len(ids))
    delta = c - b
    dropped = np.flatnonzero(delta < 0)
    if dropped.size == 0:
        return []
    qid = np.asarray(ids, dtype=object)[dropped]
    order = np.lexsort((qid.astype(str), delta[dropped]))[:n]
    qrels, titles, query_texts = qrels or {}, titles or {}, query_texts or {}
    out = []
    for i in dropped[order]:
        q = ids[i]
        grades = qrels.get(q, {})
        out.append(
            Regression(
                query_id=q,
                query=query_texts.get(q, q),
                baseline_value=float(b[i]),
                candidate_value=float(c[i]),
                delta=float(delta[i]),
                baseline_top=_top(baseline_ranking, q, top_n, titles, grades),
                candidate_top=_top(candidate_ranking, q, top_n, titles, grades),
            )
        )
    return out
