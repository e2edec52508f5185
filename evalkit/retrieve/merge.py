"""The exact top-k of a catalog mixed from two catalogs, from each catalog's own exact top-k.

A half-migrated catalog holds A's vector for some rows and B's for the others (``from_second``).
A row missing from a list ranks after that list's last entry, so merged entries up to the first
place such a row could take are exact (``exact`` counts them).  See docs/explanation/verdict.md.

>>> import numpy as np
>>> id_rank = np.arange(4)
>>> on_a = (np.array([[0.9, 0.8, 0.75]], dtype=np.float32), np.array([[0, 1, 3]]))
>>> on_b = (np.array([[0.95, 0.6, 0.5]], dtype=np.float32), np.array([[3, 2, 0]]))
>>> m = merge_disjoint(*on_a, *on_b, from_second=np.array([False, True, False, True]),
...                    id_rank=id_rank, n_items=4)
>>> m.rows.tolist(), m.exact.tolist()  # row 2 (from A, below 0.75) or 1 (from B, below 0.5)?
([[3, 0, -1]], [2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evalkit.retrieve.replay import tie_break_order


@dataclass(frozen=True)
class MergedTop:
    """Merged top-k per query: ``rows`` (int64, ``-1`` pads), ``scores`` (float32) and ``exact``,
    the number of leading entries known to equal the mixed catalog's own top-k."""

    rows: np.ndarray
    scores: np.ndarray
    exact: np.ndarray


def merge_disjoint(
    first_scores: np.ndarray,
    first_rows: np.ndarray,
    second_scores: np.ndarray,
    second_rows: np.ndarray,
    *,
    from_second: np.ndarray,
    id_rank: np.ndarray,
    n_items: int,
) -> MergedTop:
    """Merge each query's exact top-k on the first catalog (rows not ``from_second``) with its
    exact top-k on the second; both in replay's order, ``(n, k)``, ``-1`` padding."""
    k = int(first_rows.shape[1])
    if second_rows.shape != first_rows.shape:
        raise ValueError(f"top-k lists of shapes {first_rows.shape} and {second_rows.shape}")
    keep1 = (first_rows >= 0) & ~from_second[np.maximum(first_rows, 0)]
    keep2 = (second_rows >= 0) & from_second[np.maximum(second_rows, 0)]
    scores = np.concatenate(
        [np.where(keep1, first_scores, -np.inf), np.where(keep2, second_scores, -np.inf)], axis=1
    )
    rows = np.concatenate([np.where(keep1, first_rows, -1), np.where(keep2, second_rows, -1)], 1)
    order = tie_break_order(scores, rows, id_rank)[:, :k]
    scores = np.take_along_axis(scores, order, axis=1)
    rows = np.take_along_axis(rows, order, axis=1)
    valid = rows >= 0
    if n_items <= k:  # the lists hold the whole catalog: nothing is missing from them
        exact = np.full(len(rows), k, dtype=np.int64)
    else:
        ok = valid.copy()
        for side_scores, side_rows in ((first_scores, first_rows), (second_scores, second_rows)):
            b_score = side_scores[:, k - 1 : k].astype(np.float64)
            b_rank = id_rank[np.maximum(side_rows[:, k - 1 : k], 0)]
            ok &= (scores > b_score) | (
                (scores == b_score) & (id_rank[np.maximum(rows, 0)] >= b_rank)
            )
        exact = np.cumprod(ok, axis=1).sum(axis=1).astype(np.int64)
    rows = np.where(valid, rows, -1).astype(np.int64)
    return MergedTop(rows=rows, scores=np.where(valid, scores, 0.0).astype(np.float32), exact=exact)
