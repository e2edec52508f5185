"""Score-threshold mapping (issue 15, section 5): quantile matching against numpy, no mapping
outside A's scores, never a cut-off outside the observed scores, precision only with grade-0
judgments, and the score population (judged pairs + every version's unjudged top-k pairs, each
scored by both versions) on a relevant-only (Cranfield-like) collection."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from evalkit.compare.actions import threshold_actions
from evalkit.compare.thresholds import (
    UNJUDGED,
    ScorePopulation,
    grades_of_pairs,
    map_threshold,
    metric_cutoff,
    population_of,
)
from evalkit.compare.verdict import compare_versions
from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.embed.cache import CacheSettings
from evalkit.results import VersionResult
from evalkit.retrieve.ranking import Ranking
from evalkit.run.retrieved_pairs import retrieved_pairs, score_retrieved_pairs


def test_mapping_equals_numpy_quantiles_and_hand_classifiers() -> None:
    rng = np.random.default_rng(11)
    b = rng.uniform(-0.1, 0.9, 5000)
    c = 0.75 + 0.25 * b + rng.normal(0, 0.01, 5000)  # e5-like: a narrow, high band
    grades = np.where(b + rng.normal(0, 0.2, 5000) > 0.4, 1, 0)
    grades[::7] = UNJUDGED  # retrieved pairs nobody judged: in the population, not classified
    pop = ScorePopulation.of(b, c, grades, k=10)
    judged, relevant = grades >= 0, grades >= 1
    for t in (0.2, 0.3, 0.5):
        m = map_threshold(pop, t)
        q = np.mean(b < t)
        assert m.share_below == q and m.mapped == pytest.approx(np.quantile(c, q))
        assert np.mean(c < m.mapped) == pytest.approx(q, abs=1e-3)
        kept_a, kept_b = b >= t, c >= m.mapped
        assert m.baseline_precision == pytest.approx(relevant[judged & kept_a].mean())
        assert m.baseline_recall == pytest.approx(kept_a[relevant].mean())
        assert m.candidate_precision == pytest.approx(relevant[judged & kept_b].mean())
        assert m.candidate_recall == pytest.approx(kept_b[relevant].mean())
        assert (m.n_pairs, m.n_judged, m.n_nonrelevant) == (
            5000,
            int(judged.sum()),
            int((grades == 0).sum()),
        )
    [a] = threshold_actions([map_threshold(pop, 0.3)])
    assert a["name"] == "score_threshold_0.3"
    assert a["what_to_do"] == f"change the 0.30 cut-off to {np.quantile(c, np.mean(b < 0.3)):.2f}"
    assert "Population: 5,000 pairs scored by both versions" in a["why"]
    assert "unjudged top-10 pairs" in a["why"] and "precision n/a" not in a["why"]
    same = ScorePopulation.of(b, b, grades)
    assert threshold_actions([map_threshold(same, 0.3)]) == []  # same scale: nothing to change


def test_hand_computed_small_case() -> None:
    # A: 0.1 0.2 0.35 0.5 0.7 -> 2 of 5 below 0.3 -> q = 0.4; B sorted 0.80 0.82 0.86 0.90 0.95
    # numpy linear: position 0.4 * 4 = 1.6 -> 0.82 + 0.6 * (0.86 - 0.82) = 0.844.
    pop = ScorePopulation.of(
        [0.1, 0.2, 0.35, 0.5, 0.7], [0.80, 0.82, 0.86, 0.9, 0.95], [0, 1, 1, 0, 1]
    )
    m = map_threshold(pop, 0.3)
    assert m.share_below == 0.4 and m.mapped == pytest.approx(0.844)
    # A keeps 0.35 (1), 0.5 (0), 0.7 (1): precision 2/3, recall 2/3 (0.2 is relevant, dropped).
    assert (m.baseline_precision, m.baseline_recall) == pytest.approx((2 / 3, 2 / 3))
    # B keeps 0.86 (1), 0.90 (0), 0.95 (1): the same.
    assert (m.candidate_precision, m.candidate_recall) == pytest.approx((2 / 3, 2 / 3))
    assert (*m.baseline_range, *m.candidate_range) == (
        0.1,
        0.7,
        0.8,
        0.95,
    )


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+", text)]


def test_no_mapped_threshold_lies_outside_the_observed_scores() -> None:
    """Property: over many random score sets (continuous, tied, tiny, shifted scales) and
    cut-offs inside, at the edges of and outside A's scores, a threshold is mapped exactly when
    A's share below it is strictly between 0 and 1, and the mapped value lies in B's observed
    range; without a mapping no cut-off is printed."""
    rng = np.random.default_rng(2026)
    n_mapped = n_unmapped = 0
    for trial in range(600):
        n = int(rng.choice([1, 2, 3, 5, 17, 200]))
        kind = trial % 3
        if kind == 0:
            b = rng.normal(rng.uniform(-0.5, 0.8), rng.uniform(0.01, 0.3), n)
        elif kind == 1:  # heavy ties
            b = rng.choice(np.round(rng.uniform(-0.2, 0.9, 3), 2), n)
        else:
            b = rng.uniform(0.7, 0.95, n)  # a narrow high band (e5-like)
        c = rng.uniform(-1, 1) + rng.uniform(0.05, 2) * rng.permutation(b) + rng.normal(0, 0.05, n)
        pop = ScorePopulation.of(b, c, rng.integers(-1, 3, n))
        cuts = [*rng.uniform(b.min() - 0.5, b.max() + 0.5, 5), b.min(), b.max(), *b[:2]]
        for t in cuts:
            m = map_threshold(pop, float(t))
            share = np.mean(b < t)
            assert m.share_below == share
            if 0 < share < 1:
                n_mapped += 1
                assert m.mapped is not None
                assert c.min() <= m.mapped <= c.max()
                assert m.mapped == pytest.approx(np.quantile(c, share))
            else:
                n_unmapped += 1
                assert m.mapped is None
                assert math.isnan(m.candidate_precision) and math.isnan(m.candidate_recall)
                for a in threshold_actions([m]):
                    assert a["observed"] == "no mapping"
                    assert a["what_to_do"].startswith(
                        "no mapping: the cut-off lies outside A's scores"
                    )
                    assert "change the" not in a["what_to_do"]
    assert n_mapped > 1000 and n_unmapped > 1000  # both branches were exercised


def test_swapped_versions_never_print_a_cut_off_outside_the_scores() -> None:
    """The issue's case: with the versions swapped, A (e5-like) has no judged pair below 0.30
    and the old code said "change the 0.30 cut-off to -0.08" (B's minimum)."""
    rng = np.random.default_rng(7)
    e5 = rng.uniform(0.72, 0.95, 400)
    use = np.clip((e5 - 0.72) / 0.23 * 0.68 - 0.08 + rng.normal(0, 0.05, 400), -0.08, 0.6)
    grades = rng.integers(0, 3, 400)
    swapped = map_threshold(ScorePopulation.of(e5, use, grades), 0.3)
    assert swapped.share_below == 0.0 and swapped.mapped is None
    [a] = threshold_actions([swapped])
    assert a["what_to_do"].startswith("no mapping: the cut-off lies outside A's scores")
    assert f"A: {e5.min():.2f} to {e5.max():.2f}" in a["what_to_do"]
    assert "-0.08" not in a["what_to_do"] and "change the" not in a["what_to_do"]
    assert swapped.to_dict()["mapped"] is None
    assert "no mapping" in swapped.to_dict()["note"]
    # The forward order maps inside B's scores.
    forward = map_threshold(ScorePopulation.of(use, e5, grades), 0.3)
    assert 0 < forward.share_below < 1 and e5.min() <= forward.mapped <= e5.max()


def test_precision_only_where_grade_0_judgments_exist() -> None:
    b = np.array([0.1, 0.4, 0.5, 0.6, 0.2, 0.35])
    c = b * 0.5 + 0.6
    # Relevant-only judgments, no retrieved pairs: precision would be 1 by construction.
    m = map_threshold(ScorePopulation.of(b, c, np.ones(6, dtype=int)), 0.3)
    assert math.isnan(m.baseline_precision) and math.isnan(m.candidate_precision)
    assert m.baseline_recall == pytest.approx(4 / 6)
    [a] = threshold_actions([m])
    assert "precision: n/a, no judged non-relevant pairs" in a["why"]
    assert "recall 0.67" in a["why"]
    # Unjudged retrieved pairs do not make precision measurable either.
    g = np.array([1, 1, 1, UNJUDGED, UNJUDGED, 1])
    m = map_threshold(ScorePopulation.of(b, c, g), 0.3)
    assert math.isnan(m.candidate_precision) and m.n_nonrelevant == 0
    # One grade-0 judgment: precision is reported.
    g = np.array([1, 0, 1, UNJUDGED, UNJUDGED, 1])
    m = map_threshold(ScorePopulation.of(b, c, g), 0.3)
    assert m.baseline_precision == pytest.approx(2 / 3)  # kept judged: 0.4 (0), 0.5, 0.35
    assert "precision 0.67" in threshold_actions([m])[0]["why"]


def test_helpers() -> None:
    assert metric_cutoff("ndcg@10", 100) == 10 and metric_cutoff("mrr", 100) == 100
    assert grades_of_pairs([("q", "a"), ("q", "z")], {"q": {"a": 2}}).tolist() == [2, UNJUDGED]
    with pytest.raises(Exception, match="pair scores"):
        ScorePopulation.of([0.1, 0.2], [0.3])
    pop = ScorePopulation.of([0.1, np.nan, 0.3], [0.2, 0.5, 0.4])  # a pair one version lacks
    assert pop.n_pairs == 2
    assert map_threshold(ScorePopulation.of([], []), 0.3).mapped is None


# ------------------------------------------------------------------------------------------
# A relevant-only (Cranfield-like) collection through the pipeline's post-pass and the verdict


N_ITEMS, N_QUERIES, DIM, K = 300, 24, 16, 20


class _Vectors:
    """A precomputed-like version: vectors by id (what ``retrieved_pairs`` reads again)."""

    brings_vectors = True

    def streams(self, role="document"):
        return False

    def __init__(self, name: str, docs: np.ndarray, queries: np.ndarray, data: EvalData):
        self.name, self.docs, self.queries = name, docs, queries
        self.doc_row = {d: i for i, d in enumerate(data.catalog.ids)}
        self.query_row = {q: i for i, q in enumerate(data.queries.ids)}

    def vectors_for(self, ids, role):
        m, rows = (
            (self.docs, self.doc_row) if role == "document" else (self.queries, self.query_row)
        )
        return SimpleNamespace(vectors=m[[rows[i] for i in ids]])


def _collection():
    rng = np.random.default_rng(3)
    item_ids = [f"d{i:03d}" for i in range(N_ITEMS)]
    query_ids = [f"q{i:02d}" for i in range(N_QUERIES)]
    qrels = {  # relevant items only, as in Cranfield / BEIR qrels
        q: {item_ids[j]: int(rng.integers(1, 3)) for j in rng.choice(N_ITEMS, 4, replace=False)}
        for q in query_ids
    }
    data = EvalData(
        name="relevant-only",
        catalog=Catalog(ids=item_ids, titles=[f"item {i}" for i in item_ids]),
        queries=Queries(ids=query_ids, texts=[f"query {q}" for q in query_ids]),
        judgments=Judgments(qrels),
        fingerprint={"dataset": "x"},
    )
    qv = rng.normal(size=(N_QUERIES, DIM))
    docs = rng.normal(size=(N_ITEMS, DIM))
    for qi, q in enumerate(query_ids):
        for d, g in qrels[q].items():
            docs[item_ids.index(d)] += 0.8 * g * qv[qi]
    # B: another scale and some noise (a different model family).
    docs_b = 0.2 * docs + rng.normal(0, 0.3, docs.shape)
    qv_b = qv + rng.normal(0, 0.3, qv.shape)
    return data, {"a": (docs, qv), "b": (docs_b, qv_b)}


def _result(name, docs, qv, data) -> VersionResult:
    s = qv @ docs.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :K]
    ranking = Ranking(
        list(data.queries.ids),
        order.astype(np.int64),
        np.take_along_axis(s, order, 1).astype(np.float32),
        list(data.catalog.ids),
    )
    qrels = data.judgments.qrels
    pairs = sorted((q, d) for q, items in qrels.items() for d in items)
    qrow = {q: i for i, q in enumerate(data.queries.ids)}
    drow = {d: i for i, d in enumerate(data.catalog.ids)}
    sim = np.array([s[qrow[q], drow[d]] for q, d in pairs])
    per_query = {
        "ndcg@10": {
            q: float(len(set(ranking.top(q, 10)) & set(qrels[q])) / 4) for q in data.queries.ids
        }
    }
    return VersionResult(
        name,
        {},
        {},
        per_query,
        ranking,
        pair_ids=pairs,
        pair_similarity=sim,
        fingerprint={"dataset": "x"},
    )


