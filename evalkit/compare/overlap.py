"""How much two versions' rankings agree: top-k agreement and rank-biased overlap (RBO).

:func:`topk_agreement` is ``|A_k & B_k| / max(|A_k|, |B_k|)`` per query; :func:`rbo` is the
extrapolated RBO (Webber, Moffat & Zobel, ACM TOIS 2010, eq. 32).  Both are vectorised over
queries.  Definitions: docs/explanation/statistics.md.

>>> import numpy as np
>>> a = np.array([[1, 2, 3, 4, 5]]); b = np.array([[2, 3, 4, 1, 5]])
>>> round(float(rbo(a, b, 0.9)[0]), 3)
0.828
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from evalkit.retrieve.ranking import Ranking

_BLOCK_CELLS = 1 << 22  # cells of a row block of the (rows, depth) overlap matrices


def align_rankings(
    baseline: Ranking, candidate: Ranking, query_ids: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Both rankings as int64 item-code matrices on the same query rows (``-1`` = no item);
    codes index the baseline's ``item_ids``, then the candidate's."""
    if query_ids is None:
        seen = set(baseline.query_ids)
        query_ids = list(baseline.query_ids) + [q for q in candidate.query_ids if q not in seen]
    else:
        query_ids = list(query_ids)
    if candidate.item_ids is baseline.item_ids or candidate.item_ids == baseline.item_ids:
        remap = None
    else:
        code = {item: i for i, item in enumerate(baseline.item_ids)}
        nxt = len(baseline.item_ids)
        remap = np.empty(len(candidate.item_ids) + 1, dtype=np.int64)
        remap[-1] = -1  # index -1 (padding) maps to -1
        for i, item in enumerate(candidate.item_ids):
            c = code.get(item)
            if c is None:
                c = code[item] = nxt
                nxt += 1
            remap[i] = c
    a = _rows(baseline, query_ids)
    b = _rows(candidate, query_ids)
    if remap is not None:
        b = remap[b]
    depth = max(a.shape[1], b.shape[1])
    return query_ids, _pad(a, depth), _pad(b, depth)


def _rows(ranking: Ranking, query_ids: Sequence[str]) -> np.ndarray:
    idx = np.asarray(ranking.indices, dtype=np.int64)
    lookup = ranking._row
    rows = np.fromiter((lookup.get(q, -1) for q in query_ids), dtype=np.int64, count=len(query_ids))
    out = np.full((len(query_ids), idx.shape[1]), -1, dtype=np.int64)
    ok = rows >= 0
    out[ok] = idx[rows[ok]]
    return out


def _pad(x: np.ndarray, depth: int) -> np.ndarray:
    if x.shape[1] == depth:
        return x
    return np.concatenate([x, np.full((x.shape[0], depth - x.shape[1]), -1, np.int64)], axis=1)


def positions_in(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each cell of ``a``, the position of its item in the same row of ``b`` (``-1``: absent);
    items must not repeat within a row."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.size == 0 or b.size == 0 or not (b >= 0).any():
        return np.full(a.shape, -1, dtype=np.int64)
    width = int(max(a.max(), b.max())) + 2  # width - 1 is a sentinel no item equals
    rows = np.arange(b.shape[0], dtype=np.int64)[:, None] * width
    b_items = np.where(b >= 0, b, width - 1)
    order = np.argsort(b_items, axis=1)
    keys_b = (rows + np.take_along_axis(b_items, order, axis=1)).ravel()
    keys_a = rows + a
    loc = np.minimum(np.searchsorted(keys_b, keys_a), keys_b.size - 1)
    found = (a >= 0) & (keys_b[loc] == keys_a)
    return np.where(found, order.ravel()[loc], -1)


def _overlaps(pos: np.ndarray, depth: int) -> np.ndarray:
    """``X[:, d-1]`` from the positions of ``a``'s cells in ``b`` (see :func:`positions_in`)."""
    n, ka = pos.shape
    i = np.broadcast_to(np.arange(ka, dtype=np.int64), pos.shape)
    hit = (pos >= 0) & (pos < depth) & (i < depth)
    first_depth = np.maximum(i, pos)[hit]  # the match counts from depth max(i, j) + 1 on
    row = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], pos.shape)[hit]
    counts = np.bincount(row * depth + first_depth, minlength=n * depth)
    return np.cumsum(counts.reshape(n, depth), axis=1, dtype=np.int32)


