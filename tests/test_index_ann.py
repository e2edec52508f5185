"""Approximate indexes: their recall against exact search is measured and reported.

ann_recall is checked against a plain-Python set intersection; HNSW / IVF replays against an
exact replay on clustered data; and the CLI logs ``ann_recall_at_<k>`` for `index=hnsw`.
"""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.errors import ConfigError
from evalkit.index.faiss_index import IndexSpec, ann_recall, build_index, measure_ann_recall
from evalkit.retrieve.replay import replay

from .cli import child_runs, run_evalkit


def _clustered(n, n_q, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((16, dim)).astype(np.float32)
    docs = centers[rng.integers(0, 16, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    qs = centers[rng.integers(0, 16, n_q)] + 0.5 * rng.standard_normal((n_q, dim)).astype(
        np.float32
    )
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    return docs, qs


def test_ann_recall_equals_set_intersection():
    rng = np.random.default_rng(3)
    approx = rng.integers(-1, 50, size=(200, 10))
    exact = np.array([rng.permutation(50)[:10] for _ in range(200)])
    expected = np.mean(
        [len({a for a in ar if a >= 0} & set(er)) / len(set(er)) for ar, er in zip(approx, exact)]
    )
    assert ann_recall(approx, exact, 10) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_replay_recall_against_exact(kind):
    docs, qs = _clustered(5000, 200)
    ids = [f"d{i}" for i in range(len(docs))]
    qids = [f"q{i}" for i in range(len(qs))]
    exact = replay(build_index(docs, IndexSpec()), qs, qids, ids, k=20)
    spec = IndexSpec(kind=kind, nprobe=4, ef_search=64)
    approx = replay(build_index(docs, spec), qs, qids, ids, k=20)
    recall = measure_ann_recall(docs, qs, approx.indices, 20, sample=0)
    assert recall == pytest.approx(ann_recall(approx.indices, exact.indices, 20), abs=1e-12)
    assert 0.5 < recall <= 1.0


@pytest.mark.slow
def test_cli_logs_ann_recall_for_hnsw(tmp_path, shared_data, shared_cache):
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "models=[use_m3]",
        "index=hnsw",
        "tracking.experiment=hnsw",
        work=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    run = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "hnsw")["use_m3"]
    assert run.data.params["index.kind"] == "hnsw" and run.data.params["index.m"] == "32"
    # named by the configured k; ADI has only 82 items, so the graph returns all: recall 1
    assert run.data.metrics["ann_recall_at_100"] == pytest.approx(1.0)
    # dataset=beir embeds title + " " + body (BEIR's convention), and says so
    assert run.data.params["dataset.text_field"] == "title_text"
    assert run.data.params["dataset.title_separator"] == " "
    assert "catalog text embedded: title + ' ' + text" in res.stdout


@pytest.mark.parametrize("precision,floor", [("fp16", 0.99), ("sq8", 0.8)])
def test_reduced_precision_flat_is_measured_against_exact_fp32(precision, floor):
    docs, qs = _clustered(5000, 200, seed=1)
    ids = [f"d{i}" for i in range(len(docs))]
    qids = [f"q{i}" for i in range(len(qs))]
    exact = replay(build_index(docs, IndexSpec()), qs, qids, ids, k=20)
    spec = IndexSpec(precision=precision)
    assert not spec.exact and spec.params()["index.precision"] == precision
    index = build_index(docs, spec)
    assert index.sa_code_size() == {"fp16": 2, "sq8": 1}[precision] * docs.shape[1]
    approx = replay(index, qs, qids, ids, k=20)
    recall = measure_ann_recall(docs, qs, approx.indices, 20, sample=0)
    assert recall == pytest.approx(ann_recall(approx.indices, exact.indices, 20), abs=1e-12)
    assert floor < recall <= 1.0


def test_precision_is_validated():
    with pytest.raises(ConfigError, match="index.precision='bf16' is unknown"):
        IndexSpec(precision="bf16")
    with pytest.raises(ConfigError, match="applies to index=flat only"):
        IndexSpec(kind="hnsw", precision="fp16")
    assert IndexSpec().exact and IndexSpec().params()["index.precision"] == "fp32"


@pytest.mark.slow
def test_cli_logs_recall_of_fp16_flat(tmp_path, shared_data, shared_cache):
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "models=[use_m3]",
        "index.precision=fp16",
        "k=10",
        "metrics=[ndcg@10,recall@10]",
        "tracking.experiment=fp16",
        work=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    run = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "fp16")["use_m3"]
    assert run.data.params["index.kind"] == "flat" and run.data.params["index.precision"] == "fp16"
    assert 0.9 <= run.data.metrics["ann_recall_at_10"] <= 1.0


def test_blas_block_sets_faiss_database_block_and_keeps_exact_results():
    import faiss

    docs, qs = _clustered(20_000, 1024, dim=64, seed=2)  # 1024 x 64 queries: FAISS's BLAS path
    default = faiss.cvar.distance_compute_blas_database_bs
    try:
        ref_scores, ref_rows = build_index(docs, IndexSpec(blas_block=1024)).search(qs, 50)
        index = build_index(docs, IndexSpec(blas_block=8192))
        assert faiss.cvar.distance_compute_blas_database_bs == 8192
        scores, rows = index.search(qs, 50)
    finally:
        faiss.cvar.distance_compute_blas_database_bs = default
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-6)
    assert np.mean(rows == ref_rows) > 0.999  # only exact float ties may swap
