"""Vectors a run refuses never reach the vector store (issue 26, item 2).

Before, a server that switched from 384 to 512 dimensions mid-run, or answered all-zero (or
identical) vectors, stopped the run with a clear message but left those vectors in the store, and
every rerun failed until the folder was deleted.  Here a real OpenAI-compatible server on
127.0.0.1 (``tests.fault_server``) misbehaves as the probe's did; the store keeps only vectors the
run accepted, and a rerun against the healthy server succeeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.embed import embed_texts
from evalkit.embed.openai_backend import OpenAIEmbedder
from evalkit.embed.store import Folder, inventory, list_shards, read_vectors
from evalkit.errors import EndpointError

from .fault_server import FaultServer
from .test_embed_cache import Counting, texts_n, toy_vector

DIM = 384


@pytest.fixture
def server():
    srv = FaultServer(dim=DIM).start()
    yield srv
    srv.stop()


def version(srv: FaultServer) -> OpenAIEmbedder:
    return OpenAIEmbedder("served", base_url=srv.base_url, model="fault-model", batch_size=4,
                          concurrency=1, max_retries=0)  # fmt: skip


def stored_rows(store) -> np.ndarray:
    """Every vector the store's one spec folder holds."""
    (summary,) = inventory(store)
    spec = Folder(store).child(summary.hash)
    parts = [np.asarray(read_vectors(spec, s)) for s in list_shards(spec)]
    return np.concatenate(parts) if parts else np.zeros((0, DIM), np.float32)


def expected(texts: list[str]) -> np.ndarray:
    return np.stack([FaultServer.vector_for(t, DIM) for t in texts])


def test_a_server_switching_dimensions_mid_run_leaves_only_the_first_dimension(tmp_path, server):
    texts = texts_n(20)
    server.push("ok", "ok")  # two batches of 384, then 512 for good
    server.default = "dim:512"
    with pytest.raises(EndpointError, match="have 512 dimensions but earlier ones have 384"):
        embed_texts(version(server), texts, "document", tmp_path, progress=False)
    (summary,) = inventory(tmp_path)
    assert summary.dims == (DIM,) and summary.rows == 8  # the 512-d batch was not stored

    # the server still serves 512: the rerun says so, naming the store and the drop command
    with pytest.raises(EndpointError) as caught:
        embed_texts(version(server), texts, "document", tmp_path, progress=False)
    assert f"the vector store holds {DIM}-dimensional ones" in str(caught.value)
    assert f"vectors.drop={summary.hash[:12]}" in str(caught.value)
    assert inventory(tmp_path)[0].dims == (DIM,)

    server.default = "ok"  # back to the 384-d model: the rerun succeeds, embedding the rest
    before = len(server.embedding_requests)
    res = embed_texts(version(server), texts, "document", tmp_path, progress=False)
    assert res.n_cached == 8
    sent = [t for r in server.embedding_requests[before:] for t in r.inputs]
    assert sent == texts[8:]
    np.testing.assert_allclose(res.vectors, expected(texts), atol=1e-6)


@pytest.mark.parametrize("fault", ["zero", "constant"])
def test_all_zero_or_identical_vectors_are_not_kept(tmp_path, server, fault):
    texts = texts_n(12)
    server.default = fault  # zero: each answer's first vector is all zeros
    message = "are all zeros" if fault == "zero" else "are identical"
    with pytest.raises(EndpointError, match=message):
        embed_texts(version(server), texts, "document", tmp_path, progress=False)
    assert sum(s.rows for s in inventory(tmp_path)) == 0  # nothing of that run stays

    server.default = "ok"
    res = embed_texts(version(server), texts, "document", tmp_path, progress=False)
    assert res.n_cached == 0 and len(stored_rows(tmp_path)) == 12
    np.testing.assert_allclose(res.vectors, expected(texts), atol=1e-6)
    assert (np.abs(stored_rows(tmp_path)).sum(axis=1) > 0).all()


class ZeroThenStop(Counting):
    """Batch 2 has an all-zero row; the run is interrupted at batch 3 (before any check)."""

    def _embed_batch(self, texts, role, dimensions):
        if len(self.calls) == 2:
            raise KeyboardInterrupt("stopped")
        out = super()._embed_batch(texts, role, dimensions)
        if len(self.calls) == 2:
            out[1] = 0.0
        return out


def test_an_interrupted_run_stores_its_good_rows_but_no_zero_row(tmp_path):
    texts = texts_n(12)
    with pytest.raises(KeyboardInterrupt):
        embed_texts(ZeroThenStop(batch_size=4), texts, "query", tmp_path, progress=False)
    assert sum(s.rows for s in inventory(tmp_path)) == 7  # 8 finished, the zero row left out
    model = Counting(batch_size=4)
    res = embed_texts(model, texts, "query", tmp_path, progress=False)
    assert [t for c in model.calls for t in c] == [texts[5], *texts[8:]]
    np.testing.assert_allclose(res.vectors, np.stack([toy_vector(t) for t in texts]), atol=1e-6)
