"""Replay every query against a version's index (any :class:`~evalkit.retrieve.searcher.Searcher`)
and order the results deterministically: FAISS returns tied scores in arbitrary order, so evalkit
searches deeper than ``k`` and sorts by score descending, then item id descending.

>>> import numpy as np
>>> order = tie_break_order(np.array([[0.9, 0.5, 0.9]], dtype=np.float32),
...                         np.array([[0, 1, 2]]), id_rank=np.array([0, 1, 2]))
>>> order.tolist()  # rows 0 and 2 tie; the larger item id (row 2) goes first
[[2, 0, 1]]
"""

from __future__ import annotations

import numpy as np

from evalkit.retrieve.ranking import Ranking
from evalkit.retrieve.searcher import Searcher, search

#: Extra depth searched beyond k so that ties straddling rank k are resolved by item id.
TIE_MARGIN = 16


def id_ranks(item_ids: list[str]) -> np.ndarray:
    """Position of every item id in byte-wise (strcmp) sort order (Python's ``str`` order)."""
    order = np.argsort(np.asarray(item_ids, dtype=object), kind="stable")
    ranks = np.empty(len(item_ids), dtype=np.int64)
    ranks[order] = np.arange(len(item_ids))
    return ranks


def tie_break_order(scores: np.ndarray, rows: np.ndarray, id_rank: np.ndarray) -> np.ndarray:
    """Column order sorting each row by score desc, then item id desc (padding ``-1`` last)."""
    safe_rows = np.where(rows >= 0, rows, 0)
    tiebreak = np.where(rows >= 0, id_rank[safe_rows], -1)
    # np.lexsort sorts ascending by the last key first: primary -score, secondary -id rank.
    return np.lexsort((-tiebreak, -scores.astype(np.float64)), axis=1)


def replay(
    index: Searcher,
    query_vectors: np.ndarray,
    query_ids: list[str],
    item_ids: list[str],
    k: int,
    batch_size: int = 4096,
    progress: bool = False,
    id_rank: np.ndarray | None = None,
) -> Ranking:
    """Search every query, keep the deterministic top-``k`` and count ties."""
    n_items = index.ntotal
    k_eff = min(k, n_items)
    depth = min(n_items, k_eff + TIE_MARGIN)
    scores, rows = search(index, query_vectors, depth, batch_size, progress, desc="search")
    if id_rank is None:
        id_rank = id_ranks(item_ids)
    top_scores, top_rows, unresolved = _deterministic_top(scores, rows, id_rank, k_eff, n_items)
    # Ties that reach the searched depth may continue past it: search those queries deeper.
    while unresolved.any() and depth < n_items:
        depth = min(n_items, depth * 4)
        sel = np.flatnonzero(unresolved)
        s2, r2 = search(index, query_vectors[sel], depth, batch_size)
        top_scores[sel], top_rows[sel], still = _deterministic_top(s2, r2, id_rank, k_eff, n_items)
        unresolved[:] = False
        unresolved[sel] = still
    valid = top_rows >= 0
    ties = int(((top_scores[:, 1:] == top_scores[:, :-1]) & valid[:, 1:]).sum())
    return Ranking(
        query_ids=list(query_ids),
        indices=top_rows,
        scores=top_scores.astype(np.float32),
        item_ids=item_ids,
        ties=ties,
        boundary_ties=int(unresolved.sum()),
    )


def _deterministic_top(
    scores: np.ndarray, rows: np.ndarray, id_rank: np.ndarray, k: int, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted top-k plus a mask of queries whose k-th score ties the last searched one."""
    order = tie_break_order(scores, rows, id_rank)
    scores = np.take_along_axis(scores, order, axis=1)
    rows = np.take_along_axis(rows, order, axis=1)
    depth = scores.shape[1]
    if depth >= n_items or k == 0:
        unresolved = np.zeros(len(scores), dtype=bool)
    else:
        unresolved = (scores[:, k - 1] == scores[:, depth - 1]) & (rows[:, depth - 1] >= 0)
    return scores[:, :k].copy(), rows[:, :k].copy(), unresolved