def test_relevant_only_collection_gets_every_versions_top_k_scored_by_both() -> None:
    data, vec = _collection()
    results = [_result(n, *vec[n], data) for n in ("a", "b")]
    versions = [_Vectors(n, *vec[n], data) for n in ("a", "b")]
    results = score_retrieved_pairs(results, versions, data, CacheSettings(), k=10)

    qrels = data.judgments.qrels
    top = {
        n: {(q, d) for q in data.queries.ids for d in r.ranking.top(q, 10)}
        for n, r in zip("ab", results)
    }
    judged = {(q, d) for q, items in qrels.items() for d in items}
    want = sorted((top["a"] | top["b"]) - judged)
    assert results[0].retrieved_pair_ids == want == results[1].retrieved_pair_ids
    assert retrieved_pairs([r.ranking for r in results], qrels, 10) == want
    only_a = (top["a"] - top["b"]) - judged
    assert only_a, "the two versions should retrieve different pairs"
    qrow = {q: i for i, q in enumerate(data.queries.ids)}
    drow = {d: i for i, d in enumerate(data.catalog.ids)}
    for n, r in zip("ab", results):  # every pair scored by every version: its dot product
        docs, qv = vec[n]
        hand = np.array([qv[qrow[q]] @ docs[drow[d]] for q, d in want])
        np.testing.assert_allclose(r.retrieved_similarity, hand, rtol=1e-9)
        assert r.retrieved_k == 10

    pop = population_of(
        results[0],
        results[1],
        results[0].pair_ids,
        results[0].pair_similarity,
        results[1].pair_similarity,
        qrels,
    )
    assert pop.n_pairs == len(judged) + len(want) and pop.n_nonrelevant == 0
    assert pop.n_retrieved == len(want) and pop.k == 10 and pop.n_queries == N_QUERIES
    text = pop.describe()
    assert (
        f"{pop.n_pairs:,} pairs scored by both versions: {len(judged)} judged (0 grade 0)" in text
    )
    assert f"+ {len(want):,} unjudged top-10 pairs of A and B on {N_QUERIES} judged queries" in text

    # The verdict maps on that population: share and cut-off by hand over all of its pairs.
    v = compare_versions(
        results[0], [results[1]], data=data, checks=[], settings={"score_thresholds": [0.5, 100.0]}
    )
    c = v.candidates[0]
    b_all = np.concatenate([results[0].pair_similarity, results[0].retrieved_similarity])
    c_all = np.concatenate([results[1].pair_similarity, results[1].retrieved_similarity])
    t05, t100 = c.thresholds
    q = np.mean(b_all < 0.5)
    assert 0 < q < 1 and t05.share_below == pytest.approx(q)
    assert t05.mapped == pytest.approx(np.quantile(c_all, q))
    assert math.isnan(t05.candidate_precision)  # relevant-only judgments: no precision
    assert t100.mapped is None  # above every score of A
    actions = {a["name"]: a for a in c.actions}
    assert actions["score_threshold_100"]["observed"] == "no mapping"
    assert "precision: n/a, no judged non-relevant pairs" in actions["score_threshold_0.5"]["why"]
    assert "unjudged top-10 pairs" in actions["score_threshold_0.5"]["why"]
    for a in actions.values():
        if a["name"].startswith("score_threshold") and a["observed"] != "no mapping":
            (cut,) = _numbers(a["what_to_do"].split(" to ")[-1])
            assert c_all.min() - 0.005 <= cut <= c_all.max() + 0.005


def test_without_retrieved_pairs_the_population_says_why() -> None:
    data, vec = _collection()
    a, b = (_result(n, *vec[n], data) for n in ("a", "b"))
    pop = population_of(
        a, b, a.pair_ids, a.pair_similarity, b.pair_similarity, data.judgments.qrels
    )
    assert pop.n_pairs == len(a.pair_ids) and pop.k == 0
    assert "no unjudged top-k pairs: not scored for a and b" in pop.describe()
