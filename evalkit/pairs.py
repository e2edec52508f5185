"""The (query, item) pairs every version is scored on (judged and logged click pairs, located
once per evaluation: :func:`pair_rows_of`), and their similarities.

>>> judged_pairs({"q1": {"d2": 1, "d1": 0}}, ["q1"], ["d1", "d2"])
([('q1', 'd1'), ('q1', 'd2')], array([0, 0]), array([0, 1]))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evalkit.errors import EndpointError
from evalkit.metrics.ir import missing_relevant

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.data.click_log import ClickLog
    from evalkit.data.schema import EvalData
    from evalkit.embed.model_version import EmbeddingResult
    from evalkit.retrieve.ranking import Ranking


def rows_in(ids: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """The row of each ``wanted`` id in ``ids`` (-1: absent)."""
    return pd.Index(np.asarray(ids, dtype=object)).get_indexer(np.asarray(wanted, dtype=object))


def pair_similarity(
    query_vecs: np.ndarray,
    item_vecs: np.ndarray,
    q_rows: np.ndarray,
    i_rows: np.ndarray,
    chunk_size: int = 1024,
    normalize: bool = True,
) -> np.ndarray:
    """Cosine similarity of ``query_vecs[q_rows[j]]`` and ``item_vecs[i_rows[j]]`` for every j (a
    zero vector: 0), ``chunk_size`` pairs at a time; ``normalize=False``: the raw inner product.

    >>> qv = np.array([[1.0, 0.0], [0.0, 2.0]]); iv = np.array([[3.0, 0.0], [1.0, 1.0]])
    >>> pair_similarity(qv, iv, np.array([0, 1]), np.array([0, 1]), normalize=False).tolist()
    [3.0, 2.0]
    """
    q_rows = np.asarray(q_rows, dtype=np.int64)
    i_rows = np.asarray(i_rows, dtype=np.int64)
    if len(q_rows) != len(i_rows):
        raise ValueError(f"q_rows ({len(q_rows)}) and i_rows ({len(i_rows)}) differ in length")
    out = np.empty(len(q_rows), dtype=np.float64)
    tiny = np.finfo(np.float64).tiny
    for s in range(0, len(q_rows), chunk_size):
        a = np.asarray(query_vecs[q_rows[s : s + chunk_size]], dtype=np.float64)
        b = np.asarray(item_vecs[i_rows[s : s + chunk_size]], dtype=np.float64)
        dot = np.einsum("ij,ij->i", a, b)
        if not normalize:
            out[s : s + chunk_size] = dot
            continue
        na = np.sqrt(np.einsum("ij,ij->i", a, a))
        nb = np.sqrt(np.einsum("ij,ij->i", b, b))
        out[s : s + chunk_size] = dot / np.maximum(na * nb, tiny)
    bad = ~np.isfinite(out)
    if bad.any():
        j = int(np.argmax(bad))
        raise EndpointError(
            f"{int(bad.sum())} pair similarities are not finite (first: query row {q_rows[j]}, "
            f"item row {i_rows[j]}): the embedding vectors contain NaN or inf"
        )
    return out


def judged_pairs(
    qrels: dict[str, dict[str, int]], query_ids: list[str], item_ids: list[str]
) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Every judged (query, item) pair in the tables, sorted, with their query and catalog rows."""
    pq = np.fromiter((qid for qid, items in qrels.items() for _ in items), dtype=object)
    pd_ = np.fromiter((i for items in qrels.values() for i in items), dtype=object)
    qr, ir = rows_in(query_ids, pq), rows_in(item_ids, pd_)
    keep = (qr >= 0) & (ir >= 0)
    pq, pd_, qr, ir = pq[keep], pd_[keep], qr[keep], ir[keep]
    order = np.lexsort((pd_, pq)) if len(pq) else np.zeros(0, dtype=np.int64)
    pairs = list(zip(pq[order].tolist(), pd_[order].tolist()))
    return pairs, qr[order].astype(np.int64), ir[order].astype(np.int64)


def pair_rows(
    log: ClickLog, query_ids: Sequence[str], catalog_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of each logged pair's query in ``query_ids`` and item in ``catalog_ids`` (``-1``
    absent), for :func:`pair_similarity`."""
    qrow, irow = rows_in(query_ids, log.query_ids), rows_in(catalog_ids, log.item_ids)
    return qrow.astype(np.int64), irow.astype(np.int64)


def align_similarity(
    log: ClickLog, pair_ids: Sequence[tuple[str, str]], similarity: np.ndarray
) -> np.ndarray:
    """The similarities of ``log``'s pairs in ``(pair_ids, similarity)``; NaN if absent."""
    if len(pair_ids) == 0:
        return np.full(len(log.query_ids), np.nan)
    q, i = zip(*pair_ids)
    index = pd.MultiIndex.from_arrays([np.asarray(q, dtype=object), np.asarray(i, dtype=object)])
    at = index.get_indexer(
        pd.MultiIndex.from_arrays(
            [np.asarray(log.query_ids, dtype=object), np.asarray(log.item_ids, dtype=object)]
        )
    )
    sim = np.asarray(similarity, dtype=float)
    return np.where(at >= 0, sim[np.maximum(at, 0)], np.nan)


@dataclass(frozen=True)
class PairRows:
    """Rows of the judged and the logged (query, item) pairs, the same for every version."""

    judged: list[tuple[str, str]]
    judged_q: np.ndarray
    judged_i: np.ndarray
    click_q: np.ndarray | None = None
    click_i: np.ndarray | None = None
    #: (relevant judgments, distinct items) judged but not in the catalog: :func:`missing_relevant`
    missing: tuple[int, int] = (0, 0)

    def wanted_items(self) -> np.ndarray:
        want = self.judged_i
        if self.click_i is not None:
            want = np.union1d(want, self.click_i[self.click_i >= 0])
        return np.unique(want)


def pair_rows_of(data: EvalData) -> PairRows:
    qrels = data.judgments.qrels if data.judgments is not None else {}
    judged, qr, ir = judged_pairs(qrels, data.queries.ids, data.catalog.ids)
    cq = ci = None
    if data.clicks is not None:
        cq, ci = pair_rows(data.clicks, data.queries.ids, data.catalog.ids)
    missing = missing_relevant(qrels, data.queries.ids, data.catalog.ids)
    return PairRows(judged, qr, ir, cq, ci, missing)


def click_pair_similarity(
    query_vectors: np.ndarray,
    catalog: np.ndarray,
    rows: PairRows,
    item_pos: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray | None:
    """Similarity of every logged pair (NaN: unknown); ``item_pos`` maps catalog rows to rows of
    ``catalog`` when it holds only some of them."""
    if rows.click_q is None or rows.click_i is None:
        return None
    cq, ci = rows.click_q, rows.click_i
    out = np.full(len(cq), np.nan, dtype=np.float32)
    ok = (cq >= 0) & (ci >= 0)
    items = ci[ok] if item_pos is None else item_pos(ci[ok])
    out[ok] = pair_similarity(query_vectors, catalog, cq[ok], items, normalize=False)
    return out


@dataclass
class Searched:
    """One version's catalog searched (what :meth:`evalkit.engine.Engine.search` returns)."""

    queries: EmbeddingResult  # the queries' vectors and their requests
    ranking: Ranking
    stats: dict[str, float]
    similarity: np.ndarray  # judged pairs (PairRows.judged), raw inner product
    click_similarity: np.ndarray | None  # logged pairs, NaN where unknown
    remote: dict[str, Any] = field(default_factory=dict)  # engine=ray: the workers' embedding
