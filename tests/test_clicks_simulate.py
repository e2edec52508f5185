"""Click simulation: PBM / cascade click probabilities, BM25 production ranking, demo log."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from evalkit.clicks.judgments import judgments_from_clicks
from evalkit.data.click_simulation import (
    ClickModel,
    sessions_from_frequency,
    simulate_clicks,
    simulate_demo_clicks,
)
from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.errors import ConfigError
from evalkit.retrieve.bm25 import bm25_ranking
from evalkit.retrieve.ranking import Ranking

from .testdata import read_jsonl, read_text

ITEMS = [f"d{i}" for i in range(6)]


def ranking(rows: list[list[int]]) -> Ranking:
    idx = np.array(rows)
    return Ranking([f"q{i}" for i in range(len(rows))], idx, np.zeros(idx.shape, np.float32), ITEMS)


def assert_rates(log, expected: dict[tuple[str, str], float], sessions: int):
    rate = dict(zip(log.pairs(), log.rate()))
    for pair, p in expected.items():
        se = math.sqrt(p * (1 - p) / sessions)
        assert abs(rate[pair] - p) < 4.5 * se + 1e-9, (pair, rate[pair], p)


def test_pbm_click_rate_is_examination_times_attractiveness():
    model = ClickModel(kind="pbm", depth=4, eta=1.0, alpha_min=0.1, alpha_max=0.9)
    qrels = {"q0": {"d2": 2, "d0": 1}}
    n = 20000
    log = simulate_clicks(ranking([[0, 1, 2, 3, 4]]), qrels, model=model, sessions=n, seed=3)
    attr = {0: 0.1, 1: 0.1 + 0.8 / 3, 2: 0.9}  # (2^g - 1) / (2^2 - 1)
    expected = {
        ("q0", "d0"): attr[1],
        ("q0", "d1"): attr[0] / 2,
        ("q0", "d2"): attr[2] / 3,
        ("q0", "d3"): attr[0] / 4,
    }
    assert log.pairs() == sorted(expected)  # depth 4: d4 is never shown
    assert log.impressions.tolist() == [n] * 4 and log.simulated
    assert_rates(log, expected, n)
    assert log.positions.position.tolist() == [1, 2, 3, 4]


def test_cascade_has_at_most_one_click_per_session_and_the_cascade_probabilities():
    model = ClickModel(kind="cascade", depth=3, alpha_min=0.2, alpha_max=0.8)
    qrels = {"q0": {"d0": 1}, "q1": {"d5": 1}}
    n = 20000
    log = simulate_clicks(ranking([[0, 1, 2], [3, 4, 5]]), qrels, model=model, sessions=n, seed=1)
    per_query = Counter()
    for (q, _), c in zip(log.pairs(), log.clicks):
        per_query[q] += c
    assert max(per_query.values()) <= n
    a0, a1 = 0.2, 0.8
    expected = {
        ("q0", "d0"): a1,
        ("q0", "d1"): (1 - a1) * a0,
        ("q0", "d2"): (1 - a1) * (1 - a0) * a0,
        ("q1", "d3"): a0,
        ("q1", "d4"): (1 - a0) * a0,
        ("q1", "d5"): (1 - a0) ** 2 * a1,
    }
    assert_rates(log, expected, n)


def test_cascade_without_stopping_examines_everything():
    model = ClickModel(kind="cascade", depth=3, alpha_min=0.2, alpha_max=0.8, stop_prob=0.0)
    n = 20000
    log = simulate_clicks(ranking([[0, 1, 2]]), {"q0": {"d2": 1}}, model=model, sessions=n, seed=2)
    assert_rates(log, {("q0", "d0"): 0.2, ("q0", "d1"): 0.2, ("q0", "d2"): 0.8}, n)


def test_sessions_per_query_judged_only_and_padding():
    r = ranking([[0, 1, -1], [2, 3, 4], [5, 4, 3]])
    qrels = {"q0": {"d0": 1}, "q1": {"d2": 1}}
    log = simulate_clicks(r, qrels, sessions={"q0": 10, "q1": 30}, seed=0)
    assert sorted(set(log.query_ids)) == ["q0", "q1"]  # q2 unjudged
    imps = dict(zip(log.pairs(), log.impressions))
    assert imps[("q0", "d0")] == 10 and imps[("q1", "d4")] == 30
    assert ("q0", "d5") not in imps  # padding is not shown
    assert sessions_from_frequency([0, 5, 15], mean_sessions=20).tolist() == [1, 15, 45]
    with pytest.raises(ConfigError, match="kind='ubm' is unknown"):
        ClickModel(kind="ubm")
    with pytest.raises(ConfigError, match="alpha_min"):
        ClickModel(alpha_min=0.9, alpha_max=0.1)


def test_clicks_turned_back_into_coec_judgments_recover_the_grades():
    rng = np.random.default_rng(0)
    n_q, depth = 60, 10
    items = [f"d{i}" for i in range(200)]
    rows = np.stack([rng.choice(200, depth, replace=False) for _ in range(n_q)])
    grades = rng.integers(0, 4, size=(n_q, depth))
    qrels = {
        f"q{i}": {items[r]: int(g) for r, g in zip(rows[i], grades[i]) if g > 0} for i in range(n_q)
    }
    r = Ranking([f"q{i}" for i in range(n_q)], rows, np.zeros(rows.shape, np.float32), items)
    log = simulate_clicks(r, qrels, sessions=300, seed=4)
    j = judgments_from_clicks(log, "coec")
    true = [qrels[q].get(d, 0) for q, d in log.pairs()]
    got = [j.qrels[q][d] for q, d in log.pairs()]
    assert stats.spearmanr(true, got).statistic > 0.8


def naive_bm25(docs: list[str], query: str, k1=1.2, b=0.75) -> list[float]:
    toks = [re.findall(r"\w+", d.lower()) for d in docs]
    avgdl = sum(map(len, toks)) / len(toks)
    out = []
    for t in toks:
        s = 0.0
        for term in set(re.findall(r"\w+", query.lower())):
            df = sum(term in u for u in toks)
            tf = t.count(term)
            idf = math.log(1 + (len(toks) - df + 0.5) / (df + 0.5))
            s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(t) / avgdl)) if tf else 0.0
        out.append(s)
    return out


def test_bm25_ranking_matches_a_naive_implementation_with_id_tie_breaks():
    docs = [
        "wing flutter at high speed",
        "flutter of a wing",
        "heat transfer in slabs",
        "wing wing wing",
        "boundary layer heat",
        "wing flutter at high speed",
    ]
    ids = ["a", "b", "c", "d", "e", "f"]  # a and f are identical: f (larger id) must come first
    queries = ["wing flutter", "heat", "nothing matches"]
    r = bm25_ranking(ids, docs, ["q1", "q2", "q3"], queries, k=4)
    for qi, text in enumerate(queries):
        s = naive_bm25(docs, text)
        expected = sorted(
            (i for i in range(6) if s[i] > 0),
            key=lambda i: (-round(s[i], 9), [-ord(c) for c in ids[i]]),
        )[:4]
        assert r.top(f"q{qi + 1}") == [ids[i] for i in expected]
        np.testing.assert_allclose(r.top_scores(f"q{qi + 1}"), [s[i] for i in expected], rtol=1e-5)
    top = r.top("q1")
    assert top.index("f") + 1 == top.index("a") and r.top("q3") == []


def test_demo_clicks_are_simulated_over_a_lexical_ranking(shared_data):
    path = shared_data / "adi"
    corpus = read_jsonl(path / "corpus.jsonl.gz")
    queries = read_jsonl(path / "queries.jsonl.gz")
    qrels: dict[str, dict[str, int]] = {}
    for line in read_text(path / "qrels" / "test.tsv.gz").splitlines()[1:]:
        q, d, g = line.split()
        qrels.setdefault(q, {})[d] = int(g)
    freq = [float(i % 3 + 1) for i in range(len(queries))]
    data = EvalData(
        name="adi",
        catalog=Catalog([c["_id"] for c in corpus], [c["title"] for c in corpus]),
        queries=Queries([q["_id"] for q in queries], [q["text"] for q in queries], frequency=freq),
        judgments=Judgments(qrels),
    )
    log = simulate_demo_clicks(data, seed=0)
    again = simulate_demo_clicks(data, seed=0)
    assert log.simulated and "BM25" in log.source and "simulated" in log.source
    assert log.pairs() == again.pairs() and np.array_equal(log.clicks, again.clicks)
    assert set(log.query_ids) <= set(qrels) and log.n_clicks > 0
    imps = dict(zip(log.query_ids, log.impressions))
    by_freq = dict(zip(data.queries.ids, sessions_from_frequency(freq, 100)))
    assert all(imps[q] == by_freq[q] for q in imps)
    with pytest.raises(ConfigError, match="has no judgments to simulate clicks from"):
        simulate_demo_clicks(EvalData("x", data.catalog, data.queries, None))
