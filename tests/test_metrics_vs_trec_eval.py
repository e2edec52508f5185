"""evalkit's ranx metrics equal pytrec_eval (trec_eval's C code) on the TREC run file evalkit writes.

The catalog is built with exact duplicate vectors and coarsely quantised vectors so that many
scores tie: ties are where peer tools have reported wrong numbers.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import pytrec_eval

from evalkit.index.faiss_index import IndexSpec, build_index
from evalkit.metrics.ir import scorable_qrels, score
from evalkit.retrieve.replay import replay
from evalkit.retrieve.run_file import read_trec, write_trec

TREC_MEASURES = {"ndcg_cut_10", "recall_10", "recall_100", "map_cut_100", "recip_rank"}


def _tied_collection(seed: int, n_items: int = 600, n_queries: int = 80, dim: int = 16):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n_items // 2, dim)).astype(np.float32)
    docs = np.concatenate([base, base[rng.integers(0, len(base), n_items - len(base))]])
    docs = np.round(docs, 0)  # coarse values: many exactly equal inner products
    docs[np.all(docs == 0, axis=1), 0] = 1.0
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = np.round(rng.standard_normal((n_queries, dim)), 0).astype(np.float32)
    queries[np.all(queries == 0, axis=1), 0] = 1.0
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    # non-sortable-as-numbers ids with mixed widths, so string order matters for tie-breaking
    item_ids = [f"D{(i * 7919) % n_items}" for i in range(n_items)]
    query_ids = [f"q{i}" for i in range(n_queries)]
    qrels = {}
    for q in query_ids[:-5]:  # the last five queries stay unjudged
        judged = rng.choice(n_items, size=int(rng.integers(1, 25)), replace=False)
        qrels[q] = {item_ids[j]: int(rng.integers(0, 4)) for j in judged}
    qrels[query_ids[0]] = {item_ids[0]: 0}  # judged, but nothing relevant: not scored
    return docs, queries, item_ids, query_ids, qrels


def _trec_eval(qrels, run_path, measures, depth=None):
    run = {}
    for q, items in read_trec(run_path).items():
        run[q] = {d: s for d, s in (items[:depth] if depth else items)}
    ev = pytrec_eval.RelevanceEvaluator(qrels, measures)
    return ev.evaluate(run)


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_equal_pytrec_eval_with_ties(tmp_path, seed):
    docs, queries, item_ids, query_ids, qrels = _tied_collection(seed)
    ranking = replay(build_index(docs, IndexSpec()), queries, query_ids, item_ids, k=100)
    assert ranking.ties > 100, "the fixture must exercise ties"

    metrics = ["ndcg@10", "recall@10", "recall@100", "map@100", "mrr@10"]
    ours = score(ranking, qrels, metrics)
    run_path = tmp_path / "run.trec"
    write_trec(ranking, run_path, "test")

    judged = scorable_qrels(qrels, query_ids)
    no_relevant = [q for q, j in qrels.items() if max(j.values()) < 1]
    assert ours.n_scored == len(judged) and ours.n_without_relevant == len(no_relevant) >= 1
    full = _trec_eval(judged, run_path, TREC_MEASURES - {"recip_rank"})
    top10 = _trec_eval(judged, run_path, {"recip_rank"}, depth=10)
    pairs = {
        "ndcg@10": (full, "ndcg_cut_10"),
        "recall@10": (full, "recall_10"),
        "recall@100": (full, "recall_100"),
        "map@100": (full, "map_cut_100"),
        "mrr@10": (top10, "recip_rank"),
    }
    for metric, (table, measure) in pairs.items():
        theirs = {q: v[measure] for q, v in table.items()}
        assert set(theirs) == set(ours.per_query[metric])
        for q, v in theirs.items():
            assert ours.per_query[metric][q] == pytest.approx(v, abs=1e-9), (metric, q)
        assert ours.overall[metric] == pytest.approx(np.mean(list(theirs.values())), abs=1e-12)


def test_tie_break_is_item_id_descending_and_deterministic():
    docs = np.ones((5, 4), dtype=np.float32) / 2.0  # five identical items: everything ties
    item_ids = ["a", "c", "b", "e", "d"]
    ranking = replay(build_index(docs, IndexSpec()), docs[:1], ["q"], item_ids, k=5)
    assert ranking.top("q") == ["e", "d", "c", "b", "a"]
    assert ranking.ties == 4


def test_ties_across_rank_k_are_resolved_by_searching_deeper():
    docs = np.ones((40, 4), dtype=np.float32) / 2.0
    item_ids = [f"i{j:02d}" for j in range(40)]
    ranking = replay(build_index(docs, IndexSpec()), docs[:1], ["q"], item_ids, k=5)
    # 40 tied items, more than k + margin: the top 5 must still be the 5 largest ids of all 40.
    assert ranking.top("q") == ["i39", "i38", "i37", "i36", "i35"]
    assert ranking.boundary_ties == 0


ALL_METRICS = [
    "ndcg@10",
    "recall@10",
    "recall@100",
    "map@100",
    "mrr@10",
    "precision@5",
    "precision",
    "ndcg_burges@10",
    "map",
]


def _ranx_dicts(ranking, qrels, metrics):
    """The reference: ranx fed its documented Qrels / Run dicts (evalkit's former path)."""
    from ranx import Qrels, Run, evaluate

    from evalkit.retrieve.run_file import rank_scores

    judged = scorable_qrels(qrels, ranking.query_ids)
    run = Run(rank_scores(ranking, sorted(judged)))
    evaluate(Qrels(judged), run, list(metrics), return_mean=False, save_results_in_run=True)
    return {m: {q: float(v) for q, v in run.scores[m].items()} for m in metrics}


def _with_unknown_items_and_short_rankings(seed):
    docs, queries, item_ids, query_ids, qrels = _tied_collection(seed, n_queries=60)
    for i, q in enumerate(query_ids[1:20]):  # judged items the catalog does not have
        qrels[q][f"gone{i % 3}"] = 2
    ranking = replay(build_index(docs, IndexSpec()), queries, query_ids, item_ids, k=100)
    rows = ranking.indices.copy()
    rows[3, 40:] = -1  # an approximate index may return fewer than k results
    rows[7, 1:] = -1
    return replace(ranking, indices=rows, _row={}), qrels


@pytest.mark.parametrize("short", [False, True])
def test_chunked_scoring_equals_unchunked_ranx_dicts_and_pytrec_eval(tmp_path, short):
    if short:
        ranking, qrels = _with_unknown_items_and_short_rankings(2)
    else:
        docs, queries, item_ids, query_ids, qrels = _tied_collection(3, n_queries=60)
        ranking = replay(build_index(docs, IndexSpec()), queries, query_ids, item_ids, k=100)
    whole = score(ranking, qrels, ALL_METRICS)
    reference = _ranx_dicts(ranking, qrels, ALL_METRICS)
    for chunk in (1, 7, 10_000):
        chunked = score(ranking, qrels, ALL_METRICS, chunk=chunk)
        assert chunked.per_query == whole.per_query  # bit-identical, whatever the chunk
        assert chunked.overall == whole.overall
    for m in ALL_METRICS:
        assert whole.per_query[m].keys() == reference[m].keys()
        for q, v in reference[m].items():
            assert whole.per_query[m][q] == pytest.approx(v, abs=1e-12), (m, q)

    run_path = tmp_path / "run.trec"
    write_trec(ranking, run_path, "test")
    judged = scorable_qrels(qrels, ranking.query_ids)
    full = _trec_eval(judged, run_path, {"ndcg_cut_10", "recall_100", "map_cut_100", "P_5"})
    for metric, measure in [
        ("ndcg@10", "ndcg_cut_10"),
        ("recall@100", "recall_100"),
        ("map@100", "map_cut_100"),
        ("precision@5", "P_5"),
    ]:
        for q, v in full.items():
            assert whole.per_query[metric][q] == pytest.approx(v[measure], abs=1e-9), (metric, q)


def test_single_metric_is_scored():
    docs, queries, item_ids, query_ids, qrels = _tied_collection(4, n_queries=20)
    ranking = replay(build_index(docs, IndexSpec()), queries, query_ids, item_ids, k=20)
    assert score(ranking, qrels, ["mrr@10"]).per_query == _ranx_dicts(ranking, qrels, ["mrr@10"])
