"""Judged-only metrics (Sakai's condensed lists, trec_eval -J) and unjudged@k against pytrec_eval
and plain Python, on tied scores and on a real collection thinned to 40% of its judgments."""

from __future__ import annotations

import random

import numpy as np
import pytest
import pytrec_eval

from evalkit.compare.calls import Quality, QualityCall
from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.coverage import measure_coverage, reconcile
from evalkit.compare.gate_config import GateConfig
from evalkit.compare.intervals import student
from evalkit.data.beir import load_beir
from evalkit.index.faiss_index import IndexSpec, build_index
from evalkit.metrics.ir import score
from evalkit.metrics.judged_only import condensed, judged_only_scores, unjudged_share
from evalkit.results import VersionResult
from evalkit.retrieve.replay import replay
from evalkit.retrieve.run_file import read_trec, write_trec

from .test_metrics_vs_trec_eval import _tied_collection
from .testdata import collection

PAIRS = {
    "ndcg@10": "ndcg_cut_10",
    "recall@100": "recall_100",
    "map@100": "map_cut_100",
}


def _pytrec_judged_only(qrels, run_path):
    run = {q: dict(items) for q, items in read_trec(run_path).items()}
    ev = pytrec_eval.RelevanceEvaluator(qrels, set(PAIRS.values()), judged_docs_only_flag=True)
    return ev.evaluate(run)


def thinned(qrels: dict, keep: float, seed: int) -> dict:
    """A seeded ``keep`` share of every judged pair (a query may lose all its judgments)."""
    rng = random.Random(seed)
    out: dict = {}
    for q in sorted(qrels):
        for d in sorted(qrels[q]):
            if rng.random() < keep:
                out.setdefault(q, {})[d] = qrels[q][d]
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_judged_only_equals_pytrec_eval_judged_docs_only_with_ties(tmp_path, seed):
    docs, queries, item_ids, query_ids, qrels = _tied_collection(seed)
    ranking = replay(build_index(docs, IndexSpec()), queries, query_ids, item_ids, k=100)
    assert ranking.ties > 100
    run_path = tmp_path / "run.trec"
    write_trec(ranking, run_path, "test")
    ours = judged_only_scores(ranking, qrels, list(PAIRS))
    theirs = _pytrec_judged_only({q: j for q, j in qrels.items() if max(j.values()) > 0}, run_path)
    assert ours.n_scored == len(theirs) > 50
    for metric, measure in PAIRS.items():
        for q, values in theirs.items():
            assert ours.per_query[metric][q] == pytest.approx(values[measure], abs=1e-9)
    # the condensed list only ever moves items up: judged-only nDCG >= the standard one
    plain = score(ranking, qrels, ["ndcg@10"]).per_query["ndcg@10"]
    assert all(ours.per_query["ndcg@10"][q] >= plain[q] - 1e-12 for q in plain)
    assert any(ours.per_query["ndcg@10"][q] > plain[q] + 1e-6 for q in plain)


def _adi_versions(thin: float | None, seed: int = 0):
    data = load_beir(str(collection("adi")))
    full = data.judgments.qrels
    qrels = full if thin is None else thinned(full, thin, seed)
    rng = np.random.default_rng(7)
    # two "models": a random projection of bag-of-words vectors, and a noisier one
    vocab = {
        w: i
        for i, w in enumerate(sorted({w for t in data.catalog.titles for w in t.lower().split()}))
    }

    def bow(texts):
        m = np.zeros((len(texts), len(vocab)), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                if w in vocab:
                    m[i, vocab[w]] += 1.0
        return m

    proj = rng.standard_normal((len(vocab), 64)).astype(np.float32)
    d_bow, q_bow = bow(data.catalog.titles), bow(data.queries.texts)
    out = []
    for name, noise in (("A", 0.0), ("B", 0.6)):
        d = d_bow @ proj + noise * rng.standard_normal((len(d_bow), 64)).astype(np.float32)
        q = q_bow @ proj + noise * rng.standard_normal((len(q_bow), 64)).astype(np.float32)
        d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-9)
        ranking = replay(build_index(d, IndexSpec()), q, data.queries.ids, data.catalog.ids, k=50)
        s = score(ranking, qrels, ["ndcg@10"])
        out.append(VersionResult(name, {}, s.overall, s.per_query, ranking))
    return data, qrels, out


