"""engine=ray on a local Ray started by the test (2 CPUs, 127.0.0.1, 500 MB object store).

- The same evaluation with engine=ray and engine=local on the same vectors: byte-identical
  TREC runs, per-query metrics and verdict.json; the vectors Ray Data's actors embedded (texts
  staged as Parquet blocks in the store, read with ``ray.data.read_parquet``) equal the
  in-process ones.
- The re-index analysis (equal dimensions) on the catalogs the Ray engine announces equals
  engine=local's.
- Sharded search merged on the driver equals one index: exact flat shards (with ties) and IVF
  (flat / SQ8 / PQ codes) shards sharing one trained quantizer; a stored IVF is reused.
- Several endpoints behind one OpenAI-compatible version, embedded by a Ray actor: each endpoint
  gets part of the load and its request / retry / failure counts come back to the driver.
"""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')

from evalkit.embed import embed_texts  # noqa: E402
from evalkit.embed.openai_backend import OpenAIEmbedder  # noqa: E402
from evalkit.engine.ray_engine import RayEngine  # noqa: E402
from evalkit.engine.ray_search import ray_ranking, ray_runner  # noqa: E402
from evalkit.engine.spec import EngineSpec  # noqa: E402
from evalkit.index.faiss_index import IndexSpec, build_index, trained_ivf  # noqa: E402
from evalkit.retrieve.replay import id_ranks, replay  # noqa: E402
from evalkit.retrieve.sharded import Shard, ShardedIndex, add_to_shard, split_rows  # noqa: E402

from .cli import REPO  # noqa: E402
from .fault_server import FaultServer  # noqa: E402

pytestmark = pytest.mark.slow


def _evaluate(engine: str, cache, out, shared_data, *extra: str):
    from hydra import compose, initialize_config_dir

    from evalkit.run.evaluation import run_evaluation

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "dataset=beir",
                f"dataset.path={shared_data / 'adi'}",
                "models=[use_m3,e5_small]",
                f"engine={engine}",
                f"cache.dir={cache}",
                f"output_dir={out}",
                "tracking=none",
                "progress=false",
                # The latency probe times live requests: its figures (in verdict.json) differ run
                # to run whatever the engine, so it is off for the byte comparison.
                "latency.probe=0",
                *extra,
            ],
        )
    return run_evaluation(cfg), cfg


def test_engine_ray_equals_engine_local_on_adi(local_ray, tmp_path, shared_data):
    cache = tmp_path / "cache"
    # Cold: Ray Data actors embed ADI with both offline models into the cache (3 search shards).
    cold, cfg = _evaluate("ray", cache, tmp_path / "ray-cold", shared_data, "engine.shard_rows=30")
    for r in cold.results:
        assert r.extra["embed_requests"] > 0 and r.extra["embed_cached"] == 0
        assert r.extra["index_shards"] == 3
    # The texts were staged as Parquet blocks read by Ray Data, and the blocks are gone.
    assert (cache / "staging").is_dir() and not any((cache / "staging").rglob("*.parquet"))
    # The actors' vectors equal in-process embedding (same model, another process).
    from evalkit.instantiate import build

    texts = cold.data.catalog.text_for(cold.data.text_field)
    for name in ("use_m3", "e5_small"):
        version = build(cfg.models[name], name)
        fresh = embed_texts(version, texts[:20], "document", cache_dir=None, progress=False)
        cached = embed_texts(version, texts[:20], "document", cache_dir=cache, progress=False)
        assert cached.n_requests == 0
        np.testing.assert_allclose(cached.vectors, fresh.vectors, rtol=0, atol=1e-5)

    # Warm, same vectors: engine=ray (sharded search on Ray tasks) vs engine=local (one index).
    via_ray, _ = _evaluate("ray", cache, tmp_path / "ray", shared_data, "engine.shard_rows=30")
    local, _ = _evaluate("local", cache, tmp_path / "local", shared_data)
    assert via_ray.exit_code == local.exit_code == cold.exit_code
    for a, b in zip(via_ray.results, local.results):
        assert a.name == b.name and a.extra["embed_requests"] == b.extra["embed_requests"] == 0
        np.testing.assert_array_equal(a.ranking.indices, b.ranking.indices)
        np.testing.assert_array_equal(a.ranking.scores, b.ranking.scores)
        assert a.overall == b.overall and a.per_query == b.per_query
        for rel in (f"runs/{a.name}.trec", "per_query.csv"):
            assert (tmp_path / "ray" / a.name / rel).read_bytes() == (
                tmp_path / "local" / a.name / rel
            ).read_bytes(), rel
    assert (tmp_path / "ray" / "verdict.json").read_bytes() == (
        tmp_path / "local" / "verdict.json"
    ).read_bytes()
    assert via_ray.comparison.status == local.comparison.status == cold.comparison.status


