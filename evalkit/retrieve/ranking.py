"""The replayed rankings of one model version: top-k catalog rows and scores per query, ordered
by score descending, ties by item id descending (trec_eval's convention).

>>> import numpy as np
>>> r = Ranking(query_ids=["q1"], indices=np.array([[1, 0]]),
...             scores=np.array([[0.9, 0.5]], dtype=np.float32), item_ids=["d1", "d2"])
>>> r.top("q1", 2)
['d2', 'd1']
>>> r.k
2
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Ranking:
    """Top-k retrieval results for every replayed query (``ties``: (query, rank) positions whose
    score equals the previous rank's; ``boundary_ties``: queries whose k-th score ties an item
    outside the searched depth)."""

    query_ids: list[str]
    indices: np.ndarray  # int64 (n_queries, k), catalog row numbers, -1 = padding
    scores: np.ndarray  # float32 (n_queries, k)
    item_ids: list[str]  # catalog ids, indexed by the numbers in ``indices``
    ties: int = 0
    boundary_ties: int = 0
    _row: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self._row:
            self._row.update({q: i for i, q in enumerate(self.query_ids)})

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def row(self, query_id: str) -> int:
        return self._row[query_id]

    def top(self, query_id: str, n: int | None = None) -> list[str]:
        """Item ids of one query's top ``n`` (default k), best first."""
        idx = self.indices[self._row[query_id], : n or self.k]
        return [self.item_ids[i] for i in idx if i >= 0]

    def top_scores(self, query_id: str, n: int | None = None) -> list[float]:
        i = self._row[query_id]
        idx = self.indices[i, : n or self.k]
        return [float(s) for s, j in zip(self.scores[i, : n or self.k], idx) if j >= 0]

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{query_id: {item_id: score}}`` with the raw similarity scores."""
        return {q: dict(zip(self.top(q), self.top_scores(q))) for q in self.query_ids}