def test_unjudged_share_and_judged_only_on_adi_thinned_to_40_percent(tmp_path):
    data, qrels, (a, b) = _adi_versions(thin=0.4)
    scored = [q for q, j in qrels.items() if max(j.values()) > 0]
    for v in (a, b):
        want = np.mean([np.mean([d not in qrels[q] for d in v.ranking.top(q, 10)]) for q in scored])
        assert unjudged_share(v.ranking, qrels, 10) == pytest.approx(want)
        path = tmp_path / f"{v.name}.trec"
        write_trec(v.ranking, path, v.name)
        theirs = _pytrec_judged_only({q: qrels[q] for q in scored}, path)
        ours = judged_only_scores(v.ranking, qrels, ["ndcg@10"]).per_query["ndcg@10"]
        assert set(ours) == set(theirs)
        for q in ours:
            assert ours[q] == pytest.approx(theirs[q]["ndcg_cut_10"], abs=1e-9)
    cov = measure_coverage(a, b, qrels, GateConfig(), CompareSettings())
    assert cov.sparse and max(cov.unjudged.values()) > 0.5
    # the judged-only comparison is the paired t-test of the condensed per-query values
    ja = judged_only_scores(a.ranking, qrels, ["ndcg@10"]).per_query["ndcg@10"]
    jb = judged_only_scores(b.ranking, qrels, ["ndcg@10"]).per_query["ndcg@10"]
    d = np.array([jb[q] - ja[q] for q in sorted(a.per_query["ndcg@10"])])
    t = student(d)
    from scipy import stats

    assert cov.judged_only.p_value == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue)
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert (cov.judged_only.ci_low, cov.judged_only.ci_high) == pytest.approx(
        (max(low, -1.0), min(high, 1.0))
    )
    assert cov.judged_only.delta == pytest.approx(t.estimate) and cov.judged_only.n_queries == len(
        d
    )


def test_condensed_keeps_order_and_pads():
    data, qrels, (a, _) = _adi_versions(thin=0.4)
    c = condensed(a.ranking, qrels)
    for q in list(qrels)[:10]:
        want = [d for d in a.ranking.top(q) if d in qrels[q]]
        assert c.top(q) == want
    assert (c.indices == -1).any()


@pytest.mark.parametrize(
    ("primary", "judged", "want"),
    [
        (Quality.BETTER, Quality.BETTER, Quality.BETTER),
        (Quality.BETTER, Quality.NO_WORSE, Quality.NO_WORSE),
        (Quality.BETTER, Quality.INCONCLUSIVE, Quality.INCONCLUSIVE),
        (Quality.NO_WORSE, Quality.WORSE, Quality.INCONCLUSIVE),
        (Quality.NO_WORSE, Quality.BETTER, Quality.NO_WORSE),
        (Quality.WORSE, Quality.NO_WORSE, Quality.INCONCLUSIVE),
        (Quality.WORSE, Quality.INCONCLUSIVE, Quality.WORSE),
        (Quality.INCONCLUSIVE, Quality.BETTER, Quality.INCONCLUSIVE),
    ],
)
def test_reconcile_only_when_sparse(primary, judged, want):
    from evalkit.compare.coverage import Coverage

    p = QualityCall("ndcg@10", 0.05, 0.01, 0.09, 0.01, 0.01, primary, 0.01, queries_needed=9)
    j = QualityCall("ndcg@10", 0.02, -0.05, 0.09, 0.4, 0.4, judged, 0.01, family="judged_only")
    sparse = Coverage("ndcg@10", 10, {"A": 0.92, "B": 0.3}, 30, 0.5, j, ("A", "B"))
    dense = Coverage("ndcg@10", 10, {"A": 0.2, "B": 0.3}, 30, 0.5, j, ("A", "B"))
    assert reconcile(p, dense) == p
    r = reconcile(p, sparse)
    assert r.status == want
    if want != primary:
        assert "92% of A's top 10 unjudged" in r.note and r.queries_needed is None
        if want == Quality.INCONCLUSIVE:
            assert r.note.startswith("judgments too sparse to call")
    else:
        assert r == p