def test_the_reindex_analysis_on_ray_equals_engine_local(local_ray, tmp_path, shared_data):
    """Equal dimensions (use_m3 truncated to 384): the Ray engine announces each catalog it
    read back, the re-index stage searches it there, and the analysis (scores, bootstrap
    deltas, action) equals engine=local's on the same vectors."""
    cache = tmp_path / "cache"
    dims = "models.use_m3.dimensions=384"
    local, _ = _evaluate("local", cache, tmp_path / "local", shared_data, dims)  # fills the cache
    via_ray, _ = _evaluate(
        "ray", cache, tmp_path / "ray", shared_data, dims, "engine.shard_rows=30"
    )
    expected = local.comparison.candidates[0].reindex
    got = via_ray.comparison.candidates[0].reindex
    assert expected.dims_match and len(expected.scores) == 6
    assert got.scores == expected.scores and got.deltas == expected.deltas
    assert got.action == expected.action and got.rolling_safe == expected.rolling_safe
    assert got.to_dict() == expected.to_dict()


def _tied_catalog(n=300, distinct=23, d=16, seed=1):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((distinct, d)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    docs = base[rng.integers(0, distinct, n)]  # every vector many times: exact ties everywhere
    queries = base[:7] + 0.01 * rng.standard_normal((7, d)).astype(np.float32)
    ids = [f"d{i:04d}" for i in rng.permutation(n)]
    return docs, queries, ids


def test_flat_shards_merged_on_ray_equal_flat_search_with_ties(local_ray):
    docs, queries, ids = _tied_catalog()
    qids = [f"q{i}" for i in range(len(queries))]
    rank = id_ranks(ids)
    one = replay(build_index(docs, IndexSpec()), queries, qids, ids, k=20, id_rank=rank)
    assert one.ties > 0
    shards = [Shard(a, b, ray.put(docs[a:b])) for a, b in split_rows(len(docs), 37)]
    sharded = ShardedIndex(shards, rank, ray_runner(ray))
    merged = replay(sharded, queries, qids, ids, k=20, id_rank=rank)
    np.testing.assert_array_equal(merged.indices, one.indices)
    np.testing.assert_array_equal(merged.scores, one.scores)
    assert merged.ties == one.ties and merged.boundary_ties == one.boundary_ties == 0
    assert sharded.calls > 1  # ties at rank k made it search deeper, as with one index


@pytest.mark.parametrize("codec", ["flat", "sq8", "pq"])
def test_ivf_shards_merged_on_ray_equal_one_ivf_with_the_same_quantizer(local_ray, tmp_path, codec):
    rng = np.random.default_rng(7)
    docs = rng.standard_normal((3000, 32)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[:50] + 0.05 * rng.standard_normal((50, 32)).astype(np.float32)
    ids = [f"item{i}" for i in range(len(docs))]
    qids = [f"q{i}" for i in range(len(queries))]
    rank = id_ranks(ids)
    spec = IndexSpec(kind="ivf", nlist=32, nprobe=4, codec=codec, pq_m=8, train_sample=1000)
    trained = trained_ivf(docs[:1000], len(docs), spec)
    import faiss

    blob = faiss.serialize_index(trained)
    one = faiss.deserialize_index(blob)
    one.add(docs)
    one.nprobe = spec.nprobe
    expected = replay(one, queries, qids, ids, k=10, id_rank=rank)
    shards = []
    for i, (a, b) in enumerate(split_rows(len(docs), 700)):
        path = add_to_shard(blob, docs[a:b], a, str(tmp_path / f"s{i}.faissindex"))
        shards.append(Shard(a, b, None, path))
    merged = replay(
        ShardedIndex(shards, rank, ray_runner(ray), nprobe=spec.nprobe),
        queries,
        qids,
        ids,
        10,
        id_rank=rank,
    )
    np.testing.assert_array_equal(merged.indices, expected.indices)
    np.testing.assert_array_equal(merged.scores, expected.scores)


def test_ivf_index_is_stored_beside_the_vectors_and_reused(local_ray, tmp_path):
    rng = np.random.default_rng(3)
    docs = rng.standard_normal((2000, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[:40]
    ids = [f"i{i}" for i in range(len(docs))]
    qids = [f"q{i}" for i in range(len(queries))]
    spec = IndexSpec(kind="ivf", nlist=20, nprobe=20, codec="sq8", train_sample=500)
    engine = EngineSpec(kind="ray", shard_rows=600)
    common = dict(
        vectors=docs,
        queries=queries,
        query_ids=qids,
        item_ids=ids,
        id_rank=id_ranks(ids),
        k=10,
        spec=spec,
        engine=engine,
        store_root=tmp_path,
        key="k" * 32,
        seed=0,
    )
    first, s1 = ray_ranking(**common)
    files = sorted(p.name for p in (tmp_path / "indexes" / ("k" * 32)).iterdir())
    assert files == [
        "manifest.json",
        "shard-00000.faissindex",
        "shard-00001.faissindex",
        "shard-00002.faissindex",
        "shard-00003.faissindex",
        "trained.faissindex",
        # the shards' rows, memory-mapped by the tasks (never the whole catalog in the object store)
        "vectors-00000.npy",
        "vectors-00001.npy",
        "vectors-00002.npy",
        "vectors-00003.npy",
    ]
    stamps = [(p, p.stat().st_mtime_ns) for p in (tmp_path / "indexes").rglob("*.npy")]
    again, s2 = ray_ranking(**common)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps)  # kept, not written again
    assert (s1["index_reused"], s2["index_reused"]) == (0.0, 1.0)
    # the index's cost: its shards' FAISS files (no single-query latency through Ray tasks)
    shard_files = (tmp_path / "indexes" / ("k" * 32)).glob("shard-*.faissindex")
    assert s1["index_bytes"] == s2["index_bytes"] == sum(p.stat().st_size for p in shard_files)
    assert s1["index_bytes_per_vector"] == s1["index_bytes"] / len(docs)
    assert "search_p50_ms" not in s1
    np.testing.assert_array_equal(first.indices, again.indices)
    # nprobe = nlist visits every list: SQ8 on well-spread vectors finds the exact top-10 mostly
    assert s1["ann_recall_at_10"] == s2["ann_recall_at_10"] > 0.9


def test_several_endpoints_share_the_load_from_a_ray_actor(local_ray, tmp_path):
    texts = [f"item number {i}" for i in range(96)]
    with FaultServer(dim=8) as a, FaultServer(dim=8, default="slow:0.02") as b:
        config = {
            "_target_": "evalkit.embed.openai_backend.OpenAIEmbedder",
            "name": "pool",
            "base_url": a.base_url,
            "base_urls": [a.base_url, b.base_url],
            "model": "fault-model",
            "batch_size": 4,
            "concurrency": 2,
            "max_retries": 1,
            "retry_initial_s": 0.01,
        }
        version = OpenAIEmbedder(**{k: v for k, v in config.items() if k != "_target_"})
        a.push("503", "503")  # two transient failures on endpoint a: retried there
        spec = EngineSpec(kind="ray", http_workers=1, batch_rows=24)
        with RayEngine(spec, {"pool": config}) as engine:
            done = engine.embed_remote(version, {"document": texts}, tmp_path, progress=False)
        n_a, n_b = len(a.embedding_requests), len(b.embedding_requests)
        url_a, url_b = a.base_url, b.base_url
    res = done["document"]
    assert n_a > 0 and n_b > 0 and n_a + n_b == 24 + 2  # 96 texts / 4 per request, 2 retried
    assert res.n_embedded == 96 and res.n_requests == 24 and res.retries == 2
    assert res.endpoints[url_a] == {"requests": n_a - 2, "retries": 2, "failures": 0}
    assert res.endpoints[url_b] == {"requests": n_b, "retries": 0, "failures": 0}
    # the tokens the server reported (its usage: one per text) come back from the workers
    assert res.reported_tokens == 96
    cached = embed_texts(version, texts, "document", cache_dir=tmp_path, progress=False)
    assert cached.n_requests == 0
    want = np.stack([FaultServer.vector_for(t, 8) for t in texts])
    np.testing.assert_allclose(cached.vectors, want, atol=1e-6)


def test_a_worker_endpoint_error_is_one_line_on_the_driver(local_ray, tmp_path):
    from evalkit.errors import EndpointError

    with FaultServer(dim=8, default="nan") as bad:
        config = {
            "_target_": "evalkit.embed.openai_backend.OpenAIEmbedder",
            "name": "bad",
            "base_url": bad.base_url,
            "model": "fault-model",
            "batch_size": 4,
            "max_retries": 0,
        }
        version = OpenAIEmbedder(**{k: v for k, v in config.items() if k != "_target_"})
        with (
            RayEngine(EngineSpec(kind="ray"), {"bad": config}) as engine,
            pytest.raises(EndpointError) as err,
        ):
            engine.embed_remote(version, {"query": ["a", "b", "c"]}, tmp_path, progress=False)
    message = str(err.value)
    assert "\n" not in message and "NaN" in message and "model version 'bad'" in message
