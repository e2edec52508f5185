"""The judging worklist (evalkit/compare/worklist.py): weights, order, ties and the CSV."""

from __future__ import annotations

import csv
import math
from types import SimpleNamespace

import numpy as np
import pytest

from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.worklist import (
    COLUMNS,
    ORDERS,
    WORKLIST_FILE,
    build_worklist,
    evaluation_worklist,
    metric_cutoff,
    order_unjudged,
    rank_unjudged,
    relevance_curve,
)
from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.errors import ConfigError
from evalkit.results import VersionResult
from evalkit.retrieve.ranking import Ranking
from evalkit.run.compare import write_worklist


def disc(r: int) -> float:
    return 1.0 / math.log2(r + 1)


def ndcg(top: list[str], grades: dict[str, int], k: int) -> float:
    """A reference nDCG@k (linear gains, ideal DCG from the known grades)."""
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g * disc(i + 1) for i, g in enumerate(ideal))
    return sum(grades.get(d, 0) * disc(i + 1) for i, d in enumerate(top[:k])) / idcg


def mean_delta(top_a, top_b, qrels, k) -> float:
    scored = [q for q in top_a if any(g > 0 for g in qrels.get(q, {}).values())]
    return float(
        np.mean([ndcg(top_b[q], qrels[q], k) - ndcg(top_a[q], qrels[q], k) for q in scored])
    )


def test_weight_is_the_exact_move_of_the_mean_delta():
    # Two scored queries and one (q3) without a relevant judgment: it would join the mean.
    top_a = {"q1": ["a", "b", "c", "d"], "q2": ["e", "f", "g", "h"], "q3": ["x", "y"]}
    top_b = {"q1": ["c", "b", "a", "z"], "q2": ["e", "g", "f", "h"], "q3": ["y", "w"]}
    qrels = {"q1": {"b": 2}, "q2": {"e": 1, "h": 3}, "q3": {"x": 0}}
    got = rank_unjudged(top_a, top_b, qrels, "ndcg@4", prior=False)
    before = mean_delta(top_a, top_b, qrels, 4)
    for u in got:
        after = {q: dict(v) for q, v in qrels.items()}
        after[u.query_id][u.item_id] = 1
        assert u.priority == pytest.approx(abs(mean_delta(top_a, top_b, after, 4) - before))
        assert u.p_relevant == 1.0
    assert {(u.query_id, u.item_id) for u in got} == {
        ("q1", "a"), ("q1", "c"), ("q1", "d"), ("q1", "z"), ("q2", "f"), ("q2", "g"),
        ("q3", "y"), ("q3", "w"),
    }  # fmt: skip
    # Highest first; equal priorities by the larger single-version weight, then query, item id.
    assert [u.sort_key() for u in got] == sorted(u.sort_key() for u in got)
    assert [u.rank_a for u in got if u.query_id == "q3"] == [None, 2]  # w (B's 1st) leads
    # With P(relevant) the weight is multiplied by it, nothing else changes.
    with_p = {(u.query_id, u.item_id): u for u in rank_unjudged(top_a, top_b, qrels, "ndcg@4")}
    for u in got:
        w = with_p[u.query_id, u.item_id]
        assert 0.0 <= w.p_relevant <= 1.0
        assert w.priority == pytest.approx(u.priority * w.p_relevant)


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
    got = rank_unjudged({"q": ["t", "s"]}, {"q": ["u", "t"]}, {"q": {"z": 1}}, "mrr@2", prior=False)
    assert [(u.item_id, u.priority) for u in got] == [("u", 1.0), ("t", 0.5), ("s", 0.5)]


def test_judged_items_and_zero_weight_items():
    top_a = {"q": ["a", "b", "c"]}
    top_b = {"q": ["a", "c", "b"]}
    qrels = {"q": {"a": 0, "b": 1}}  # a is judged (grade 0 is a judgment)
    got = rank_unjudged(top_a, top_b, qrels, "ndcg@3")
    assert [(u.item_id, u.rank_a, u.rank_b) for u in got] == [("c", 3, 2)]
    # Ranked alike by both: it moves the delta only through the ideal DCG (here d_q = 0).
    same = rank_unjudged({"q": ["a", "d"]}, {"q": ["a", "d"]}, qrels, "ndcg@2")
    assert [(u.item_id, u.priority) for u in same] == [("d", 0.0)]


