"""The mixed catalog's top-k merged from each catalog's own top-k (evalkit.retrieve.merge).

Checked against the real thing: the mixed matrix built row by row, indexed and replayed with
evalkit's own replay.  Every merged entry counted in ``exact`` equals the mixed search's entry
(row and score), on catalogs with many exact ties (coarsely quantised vectors and duplicated rows)
and on catalogs no larger than k (every list complete).
"""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.index.faiss_index import ArrayFlatIP
from evalkit.retrieve.merge import merge_disjoint
from evalkit.retrieve.replay import id_ranks, replay


def _catalog(rng, n, d, levels):
    x = np.round(rng.standard_normal((n, d)) * levels) / levels  # coarse: many tied scores
    x[rng.integers(0, n, n // 10)] = x[rng.integers(0, n, n // 10)]  # duplicated rows
    return np.ascontiguousarray(x, dtype=np.float32)


@pytest.mark.parametrize(
    ("n", "k", "fraction", "levels", "seed"),
    [(600, 20, 0.5, 2, 0), (600, 20, 0.1, 1, 1), (2000, 50, 0.5, 4, 2), (30, 50, 0.5, 2, 3)],
)
def test_merged_prefix_equals_the_mixed_catalogs_search(n, k, fraction, levels, seed):
    rng = np.random.default_rng(seed)
    d, nq = 8, 200
    a, b = _catalog(rng, n, d, levels), _catalog(rng, n, d, levels)
    queries = _catalog(rng, nq, d, levels)
    item_ids = [f"d{rng.integers(10**6)}-{i}" for i in range(n)]  # id order != row order
    qids = [f"q{i}" for i in range(nq)]
    id_rank = id_ranks(item_ids)
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: round(fraction * n)]] = True
    mixed = np.where(mask[:, None], b, a)

    def top(x):
        return replay(ArrayFlatIP(x), queries, qids, item_ids, k, id_rank=id_rank)

    on_a, on_b, truth = top(a), top(b), top(mixed)
    m = merge_disjoint(
        on_a.scores, on_a.indices, on_b.scores, on_b.indices,
        from_second=mask, id_rank=id_rank, n_items=n,
    )  # fmt: skip
    assert m.rows.shape == truth.indices.shape
    for i in range(nq):
        e = int(m.exact[i])
        assert 0 <= e <= truth.k
        assert m.rows[i, :e].tolist() == truth.indices[i, :e].tolist(), i
        assert m.scores[i, :e].tolist() == truth.scores[i, :e].tolist(), i
    if n <= k:
        assert (m.exact == truth.k).all()
    else:  # about min(fraction, 1 - fraction) * k of each list survives: a useful prefix
        assert np.median(m.exact) >= min(fraction, 1 - fraction) * k / 2


def test_an_exact_prefix_stops_at_the_first_entry_a_missing_row_could_precede():
    id_rank = np.arange(4)
    on_a = (np.array([[0.9, 0.8, 0.75]], dtype=np.float32), np.array([[0, 1, 3]]))
    on_b = (np.array([[0.95, 0.6, 0.5]], dtype=np.float32), np.array([[3, 2, 0]]))
    from_b = np.array([False, True, False, True])
    m = merge_disjoint(*on_a, *on_b, from_second=from_b, id_rank=id_rank, n_items=4)
    # A's row 2 scores at most 0.75 on A and B's row 1 at most 0.5 on B: the third place is open
    assert m.rows.tolist() == [[3, 0, -1]] and m.exact.tolist() == [2]
    with pytest.raises(ValueError, match="shapes"):
        merge_disjoint(*on_a, on_b[0][:, :2], on_b[1][:, :2], from_second=from_b,
                       id_rank=id_rank, n_items=4)  # fmt: skip
