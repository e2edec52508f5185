"""Top-k agreement, rank-biased overlap (hand-computed + an independent scalar RBO) and unjudged@k."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalkit.compare.coverage import judged_pairs_from_qrels, unjudged_at_k
from evalkit.compare.overlap import (
    align_rankings,
    overlap_at_depths,
    positions_in,
    ranking_overlap,
    rbo,
    topk_agreement,
)
from evalkit.retrieve.ranking import Ranking


def rbo_ext_scalar(left: list, right: list, p: float) -> float:
    """Webber et al. (2010) eq. (32), written independently over Python lists and sets."""
    if len(left) < len(right):
        left, right = right, left
    long_, short = left, right
    ln, s = len(long_), len(short)
    if ln == 0:
        return math.nan
    if s == 0:
        return 0.0

    def x(d: int) -> int:
        return len(set(long_[:d]) & set(short[:d]))

    sum1 = sum(x(d) / d * p**d for d in range(1, ln + 1))
    sum2 = sum(x(s) * (d - s) / (s * d) * p**d for d in range(s + 1, ln + 1))
    return (1 - p) / p * (sum1 + sum2) + ((x(ln) - x(s)) / ln + x(s) / s) * p**ln


def _pad(rows: list[list[int]], width: int) -> np.ndarray:
    return np.array([r + [-1] * (width - len(r)) for r in rows], dtype=np.int64)


def test_rbo_hand_computed_examples() -> None:
    # [1,2,3,4,5] vs [2,3,4,1,5], p=0.9: X = 0,1,2,4,5
    # (0.1/0.9) * (0 + 1/2*0.81 + 2/3*0.729 + 4/4*0.6561 + 5/5*0.59049) + 5/5*0.59049 = 0.82800...
    a, b = np.array([[1, 2, 3, 4, 5]]), np.array([[2, 3, 4, 1, 5]])
    want = (0.1 / 0.9) * (0.5 * 0.81 + 2 / 3 * 0.729 + 0.6561 + 0.59049) + 0.59049
    assert rbo(a, b, 0.9)[0] == pytest.approx(want, abs=1e-12)
    assert round(want, 3) == 0.828  # the value published with the reference implementations
    # [a,b,c] vs [a,c,b], p=0.5: X = 1,1,3 -> 1*(1*.5 + 1/2*.25 + 1*.125) + 1*.125 = 0.875
    assert rbo(np.array([[0, 1, 2]]), np.array([[0, 2, 1]]), 0.5)[0] == pytest.approx(0.875)
    # identical -> 1, disjoint -> 0, one empty -> 0, both empty -> NaN (left out of means)
    same = np.array([[4, 5, 6, 7]])
    assert rbo(same, same, 0.9)[0] == pytest.approx(1.0, abs=1e-12)
    assert rbo(np.array([[1, 2]]), np.array([[3, 4]]), 0.9)[0] == 0.0
    assert rbo(np.array([[1, 2]]), np.array([[-1, -1]]), 0.9)[0] == 0.0
    assert math.isnan(rbo(np.array([[-1, -1]]), np.array([[-1, -1]]), 0.9)[0])


def test_rbo_uneven_lists_hand_computed() -> None:
    # L = [1,2,3], S = [2], p = 0.5: l=3, s=1; X_1=0, X_2=1, X_3=1; X_s = X_1 = 0
    # sum1 = 0 + 1/2*.25 + 1/3*.125 ; sum2 = 0 (X_s = 0)
    # rbo = 1 * sum1 + ((1 - 0)/3 + 0/1) * .125
    want = (0.5 * 0.25 + 0.125 / 3) + 0.125 / 3
    got = rbo(np.array([[1, 2, 3]]), np.array([[2, -1, -1]]), 0.5)[0]
    assert got == pytest.approx(want, abs=1e-12)
    assert got == pytest.approx(rbo_ext_scalar([1, 2, 3], [2], 0.5), abs=1e-12)


@pytest.mark.parametrize("p", [0.9, 0.5])
def test_rbo_vectorised_equals_independent_scalar_form(p: float) -> None:
    rng = np.random.default_rng(0)
    rows_a, rows_b = [], []
    for _ in range(300):
        la, lb = rng.integers(0, 13, size=2)
        pool = rng.permutation(20)
        rows_a.append(pool[:la].tolist())
        rows_b.append(rng.permutation(np.concatenate([pool[:lb], pool[15:]]))[:lb].tolist())
    got = rbo(_pad(rows_a, 12), _pad(rows_b, 12), p)
    want = np.array([rbo_ext_scalar(a, b, p) for a, b in zip(rows_a, rows_b)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, equal_nan=True)


def test_overlap_depths_and_positions() -> None:
    a = np.array([[1, 2, 3, 4], [9, 8, -1, -1]])
    b = np.array([[4, 3, 2, 1], [8, 7, 9, -1]])
    assert positions_in(a, b).tolist() == [[3, 2, 1, 0], [2, 0, -1, -1]]
    assert overlap_at_depths(a, b).tolist() == [[0, 0, 2, 4], [0, 1, 2, 2]]


def test_topk_agreement_hand_computed() -> None:
    a = np.array([[1, 2, 3, 4], [1, 2, -1, -1], [-1, -1, -1, -1], [5, 6, 7, 8]])
    b = np.array([[3, 9, 1, 2], [2, 5, 6, -1], [-1, -1, -1, -1], [5, 6, 7, 9]])
    got = topk_agreement(a, b, 3)
    assert got[0] == pytest.approx(2 / 3)  # {1,2,3} & {3,9,1}
    assert got[1] == pytest.approx(1 / 3)  # {1,2} & {2,5,6}: 1 of max(2, 3)
    assert math.isnan(got[2])  # nothing retrieved by either: left out
    assert got[3] == 1.0


def _ranking(qids, rows, items) -> Ranking:
    idx = _pad(rows, max(len(r) for r in rows))
    scores = np.where(idx >= 0, 1.0 / (np.arange(idx.shape[1]) + 1), 0).astype(np.float32)
    return Ranking(list(qids), idx, scores, list(items))


def test_ranking_overlap_aligns_queries_and_item_vocabularies() -> None:
    a = _ranking(["q1", "q2"], [[0, 1, 2], [2, 1, 0]], ["x", "y", "z"])
    # same items, different catalog order, queries in another order, q3 only in the candidate
    b = _ranking(["q2", "q1", "q3"], [[0, 1, 2], [2, 1, 0], [0, 1, 2]], ["z", "y", "x"])
    ids, ra, rb = align_rankings(a, b)
    assert ids == ["q1", "q2", "q3"]
    assert ra[2].tolist() == [-1, -1, -1]
    ov = ranking_overlap(a, b, k=3)
    assert ov.agreement[:2].tolist() == [1.0, 1.0] and ov.agreement[2] == 0.0
    s = ov.summary(["q1", "q2"])
    assert s.agreement == 1.0 and s.rbo[0.9] == pytest.approx(1.0) and s.n_queries == 2
    assert ranking_overlap(a, a).summary().rbo == {0.9: pytest.approx(1.0), 0.5: pytest.approx(1.0)}


def test_unjudged_at_k_hand_computed() -> None:
    r = _ranking(["q1", "q2", "q3"], [[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 2, 3]], "abcd")
    qrels = {"q1": {"a": 1, "c": 0}, "q2": {"d": 2}, "qX": {"a": 1}}
    u = unjudged_at_k(r, judged_pairs_from_qrels(qrels), k=3)
    assert u.share[0] == pytest.approx(1 / 3)  # a, b, c: b unjudged (grade 0 counts as judged)
    assert u.share[1] == pytest.approx(2 / 3)  # d, c, b: c and b unjudged
    assert math.isnan(u.share[2])  # q3 has no judgments at all: not counted
    s = u.summary()
    assert s.n_queries == 2 and s.mean == pytest.approx(0.5)
    assert u.summary(["q2"]).mean == pytest.approx(2 / 3)
