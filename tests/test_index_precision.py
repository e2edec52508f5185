"""``index.precision`` (fp32 | fp16 | sq8 | sq4 | binary) and what each index costs.

- every precision builds and searches (descending scores, valid rows);
- ``binary`` without rescoring returns ``1 - 2 * hamming / d``, recomputed here from numpy sign
  bits; with ``index.rescore`` its scores are the exact fp32 inner products of the rows returned,
  and rescoring deeper raises recall on seeded clustered vectors (printed with ``-s``);
  ``index.binary_threshold=mean`` takes the bits around the catalog's mean (better recall on
  anisotropic vectors; the mean is counted in ``index_bytes``);
- recall against exact fp32 search orders sq4 < sq8 < fp16 on seeded clustered vectors;
- ``index_bytes`` is FAISS's serialised size; latency stats are positive, p95 >= p50;
- an unknown precision is a ConfigError naming the valid ones; ``engine=ray`` refuses a reduced
  precision with a ConfigError naming what it supports;
- the shipped config composes with the new keys; the demo run with ``index.precision=binary``
  logs the cost metrics on every MLflow child run.
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from evalkit.engine.ray_search import check_ray_index
from evalkit.errors import ConfigError
from evalkit.index.binary import BinaryIndex, sign_bits
from evalkit.index.cost import index_bytes, index_cost, search_latency
from evalkit.index.faiss_index import (
    PRECISIONS,
    ArrayFlatIP,
    IndexSpec,
    ann_recall,
    build_index,
)

from .cli import child_runs, run_evalkit


def _clustered(n: int, n_q: int, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((16, dim)).astype(np.float32)

    def around(m: int) -> np.ndarray:
        x = centers[rng.integers(0, 16, m)] + 0.5 * rng.standard_normal((m, dim)).astype("f4")
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return around(n), around(n_q)


@pytest.fixture(scope="module")
def clustered():
    docs, qs = _clustered(5000, 200)
    _, exact = ArrayFlatIP(docs).search(qs, 20)
    return docs, qs, exact


def _recall(docs, qs, exact, **spec) -> float:
    _, rows = build_index(docs, IndexSpec(**spec)).search(qs, 20)
    return ann_recall(rows, exact, 20)


@pytest.mark.parametrize(
    "spec",
    [
        {"precision": "fp32"},
        {"precision": "fp16"},
        {"precision": "sq8"},
        {"precision": "sq4"},
        {"precision": "binary", "rescore": 0},
        {"precision": "binary", "rescore": 50},
    ],
)
def test_every_precision_builds_and_searches(clustered, spec):
    docs, qs, _ = clustered
    index = build_index(docs, IndexSpec(**spec))
    assert index.ntotal == len(docs)
    scores, rows = index.search(qs, 10)
    assert scores.shape == rows.shape == (len(qs), 10)
    assert scores.dtype == np.float32 and ((rows >= 0) & (rows < len(docs))).all()
    assert (np.diff(scores, axis=1) <= 0).all()  # best first
    assert all(len(set(r)) == 10 for r in rows.tolist())  # no row twice


def test_binary_without_rescore_scores_are_hamming_similarities(clustered):
    docs, qs, _ = clustered
    d = docs.shape[1]
    scores, rows = BinaryIndex(docs, rescore=0).search(qs, 30)
    assert (np.diff(scores, axis=1) <= 0).all()
    # Hamming distance recomputed from the signs, independent of FAISS
    sd, sq = docs > 0, qs > 0
    hamming = (sq[:, None, :] != sd[rows]).sum(axis=2)
    np.testing.assert_array_equal(scores, (1 - 2 * hamming / d).astype(np.float32))
    # nothing outside the returned rows is closer than the last one returned
    all_h = (sq[:, None, :] != sd[None, :, :]).sum(axis=2)
    assert (np.sort(all_h, axis=1)[:, :30] == np.sort(hamming, axis=1)).all()


def test_sign_bits_pad_odd_dimensions_with_zero_bits():
    x = np.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]], dtype="float32")
    assert sign_bits(x).tolist() == [[0b10100000], [0b00100000]]
    scores, rows = BinaryIndex(x).search(x[:1], 2)  # d = 3: one differing sign of 3
    assert rows.tolist() == [[0, 1]] and scores[0].tolist() == pytest.approx([1.0, 1 - 2 / 3])


def test_binary_rescore_returns_exact_inner_products_and_raises_recall(clustered):
    docs, qs, exact = clustered
    k, n = 20, 200
    scores, rows = BinaryIndex(docs, rescore=n).search(qs, k)
    ip = np.einsum("qd,qkd->qk", qs, docs[rows])
    np.testing.assert_allclose(scores, ip, rtol=0, atol=1e-6)
    # the rows are the best of the top-n binary candidates by exact inner product
    _, cand = BinaryIndex(docs, rescore=0).search(qs, n)
    for q in range(len(qs)):
        cand_ip = qs[q] @ docs[cand[q]].T
        assert set(rows[q]) <= set(cand[q].tolist())
        np.testing.assert_allclose(scores[q], np.sort(cand_ip)[::-1][:k], atol=1e-6)
    recalls = {r: _recall(docs, qs, exact, precision="binary", rescore=r) for r in (0, 50, 200)}
    print(f"binary recall@20 on clustered 64-d vectors by rescore depth: {recalls}")
    assert recalls[0] < recalls[50] < recalls[200] <= 1.0
    # rescore < k: the top k binary candidates are all re-ranked (max(rescore, k))
    s5, r5 = BinaryIndex(docs, rescore=5).search(qs[:3], 20)
    np.testing.assert_allclose(s5, np.einsum("qd,qkd->qk", qs[:3], docs[r5]), atol=1e-6)


def test_binary_threshold_mean_takes_bits_around_the_catalog_mean():
    docs, qs = _clustered(3000, 100, dim=64, seed=4)
    # anisotropic, as many embedding models are: one shared direction in every vector
    offset = np.random.default_rng(5).standard_normal(64).astype("f4")
    docs, qs = [
        (x + offset) / np.linalg.norm(x + offset, axis=1, keepdims=True) for x in (docs, qs)
    ]
    mean = docs.mean(axis=0)
    index = BinaryIndex(docs, rescore=0, threshold="mean")
    scores, rows = index.search(qs, 20)
    hamming = ((qs > mean)[:, None, :] != (docs > mean)[rows]).sum(axis=2)
    np.testing.assert_array_equal(scores, (1 - 2 * hamming / 64).astype(np.float32))
    # rescored scores stay the inner products of the original vectors
    s2, r2 = BinaryIndex(docs, rescore=100, threshold="mean").search(qs, 20)
    np.testing.assert_allclose(s2, np.einsum("qd,qkd->qk", qs, docs[r2]), atol=1e-6)
    # the mean is stored beside FAISS's codes
    assert index_bytes(index) == len(faiss.serialize_index_binary(index.index)) + 4 * 64
    _, exact = ArrayFlatIP(docs).search(qs, 20)
    zero = _recall(docs, qs, exact, precision="binary", rescore=100)
    centred = _recall(docs, qs, exact, precision="binary", rescore=100, binary_threshold="mean")
    print(f"binary recall@20, rescore 100, anisotropic 64-d: zero {zero:.3f}, mean {centred:.3f}")
    assert centred > zero + 0.05


def test_recall_orders_sq4_below_sq8_below_fp16(clustered):
    docs, qs, exact = clustered
    r = {p: _recall(docs, qs, exact, precision=p) for p in ("fp16", "sq8", "sq4")}
    assert r["sq4"] + 0.1 < r["sq8"] < r["fp16"] <= 1.0, r
    assert _recall(docs, qs, exact, precision="fp32") == 1.0


@pytest.mark.parametrize(
    "spec",
    [
        {"precision": "fp16"},
        {"precision": "sq8"},
        {"precision": "sq4"},
        {"kind": "hnsw", "m": 8},
        {"kind": "ivf", "nlist": 8, "codec": "pq", "pq_m": 8, "pq_nbits": 4},
    ],
)
def test_index_bytes_is_faiss_serialized_size(spec):
    docs, _ = _clustered(300, 1, dim=32)
    index = build_index(docs, IndexSpec(**spec))
    assert index_bytes(index) == len(faiss.serialize_index(index))


def test_index_bytes_of_binary_and_exact_flat():
    docs, _ = _clustered(300, 1, dim=32)
    binary = build_index(docs, IndexSpec(precision="binary"))
    assert index_bytes(binary) == len(faiss.serialize_index_binary(binary.index))
    assert index_bytes(binary) - index_bytes(BinaryIndex(docs[:0])) == 300 * 32 // 8
    flat = faiss.IndexFlatIP(32)
    flat.add(docs)
    assert index_bytes(ArrayFlatIP(docs)) == len(faiss.serialize_index(flat))
    sq4 = build_index(docs, IndexSpec(precision="sq4"))
    assert sq4.sa_code_size() == 32 // 2


def test_latency_stats_are_positive_and_ordered(clustered):
    docs, qs, _ = clustered
    for spec in (IndexSpec(), IndexSpec(precision="binary", rescore=100)):
        index = ArrayFlatIP(docs) if spec.exact else build_index(docs, spec)
        lat = search_latency(index, qs, k=10, sample=50, seed=1)
        assert lat.n == 50 and 0 < lat.p50_ms <= lat.p95_ms
        stats = index_cost(index, qs, 10, latency_sample=50)
        assert set(stats) == {
            "index_bytes",
            "index_bytes_per_vector",
            "search_p50_ms",
            "search_p95_ms",
        }
        assert stats["index_bytes_per_vector"] == stats["index_bytes"] / len(docs)
        assert 0 < stats["search_p50_ms"] <= stats["search_p95_ms"]
    assert set(index_cost(index, qs, 10, latency_sample=0)) == {
        "index_bytes",
        "index_bytes_per_vector",
    }


def test_bytes_per_vector_shrink_with_precision():
    docs, _ = _clustered(2000, 1, dim=64)
    per = {
        p: index_bytes(
            ArrayFlatIP(docs) if p == "fp32" else build_index(docs, IndexSpec(precision=p))
        )
        / len(docs)
        for p in PRECISIONS
    }
    # codes: 256, 128, 64, 32, 8 bytes per 64-d vector, plus a fixed header (and SQ ranges)
    assert [round(per[p]) for p in PRECISIONS] == [256, 128, 64, 32, 8]


def test_precision_and_rescore_are_validated():
    with pytest.raises(ConfigError) as err:
        IndexSpec(precision="int8")
    assert "index.precision='int8' is unknown" in str(err.value)
    assert all(p in str(err.value) for p in ("fp32", "fp16", "sq8", "sq4", "binary"))
    with pytest.raises(ConfigError, match="applies to index=flat only"):
        IndexSpec(kind="ivf", precision="binary")
    with pytest.raises(ConfigError, match=r"index.rescore=-1 is invalid"):
        IndexSpec(precision="binary", rescore=-1)
    with pytest.raises(ConfigError, match=r"index.latency_sample='x' is invalid"):
        IndexSpec(latency_sample="x")
    with pytest.raises(ConfigError, match=r"index.binary_threshold='median' is unknown"):
        IndexSpec(precision="binary", binary_threshold="median")
    assert IndexSpec(precision="binary", rescore=7).params()["index.rescore"] == 7
    assert IndexSpec(precision="binary").params()["index.binary_threshold"] == "zero"
    assert "index.rescore" not in IndexSpec(precision="sq4").params()


@pytest.mark.parametrize("precision", ["fp16", "sq8", "sq4", "binary"])
def test_engine_ray_refuses_reduced_precision_naming_what_it_supports(precision):
    with pytest.raises(ConfigError) as err:
        check_ray_index(IndexSpec(precision=precision))
    msg = str(err.value)
    assert f"index.precision={precision} cannot be sharded on Ray" in msg
    assert "index=flat with index.precision=fp32, or index=ivf" in msg
    check_ray_index(IndexSpec())
    check_ray_index(IndexSpec(kind="ivf", codec="pq"))


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["index.precision=binary", "index.rescore=200"], {"precision": "binary", "rescore": 200}),
        (["index.precision=binary", "index.binary_threshold=mean"], {"binary_threshold": "mean"}),
        (
            ["index.precision=sq4", "index.latency_sample=0"],
            {"precision": "sq4", "latency_sample": 0},
        ),
        (["index=hnsw", "index.latency_sample=50"], {"kind": "hnsw", "latency_sample": 50}),
        (["index=ivf", "index.codec=pq"], {"kind": "ivf", "codec": "pq", "latency_sample": 200}),
    ],
)
def test_command_line_overrides_build_the_index_spec(overrides, expected):
    spec = _index_spec(overrides)
    assert {key: getattr(spec, key) for key in expected} == expected
    assert _index_spec([]).rescore == IndexSpec().rescore == 1000  # conf and dataclass agree


def _index_spec(overrides: list[str]) -> IndexSpec:
    """``cfg.index`` composed from the shipped config with ``overrides``, built as the run does."""
    from hydra import compose, initialize_config_dir

    from evalkit.cli import CONF_DIR
    from evalkit.instantiate import build

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "output_dir=/tmp/unused"])
    spec = build(cfg.index, "index")
    assert isinstance(spec, IndexSpec)
    return spec


@pytest.mark.slow
def test_demo_with_binary_logs_cost_metrics_in_child_runs(tmp_path, shared_cache):
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        "index.precision=binary",
        "index.rescore=50",
        # a small demo: the costs, not the quality, are under test; the size test_e2e_online.py
        # embeds into shared_cache too, so the run's store holds it once
        "dataset.n_items=600",
        "dataset.n_queries=120",
        "tracking.experiment=binary",
        work=tmp_path,
    )
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    runs = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "binary")
    assert len(runs) == 2
    for run in runs.values():
        m, p = run.data.metrics, run.data.params
        assert p["index.precision"] == "binary" and p["index.rescore"] == "50"
        dim = m["dim"]
        # sign bits: d / 8 bytes per vector plus the fixed header spread over the catalog
        assert dim / 8 <= m["index_bytes_per_vector"] < dim / 8 + 1
        n = round(m["index_bytes"] / m["index_bytes_per_vector"])  # the catalog's size
        assert n * m["index_bytes_per_vector"] == pytest.approx(m["index_bytes"], abs=1e-6)
        assert 0 < m["index_bytes"] - n * dim / 8 < 100  # + FAISS's header
        assert 0 < m["search_p50_ms"] <= m["search_p95_ms"]
        assert 0 < m["ann_recall_at_100"] <= 1