def overlap_at_depths(a: np.ndarray, b: np.ndarray, depth: int | None = None) -> np.ndarray:
    """``X[:, d-1]`` = size of the intersection of the rows' top-``d`` prefixes, d = 1..depth."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    return _overlaps(positions_in(a, b), depth or max(a.shape[1], b.shape[1]))


def _lengths(x: np.ndarray) -> np.ndarray:
    return np.count_nonzero(np.asarray(x) >= 0, axis=1)


def _agreement(overlap_k: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, k: int) -> np.ndarray:
    denom = np.maximum(np.minimum(len_a, k), np.minimum(len_b, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, overlap_k / np.maximum(denom, 1), np.nan)


def topk_agreement(a: np.ndarray, b: np.ndarray, k: int = 3) -> np.ndarray:
    """Per-row ``|A_k & B_k| / max(|A_k|, |B_k|)``; NaN where both rows are empty."""
    a = np.asarray(a, dtype=np.int64)[:, :k]
    b = np.asarray(b, dtype=np.int64)[:, :k]
    overlap = np.count_nonzero(positions_in(a, b) >= 0, axis=1)
    return _agreement(overlap, _lengths(a), _lengths(b), k)


def rbo(a: np.ndarray, b: np.ndarray, p: float = 0.9) -> np.ndarray:
    """Per-row extrapolated RBO (Webber et al. 2010, eq. 32); NaN where both rows are empty."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    depth = max(a.shape[1], b.shape[1])
    return rbo_from_overlaps(overlap_at_depths(a, b, depth), _lengths(a), _lengths(b), p)


def rbo_from_overlaps(x: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, p: float) -> np.ndarray:
    """Extrapolated RBO per row from prefix overlaps ``x`` (``(n, depth)``) and list lengths."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"RBO persistence p={p} must be strictly between 0 and 1")
    depth = x.shape[1]
    d = np.arange(1, depth + 1, dtype=np.float64)
    w = p**d
    out = np.empty(x.shape[0])
    rows = max(1, _BLOCK_CELLS // max(depth, 1))
    for start in range(0, x.shape[0], rows):
        sl = slice(start, start + rows)
        out[sl] = _rbo_block(x[sl], len_a[sl], len_b[sl], p, d, w)
    return out


def _rbo_block(
    x: np.ndarray, la: np.ndarray, lb: np.ndarray, p: float, d: np.ndarray, w: np.ndarray
) -> np.ndarray:
    long_, short = np.maximum(la, lb), np.minimum(la, lb)
    r = np.arange(x.shape[0])
    s_safe = np.maximum(short, 1)
    l_safe = np.maximum(long_, 1)
    x_s = x[r, s_safe - 1] * (short > 0)
    x_l = x[r, l_safe - 1] * (long_ > 0)
    within_l = d[None, :] <= long_[:, None]
    term1 = np.sum(np.where(within_l, x / d * w, 0.0), axis=1)
    beyond_s = within_l & (d[None, :] > short[:, None])
    term2 = np.sum(
        np.where(beyond_s, x_s[:, None] * (d - short[:, None]) / (s_safe[:, None] * d) * w, 0.0),
        axis=1,
    )
    term3 = ((x_l - x_s) / l_safe + x_s / s_safe) * p ** long_.astype(np.float64)
    value = (1.0 - p) / p * (term1 + term2) + term3
    value = np.where(short == 0, 0.0, value)
    return np.where(long_ == 0, np.nan, value)


@dataclass(frozen=True)
class OverlapSummary:
    """Mean top-k agreement and RBO over the queries where at least one version returned items."""

    n_queries: int
    k: int
    agreement: float
    rbo: dict[float, float] = field(default_factory=dict)
    depth: int = 0


@dataclass(frozen=True)
class RankingOverlap:
    """Per-query top-k agreement and RBO of two versions (rows follow ``query_ids``)."""

    query_ids: list[str]
    k: int
    depth: int
    agreement: np.ndarray
    rbo: dict[float, np.ndarray]

    def summary(self, query_ids: Sequence[str] | None = None) -> OverlapSummary:
        """Means over all queries, or over ``query_ids`` (e.g. one slice)."""
        if query_ids is None:
            mask = np.ones(len(self.query_ids), dtype=bool)
        else:
            wanted = set(query_ids)
            mask = np.fromiter((q in wanted for q in self.query_ids), bool, len(self.query_ids))
        mask &= ~np.isnan(self.agreement)
        n = int(mask.sum())

        def mean(x: np.ndarray) -> float:
            return float(x[mask].mean()) if n else math.nan

        return OverlapSummary(
            n_queries=n,
            k=self.k,
            agreement=mean(self.agreement),
            rbo={p: mean(v) for p, v in self.rbo.items()},
            depth=self.depth,
        )


def ranking_overlap(
    baseline: Ranking,
    candidate: Ranking,
    k: int = 3,
    rbo_p: Sequence[float] = (0.9, 0.5),
) -> RankingOverlap:
    """Top-k agreement and RBO (at every p in ``rbo_p``) of two versions' rankings, per query."""
    ids, a, b = align_rankings(baseline, candidate)
    depth = a.shape[1]
    x = _overlaps(positions_in(a, b), depth)  # one search serves agreement and every RBO
    len_a, len_b = _lengths(a), _lengths(b)
    overlap_k = x[:, min(k, depth) - 1] if depth else np.zeros(len(ids))
    return RankingOverlap(
        query_ids=ids,
        k=k,
        depth=depth,
        agreement=_agreement(overlap_k, len_a, len_b, k),
        rbo={float(p): rbo_from_overlaps(x, len_a, len_b, float(p)) for p in rbo_p},
    )
