"""unjudged@k: how much of a version's top-k no judgment or click covers.

For one query, unjudged@k = (top-k items with no judged/logged pair) / (items in its top-k); the
mean is over queries with at least one judged/logged pair and one retrieved item.

>>> import numpy as np
>>> from evalkit.retrieve.ranking import Ranking
>>> r = Ranking(["q1", "q2"], np.array([[0, 1], [1, 2]]), np.zeros((2, 2), np.float32),
...             ["a", "b", "c"])
>>> u = unjudged_at_k(r, [("q1", "a"), ("q1", "c")], k=2)
>>> u.summary().mean, u.summary().n_queries
(0.5, 1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from evalkit.retrieve.ranking import Ranking


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