def test_other_metric_families():
    top_a = {"q": ["a", "b", "c"]}
    top_b = {"q": ["d", "a", "b"]}
    qrels = {"q": {"b": 1, "x": 2}}  # R = 2 relevant known
    rec = {
        u.item_id: u.priority for u in rank_unjudged(top_a, top_b, qrels, "recall@3", prior=False)
    }
    assert rec == {"d": pytest.approx(1 / 3), "c": pytest.approx(1 / 3), "a": 0.0}
    mrr = {u.item_id: u.priority for u in rank_unjudged(top_a, top_b, qrels, "mrr@3", prior=False)}
    assert mrr == pytest.approx({"d": 1.0, "a": 0.5, "c": 1 / 3})
    prec = {
        u.item_id: u.priority
        for u in rank_unjudged(top_a, top_b, qrels, "precision@3", prior=False)
    }
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
    ranked = rank_unjudged(top_a, tops["B"][1], {"q": {"a": 1}}, "ndcg@3")
    want = next(u.priority for u in ranked if u.item_id == "d")
    assert float(d_row["priority"]) == pytest.approx(want, rel=1e-5)  # the weight, 6 digits


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


def synthetic(seed: int, n_scored: int = 30, n_unscored: int = 30, depth: int = 30):
    """Two versions' rankings of a seeded collection: relevant items cluster at the top ranks;
    the scored queries hold a judged share of their relevant items, the unscored queries were
    judged at A's top 3 and nothing relevant was found there."""
    rng = np.random.default_rng(seed)
    top_a, top_b, qrels = {}, {}, {}
    for i in range(n_scored + n_unscored):
        q = f"q{i:02d}"
        items = [f"{q}-{j}" for j in range(depth)]
        relevant = set(items[: rng.integers(2, 8)]) if i < n_scored else set()
        top_a[q] = list(rng.permutation(items[:12])) + items[12:]
        top_b[q] = list(rng.permutation(items[:12])) + items[12:]
        if i < n_scored:
            qrels[q] = {d: 1 for d in sorted(relevant) if rng.random() < 0.5} or {
                sorted(relevant)[0]: 1
            }
        else:
            qrels[q] = {d: 0 for d in top_a[q][:3]}
    return top_a, top_b, qrels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unscored_queries_do_not_fill_the_list(seed):
    top_a, top_b, qrels = synthetic(seed)
    unscored = {q for q, j in qrels.items() if not any(g > 0 for g in j.values())}
    n = 40
    plain = rank_unjudged(top_a, top_b, qrels, "ndcg@10", prior=False)[:n]
    ranked = rank_unjudged(top_a, top_b, qrels, "ndcg@10")
    head = ranked[:n]
    # Without P(relevant) the unscored queries' items take most of the head (1 / (n + 1) and
    # IDCG 1 make their weights the largest); with it they take less than half, fewer than before.
    share_plain = sum(u.query_id in unscored for u in plain) / n
    share = sum(u.query_id in unscored for u in head) / n
    assert share_plain > 0.5
    assert share < 0.5 and share < share_plain
    # An unscored query's items get a lower P(relevant) than a scored query's at the same ranks
    # (its judged items were not relevant: f_q < 1).
    p_of = {(u.query_id, u.rank_a, u.rank_b): u.p_relevant for u in ranked}
    pairs = [
        (p, p_of[q2, ra, rb])
        for (q, ra, rb), p in p_of.items()
        if q in unscored
        for q2 in top_a
        if q2 not in unscored and (q2, ra, rb) in p_of
    ]
    assert pairs and all(p < p2 for p, p2 in pairs)


def test_relevance_curve_is_monotone_and_fitted_on_the_judged_pairs():
    top_a, _, qrels = synthetic(3, depth=40)
    curve = relevance_curve(top_a, qrels)
    assert curve.shape == (40,)
    assert np.all(np.diff(curve) <= 1e-12) and curve[0] > curve[-1] >= 0.0
    # Where the judged share per rank already falls, the fit is that share (relevant / queries
    # with a judgment), unjudged items counting as not relevant.
    ranked = {"q": ["a", "b", "c"], "r": ["d", "e", "f"], "s": ["g", "h", "i"]}
    judged = {"q": {"a": 1, "b": 1}, "r": {"d": 1, "e": 0}}
    assert relevance_curve(ranked, judged).tolist() == pytest.approx([1.0, 0.5, 0.0])
    # A violation is pooled (isotonic), and a query without judgments is not counted.
    judged = {"q": {"a": 1, "c": 1}, "r": {"d": 0, "f": 1}}
    assert relevance_curve(ranked, judged).tolist() == pytest.approx([0.5, 0.5, 0.5])
    # More relevant judgments at a rank raise the curve there.
    more = {**qrels}
    q = next(q for q in top_a if top_a[q][5] not in qrels[q])
    more[q] = {**qrels[q], top_a[q][5]: 2}
    assert relevance_curve(top_a, more)[5] > curve[5]
    # In the worklist, P(relevant) falls with the rank both versions give an item.
    same = {q: list(v) for q, v in top_a.items()}
    got = rank_unjudged(top_a, same, qrels, "ndcg@10")
    for q in top_a:
        ps = [u.p_relevant for u in sorted(got, key=lambda u: u.rank_a) if u.query_id == q]
        assert all(x >= y - 1e-12 for x, y in zip(ps, ps[1:]))


