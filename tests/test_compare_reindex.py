"""Re-index or not (issue 8, item 2): the scored index states against a hand-built FAISS index
scored by pytrec_eval on a real collection (ADI, use_m3 vectors and a noisy copy of equal
dimension), the paired bootstrap deltas against numpy, the dimensions-differ action, and the
decision logic."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest
import pytrec_eval

from evalkit.compare.reindex_analysis import analyse_reindex, decide, dims_differ, mixed_rows
from evalkit.data.beir import load_beir
from evalkit.embed import embed_texts
from evalkit.embed.local_models import UseM3
from evalkit.errors import ConfigError

SEED = 42


@pytest.fixture(scope="module")
def adi(shared_data, tmp_path_factory):
    data = load_beir(shared_data / "adi", on_invalid="skip")
    use = UseM3("use_m3", threads=1)
    cache = tmp_path_factory.mktemp("reindex-cache")
    docs = embed_texts(use, data.catalog.text_for("title"), "document", cache, False).vectors
    queries = embed_texts(use, data.queries.texts, "query", cache, False).vectors
    return data, docs, queries


def noisy(x: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    y = x + sigma * np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)


def trec_ndcg10(docs, queries, data) -> dict[str, float]:
    """Per-query nDCG@10 of an exact FAISS search, by pytrec_eval (independent of evalkit)."""
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(np.ascontiguousarray(docs))
    scores, rows = index.search(np.ascontiguousarray(queries), len(data.catalog))
    run = {
        q: {data.catalog.ids[r]: float(s) for s, r in zip(scores[i], rows[i])}
        for i, q in enumerate(data.queries.ids)
    }
    qrels = {q: j for q, j in data.judgments.qrels.items() if any(g >= 1 for g in j.values())}
    res = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10"}).evaluate(
        {q: run[q] for q in qrels}
    )
    return {q: v["ndcg_cut_10"] for q, v in res.items()}


def test_states_match_hand_built_indexes_scored_by_pytrec_eval(adi) -> None:
    data, a_docs, a_q = adi
    b_docs, b_q = noisy(a_docs, 0.04, 1), noisy(a_q, 0.04, 2)
    r = analyse_reindex(
        a_docs,
        a_q,
        b_docs,
        b_q,
        data.queries.ids,
        data.catalog.ids,
        data.judgments.qrels,
        "ndcg@10",
        k=100,
        seed=SEED,
        n_resamples=1000,
    )
    # the mixed catalog by hand: a seeded random half of the items re-embedded by B
    n = len(data.catalog)
    half = np.random.default_rng(SEED).permutation(n)[: round(0.5 * n)]
    mixed = a_docs.copy()
    mixed[half] = b_docs[half]
    expected = {
        "baseline": trec_ndcg10(a_docs, a_q, data),
        "candidate": trec_ndcg10(b_docs, b_q, data),
        "candidate_queries_on_baseline_index": trec_ndcg10(a_docs, b_q, data),
        "baseline_queries_on_candidate_index": trec_ndcg10(b_docs, a_q, data),
        "mixed_50_baseline_queries": trec_ndcg10(mixed, a_q, data),
        "mixed_50_candidate_queries": trec_ndcg10(mixed, b_q, data),
    }
    assert set(r.scores) == set(expected)
    for state, per_query in expected.items():
        assert r.scores[state] == pytest.approx(np.mean(list(per_query.values())), abs=1e-9)
    assert r.scores["mixed_50_candidate_queries"] != r.scores["candidate"]  # really mixed
    # paired bootstrap over queries (numpy, the documented resampling: one block of draws)
    qids = sorted(expected["baseline"])
    diff = np.array([[expected[s][q] - expected["baseline"][q] for s in r.deltas] for q in qids])
    idx = np.random.default_rng(SEED).integers(0, len(qids), size=(1000, len(qids)))
    means = diff[idx].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975], axis=0)
    for j, state in enumerate(r.deltas):
        assert r.deltas[state] == pytest.approx((diff[:, j].mean(), low[j], high[j]), abs=1e-12)
    assert r.dims_match and r.baseline_dim == r.candidate_dim == 512 and r.n_queries == len(qids)
    assert r.rolling_safe in (True, False) and r.action
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc["deltas"]["candidate"] == list(r.deltas["candidate"])


def test_identical_versions_allow_a_rolling_re_index(adi) -> None:
    data, docs, queries = adi
    r = analyse_reindex(
        docs, queries, docs, queries, data.queries.ids, data.catalog.ids,
        data.judgments.qrels, "ndcg@10", names=("use_m3", "use_m3_copy"),
    )  # fmt: skip
    assert r.rolling_safe is True and r.action.startswith("rolling re-index is safe")
    assert all(d == (0.0, 0.0, 0.0) for d in r.deltas.values())
    assert "use_m3_copy" in r.action


def test_different_dimensions_say_re_index_the_whole_catalog(adi) -> None:
    data, docs, queries = adi
    short = noisy(docs[:, :384], 0.0, 0)
    r = analyse_reindex(
        docs, queries, short, noisy(queries[:, :384], 0.0, 0), data.queries.ids,
        data.catalog.ids, data.judgments.qrels, "ndcg@10",
    )  # fmt: skip
    assert not r.dims_match and r.rolling_safe is None
    assert r.action == (
        "re-index the whole catalog before switching (dimensions 512 -> 384: the two indexes "
        "cannot be mixed)"
    )
    assert set(r.scores) == {"baseline", "candidate"}
    assert r.scores["baseline"] == pytest.approx(
        np.mean(list(trec_ndcg10(docs, queries, data).values())), abs=1e-9
    )
    assert dims_differ(1024, 768, "ndcg@10").to_dict()["rolling_safe"] is None


def _deltas(b_on_a, mixed_b, mixed_a, a_on_b):
    return {
        "candidate_queries_on_baseline_index": b_on_a,
        "mixed_50_candidate_queries": mixed_b,
        "mixed_50_baseline_queries": mixed_a,
        "baseline_queries_on_candidate_index": a_on_b,
        "candidate": (0.02, 0.0, 0.04),
    }


OK, BAD, EDGE = (0.0, -0.005, 0.005), (-0.05, -0.08, -0.02), (-0.0, -0.01, 0.01)


def test_decision_logic() -> None:
    names = ("A", "B")
    r = decide({}, _deltas(OK, OK, BAD, BAD), "ndcg@10", 384, 0.5, 0.01, names=names)
    assert r.rolling_safe and r.query_encoder == "candidate"
    assert "serve B's query encoder from the start" in r.action
    r = decide({}, _deltas(BAD, OK, OK, OK), "ndcg@10", 384, 0.5, 0.01, names=names)
    assert r.rolling_safe and r.query_encoder == "baseline"
    assert "keep serving A's query encoder" in r.action and "backfill is complete" in r.action
    # both plans safe: the one whose worst state is better
    better = (0.0, -0.001, 0.002)
    r = decide({}, _deltas(OK, OK, better, better), "ndcg@10", 384, 0.5, 0.01, names=names)
    assert r.query_encoder == "baseline"
    # a CI low exactly at -margin is not non-inferior; each plan needs both of its states
    for d in (_deltas(EDGE, OK, BAD, OK), _deltas(OK, BAD, OK, BAD)):
        r = decide({}, d, "ndcg@10", 384, 0.5, 0.01, names=names)
        assert r.rolling_safe is False and r.query_encoder is None
        assert r.action.startswith(
            "switch atomically: build B's index beside A's and flip queries and index together"
        )
        assert "-0.050 [-0.080, -0.020]" in r.action or "-0.010" in r.action
    # a wider margin accepts the edge
    assert decide({}, _deltas(EDGE, OK, BAD, BAD), "ndcg@10", 384, 0.5, 0.02).rolling_safe


def test_mixed_rows_are_seeded_and_exact() -> None:
    m = mixed_rows(101, 0.3, 7)
    assert m.sum() == 30 and (m == mixed_rows(101, 0.3, 7)).all()
    assert not (m == mixed_rows(101, 0.3, 8)).all()
    with pytest.raises(ConfigError, match="reindex_fraction"):
        mixed_rows(10, 1.0, 0)
