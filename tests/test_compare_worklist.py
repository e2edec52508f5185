"""The judging worklist (evalkit/compare/worklist.py): weights, order, ties and the CSV."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from evalkit.compare.worklist import (
    COLUMNS,
    WORKLIST_FILE,
    build_worklist,
    evaluation_worklist,
    metric_cutoff,
    rank_unjudged,
)
from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.results import VersionResult
from evalkit.retrieve.ranking import Ranking


def disc(r: int) -> float:
    return 1.0 / math.log2(r + 1)


def test_order_matches_a_hand_computed_example():
    # Two scored queries (n = 2) and one query without any relevant judgment (it would join: n + 1).
    top_a = {"q1": ["a", "b", "c", "d"], "q2": ["e", "f", "g", "h"], "q3": ["x", "y"]}
    top_b = {"q1": ["c", "b", "a", "z"], "q2": ["e", "g", "f", "h"], "q3": ["y", "w"]}
    qrels = {
        "q1": {"b": 2},  # IDCG@4 = 2
        "q2": {"e": 1, "h": 3},  # IDCG@4 = 3 + 1/log2(3)
        "q3": {"x": 0},  # judged, none relevant: IDCG would become 1 (d alone, grade 1)
    }
    got = rank_unjudged(top_a, top_b, qrels, "ndcg@4")
    idcg2 = 3 + disc(2)
    want = {
        ("q1", "a"): abs(disc(3) - disc(1)) / (2 * 2),
        ("q1", "c"): abs(disc(1) - disc(3)) / (2 * 2),
        ("q1", "d"): disc(4) / (2 * 2),
        ("q1", "z"): disc(4) / (2 * 2),
        ("q2", "f"): abs(disc(3) - disc(2)) / (idcg2 * 2),
        ("q2", "g"): abs(disc(2) - disc(3)) / (idcg2 * 2),
        ("q3", "y"): abs(disc(1) - disc(2)) / 3,
        ("q3", "w"): disc(2) / 3,
    }
    assert {(u.query_id, u.item_id): u.priority for u in got} == pytest.approx(want, abs=1e-15)
    # Highest first; equal priorities by the larger single-version weight, then query, item id.
    assert [(u.query_id, u.item_id) for u in got] == [
        ("q3", "w"),  # 0.6309 / 3 = 0.2103
        ("q1", "a"),  # 0.5 / 4 = 0.125, reach 1 / 4
        ("q1", "c"),  # the same priority and reach as a: item id
        ("q3", "y"),  # 0.3691 / 3 = 0.1230
        ("q1", "d"),  # 0.4307 / 4 = 0.1077
        ("q1", "z"),
        ("q2", "f"),  # 0.1309 / (3.6309 * 2) = 0.0180
        ("q2", "g"),
    ]
    assert [u.rank_a for u in got if u.query_id == "q3"] == [None, 2]
    assert [u.rank_b for u in got if u.query_id == "q3"] == [2, 1]


def test_explicit_order_of_the_example():
    top_a = {"q1": ["a", "b"], "q2": ["c", "d"]}
    top_b = {"q1": ["b", "a"], "q2": ["e", "c"]}
    qrels = {"q1": {"b": 1}, "q2": {"d": 1}}
    got = rank_unjudged(top_a, top_b, qrels, "ndcg@2")
    # q2: e absent from A, rank 1 in B: |1 - 0| / (1 * 2) = 0.5;  c: |1/log2(3) - 1| / 2 = 0.1845
    # q1: a: |1/log2(3) - 1| / 2 = 0.1845 (same as c: reach 1/2 both -> query id q1 first)
    assert [(u.query_id, u.item_id) for u in got] == [("q2", "e"), ("q1", "a"), ("q2", "c")]
    assert [round(u.priority, 4) for u in got] == [0.5, 0.1845, 0.1845]


def test_ties_are_broken_by_reach_then_ids():
    # The same weight in two queries (judgments listed in another order): query id order.
    top_a = {"qb": ["x", "r1", "r2", "r3"], "qa": ["y", "s1", "s2", "s3"]}
    top_b = {"qb": ["r1", "r2", "r3", "x"], "qa": ["s1", "s2", "s3", "y"]}
    qrels = {
        "qb": {"r1": 1, "r2": 2, "r3": 3},
        "qa": {"s3": 3, "s1": 1, "s2": 2},
    }
    got = rank_unjudged(top_a, top_b, qrels, "ndcg@4")
    assert [(u.query_id, u.item_id) for u in got] == [("qa", "y"), ("qb", "x")]
    assert got[0].priority == pytest.approx(got[1].priority)
    # Equal priority and reach (a swap of ranks 1 and 2): item id order.
    got = rank_unjudged({"q": ["m", "k"]}, {"q": ["k", "m"]}, {"q": {"z": 1}}, "ndcg@2")
    assert [u.item_id for u in got] == ["k", "m"]  # same priority and reach: item id order
    assert got[0].priority == got[1].priority
    # Equal priority, different reach (mrr's 1/r discount): t ranked 1 / 2 -> |1/2 - 1| = 0.5,
    # reach 1; s ranked 2 / absent -> 0.5, reach 0.5: t before s, against the id order; u
    # (absent / 1) -> 1.0 leads.
    got = rank_unjudged({"q": ["t", "s"]}, {"q": ["u", "t"]}, {"q": {"z": 1}}, "mrr@2")
    assert [(u.item_id, u.priority) for u in got] == [("u", 1.0), ("t", 0.5), ("s", 0.5)]


def test_judged_items_and_zero_weight_items():
    top_a = {"q": ["a", "b", "c"]}
    top_b = {"q": ["a", "c", "b"]}
    qrels = {"q": {"a": 0, "b": 1}}  # a is judged (grade 0 is a judgment)
    got = rank_unjudged(top_a, top_b, qrels, "ndcg@3")
    assert [(u.item_id, u.rank_a, u.rank_b) for u in got] == [("c", 3, 2)]
    same = rank_unjudged({"q": ["a", "d"]}, {"q": ["a", "d"]}, qrels, "ndcg@2")
    assert [(u.item_id, u.priority) for u in same] == [("d", 0.0)]  # listed last, weight 0


def test_other_metric_families():
    top_a = {"q": ["a", "b", "c"]}
    top_b = {"q": ["d", "a", "b"]}
    qrels = {"q": {"b": 1, "x": 2}}  # R = 2 relevant known
    rec = {u.item_id: u.priority for u in rank_unjudged(top_a, top_b, qrels, "recall@3")}
    assert rec == {"d": pytest.approx(1 / 3), "c": pytest.approx(1 / 3), "a": 0.0}
    mrr = {u.item_id: u.priority for u in rank_unjudged(top_a, top_b, qrels, "mrr@3")}
    assert mrr == pytest.approx({"d": 1.0, "a": 0.5, "c": 1 / 3})
    prec = {u.item_id: u.priority for u in rank_unjudged(top_a, top_b, qrels, "precision@3")}
    assert prec == pytest.approx({"d": 1 / 3, "c": 1 / 3, "a": 0.0})
    assert metric_cutoff("map", 100) == ("map", 100)
    with pytest.raises(ValueError, match="not a metric"):
        metric_cutoff("ndcg@", 10)


def test_cutoff_limits_the_candidates():
    top_a = {"q": ["a", "b", "c"]}
    top_b = {"q": ["c", "b", "a"]}
    got = rank_unjudged(top_a, top_b, {"q": {"b": 1}}, "ndcg@1")
    assert {(u.item_id, u.rank_a, u.rank_b) for u in got} == {("a", 1, None), ("c", None, 1)}


def test_build_worklist_merges_comparisons_and_caps_each(tmp_path):
    top_a = {"q": ["a", "b", "c"]}
    tops = {"B": (top_a, {"q": ["d", "e", "a"]}), "C": (top_a, {"q": ["a", "b", "f"]})}
    wl = build_worklist(
        "A", tops, {"q": {"a": 1}}, {"q": "red, hat"}, {"d": 'say "hi"'}, "ndcg@3", size=2
    )
    assert wl.unjudged == {"B": 4, "C": 3}
    assert len(wl) == 4  # 2 per comparison
    assert [r.priority for r in wl.rows] == sorted((r.priority for r in wl.rows), reverse=True)
    assert {r.candidate for r in wl.rows} == {"B", "C"}
    path = wl.write_csv(tmp_path / WORKLIST_FILE)
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == COLUMNS
    body = [dict(zip(rows[0], r)) for r in rows[1:]]
    first = body[0]
    assert first["query"] == "red, hat" and first["grade"] == ""
    d_row = next(r for r in body if r["item_id"] == "d")
    assert d_row["item"] == 'say "hi"' and d_row["rank_a"] == "" and d_row["rank_b"] == "1"
    assert float(d_row["priority"]) == 1.0  # IDCG 1, n 1, B rank 1 vs absent: |1 - 0|


def test_evaluation_worklist_from_rankings():
    cat = Catalog(
        ["d1", "d2", "d3"], ["Red shoe", "Blue hat", "Green cap"], ["Leather.", "", "Wool."]
    )
    qs = Queries(["q1", "q2"], ["shoe", "hat"])
    data = EvalData("toy", cat, qs, Judgments({"q1": {"d1": 1}, "q2": {"d2": 1}}))

    def result(name, rows):
        r = Ranking(["q1", "q2"], np.array(rows), np.ones((2, 2), np.float32), cat.ids)
        return VersionResult(name, {}, {}, {}, r)

    a = result("a", [[0, 1], [1, 2]])
    b = result("b", [[2, 0], [1, 2]])
    wl = evaluation_worklist(a, [b], data, "ndcg@2", size=10)
    assert [(r.query_id, r.item_id, r.rank_a, r.rank_b) for r in wl.rows] == [
        ("q1", "d3", None, 1),
        ("q1", "d2", 2, None),
        ("q2", "d3", 2, 2),
    ]
    assert wl.rows[0].item == "Green cap Wool." and wl.rows[1].item == "Blue hat"
    assert wl.rows[0].query == "shoe" and wl.k == 2 and wl.baseline == "a"
    assert wl.rows[2].priority == 0.0