def pool_positions(rows, top_a, top_b):
    """Each row's (rank, version) slot: the smallest rank of the item in A's then B's list."""
    out = []
    for q, d in rows:
        slots = [(top[q].index(d), v) for v, top in enumerate((top_a, top_b)) if d in top[q][:10]]
        out.append(min(slots))
    return out


def test_each_order_lists_the_same_items_in_its_own_order():
    top_a, top_b, qrels = synthetic(4)
    lists = {
        o: [(u.query_id, u.item_id) for u in order_unjudged(top_a, top_b, qrels, order=o, seed=7)]
        for o in ORDERS
    }
    assert len({frozenset(v) for v in lists.values()}) == 1  # the same items
    ranked = rank_unjudged(top_a, top_b, qrels)
    assert lists["worklist"] == [(u.query_id, u.item_id) for u in ranked]
    # rank_pooling: the rank never falls back; within a rank, queries in their order, A before B.
    slots = pool_positions(lists["rank_pooling"], top_a, top_b)
    queries = list(top_a)
    keys = [(r, queries.index(q), v) for (r, v), (q, _) in zip(slots, lists["rank_pooling"])]
    assert keys == sorted(keys)
    # query_pooling: each query's items together, in rank order, queries in a seeded order.
    rows = lists["query_pooling"]
    order = list(dict.fromkeys(q for q, _ in rows))
    assert len(order) == len({q for q, _ in rows}) and order != sorted(order)
    for q in order:
        mine = [r for r in rows if r[0] == q]
        assert pool_positions(mine, top_a, top_b) == sorted(pool_positions(mine, top_a, top_b))
    again = order_unjudged(top_a, top_b, qrels, order="query_pooling", seed=7)
    other = order_unjudged(top_a, top_b, qrels, order="query_pooling", seed=8)
    assert [(u.query_id, u.item_id) for u in again] == rows
    assert [(u.query_id, u.item_id) for u in other] != rows
    with pytest.raises(ValueError, match="rank_pooling"):
        order_unjudged(top_a, top_b, qrels, order="by_rank")


def test_worklist_order_setting_reaches_the_csv(tmp_path):
    cat = Catalog([f"d{i}" for i in range(9)], [f"title {i}" for i in range(9)])
    qs = Queries(["q1", "q2", "q3"], ["one", "two", "three"])
    qrels = {"q1": {"d0": 1}, "q2": {"d3": 1}, "q3": {"d8": 1}}
    data = EvalData("toy", cat, qs, Judgments(qrels))
    rows_a = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    rows_b = [[0, 2, 1], [4, 3, 5], [6, 7, 8]]

    def result(name, rows):
        r = Ranking(["q1", "q2", "q3"], np.array(rows), np.ones((3, 3), np.float32), cat.ids)
        return VersionResult(name, {}, {}, {}, r)

    results = [result("a", rows_a), result("b", rows_b)]
    top_a = {q: [f"d{i}" for i in row] for q, row in zip(qs.ids, rows_a)}
    top_b = {q: [f"d{i}" for i in row] for q, row in zip(qs.ids, rows_b)}
    written = {}
    for order in ORDERS:
        compare = CompareSettings.from_mapping({"worklist_order": order, "seed": 3})
        assert compare.worklist_order == order
        settings = SimpleNamespace(
            gates=SimpleNamespace(metric="ndcg@3"), compare=compare, output_dir=tmp_path
        )
        _, path = write_worklist(results, data, settings)
        with path.open(encoding="utf-8", newline="") as f:
            written[order] = [(r["query_id"], r["item_id"]) for r in csv.DictReader(f)]
        want = order_unjudged(top_a, top_b, qrels, "ndcg@3", order=order, seed=3)
        assert written[order] == [(u.query_id, u.item_id) for u in want]
    # Three different orders of the same rows.
    assert len({tuple(v) for v in written.values()}) == len(ORDERS)
    assert len({frozenset(v) for v in written.values()}) == 1
    assert CompareSettings.from_mapping({}).worklist_order == "worklist"  # the default


def test_bad_worklist_order_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as err:
        CompareSettings.from_mapping({"worklist_order": "pooling"})
    msg = str(err.value)
    assert "\n" not in msg and "compare.worklist_order='pooling'" in msg
    assert all(o in msg for o in ORDERS)
