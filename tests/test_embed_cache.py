"""The vector cache and embed_texts: warm reruns make zero requests, interrupted runs resume,
concurrent writers and crashes leave a consistent cache."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from evalkit.embed import ModelVersion, UseM3, VectorCache, embed_texts
from evalkit.embed.cache import spec_hash, text_key_array, text_keys
from evalkit.embed.store import inventory

REPO = Path(__file__).resolve().parents[1]
DIM = 6


def toy_vector(text: str, role: str = "query") -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(f"{role}|{text}".encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


class Counting(ModelVersion):
    """Deterministic backend that counts its calls and can fail after ``fail_after`` calls."""

    backend = "counting"

    def __init__(self, name: str = "counting", fail_after: int | None = None, **kw):
        super().__init__(name, **kw)
        self.calls: list[list[str]] = []
        self.fail_after = fail_after

    def _embed_batch(self, texts, role, dimensions):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls.append(list(texts))
        return np.stack([toy_vector(t, role) for t in texts])


def texts_n(n: int, tag: str = "t") -> list[str]:
    return [f"{tag} {i} some words" for i in range(n)]


def test_warm_rerun_makes_zero_requests(tmp_path):
    texts = texts_n(50)
    cold_model = Counting(batch_size=8)
    cold = embed_texts(cold_model, texts, "document", tmp_path, progress=False)
    assert cold.n_requests == 7 == len(cold_model.calls) and cold.n_cached == 0
    expected = np.stack([toy_vector(t, "document") for t in texts])
    np.testing.assert_allclose(cold.vectors, expected, atol=1e-6)

    warm_model = Counting(batch_size=8)
    shuffled = texts[::-1] + texts[:3]
    warm = embed_texts(warm_model, shuffled, "document", tmp_path, progress=False)
    assert warm_model.calls == [] and warm.n_requests == 0 and len(warm.latencies_s) == 0
    assert warm.n_cached == 50 and warm.n_unique == 50 and warm.dim == DIM
    np.testing.assert_array_equal(warm.vectors, cold.vectors[[*range(49, -1, -1), 0, 1, 2]])

    with VectorCache(tmp_path, warm_model.cache_spec("document")) as cache:
        positions, vectors = cache.get(text_keys(shuffled))
        assert cache.stats.hits == 53 and cache.stats.misses == 0 and cache.stats.rows_written == 0
        assert len(cache) == 50


def test_duplicates_are_embedded_once_and_returned_in_input_order(tmp_path):
    model = Counting(batch_size=100)
    texts = ["b", "a", "b", "c", "a", "a"]
    result = embed_texts(model, texts, "query", tmp_path, progress=False)
    assert model.calls == [["b", "a", "c"]] and result.n_unique == 3
    np.testing.assert_allclose(result.vectors, np.stack([toy_vector(t) for t in texts]), atol=1e-6)
    no_cache = embed_texts(Counting(), texts, "query", None, progress=False)
    np.testing.assert_array_equal(no_cache.vectors, result.vectors)


def test_partial_hits_embed_only_the_misses(tmp_path):
    embed_texts(Counting(), texts_n(10), "query", tmp_path, progress=False)
    model = Counting(batch_size=4)
    mixed = texts_n(10)[5:] + texts_n(6, "new")
    result = embed_texts(model, mixed, "query", tmp_path, progress=False)
    assert result.n_cached == 5 and sum(len(c) for c in model.calls) == 6
    np.testing.assert_allclose(result.vectors, np.stack([toy_vector(t) for t in mixed]), atol=1e-6)


def test_interrupted_run_resumes_without_recomputing_finished_batches(tmp_path):
    texts = texts_n(40)
    first = Counting(batch_size=5, fail_after=3)  # batches 1-3 finish, the 4th is interrupted
    with pytest.raises(KeyboardInterrupt):
        embed_texts(first, texts, "query", tmp_path, progress=False)
    assert len(first.calls) == 3

    second = Counting(batch_size=5)
    result = embed_texts(second, texts, "query", tmp_path, progress=False)
    assert result.n_cached == 15 and result.n_requests == 5 == len(second.calls)
    assert [t for call in second.calls for t in call] == texts[15:]
    np.testing.assert_allclose(result.vectors, np.stack([toy_vector(t) for t in texts]), atol=1e-6)


def test_every_vector_changing_option_separates_cache_entries(tmp_path):
    texts = texts_n(4)
    base = embed_texts(Counting(batch_size=2), texts, "query", tmp_path, progress=False)
    for kw in ({"query_prefix": "q: "}, {"chunking": {"size": 2}}, {"revision": "v2"}):
        model = Counting(batch_size=2, **kw)
        result = embed_texts(model, texts, "query", tmp_path, progress=False)
        assert result.n_cached == 0 and len(model.calls) > 0, kw
    # batching and the name do not change vectors: shared
    renamed = Counting("other_name", batch_size=3)
    again = embed_texts(renamed, texts, "query", tmp_path, progress=False)
    assert again.n_cached == 4 and renamed.calls == []
    np.testing.assert_array_equal(again.vectors, base.vectors)
    dirs = {p.name for p in tmp_path.iterdir()}
    assert len(dirs) == 4 and spec_hash(Counting().cache_spec("query"))[:32] in dirs


def test_dimension_sweep_reuses_the_untruncated_vectors(tmp_path):
    texts = texts_n(9)
    full = np.stack([toy_vector(t) for t in texts])
    embed_texts(Counting(batch_size=4), texts, "query", tmp_path, progress=False)
    for dims, normalize in ((2, True), (4, True), (3, False), (None, False)):
        model = Counting(batch_size=4, dimensions=dims, normalize=normalize)
        result = embed_texts(model, texts, "query", tmp_path, progress=False)
        assert model.calls == [] and result.n_cached == 9 and result.dim == (dims or DIM)
        expected = full[:, :dims]
        if normalize:
            expected = expected / np.linalg.norm(expected, axis=1, keepdims=True)
        np.testing.assert_allclose(result.vectors, expected, atol=1e-6)
        np.testing.assert_allclose(result.vectors, model.embed(texts, "query"), atol=1e-6)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1
    # a backend that receives `dimensions` returns different vectors: separate entries
    sent = Counting(dimensions=3)
    sent._sends_dimensions = lambda: True
    assert sent.cache_spec("query") != Counting().cache_spec("query")


def test_crash_leftovers_do_not_corrupt_earlier_entries(tmp_path):
    texts = texts_n(12)
    model = Counting(batch_size=4)
    embed_texts(model, texts[:8], "query", tmp_path, progress=False)
    embed_texts(model, texts[8:], "query", tmp_path, progress=False)
    spec_dir = tmp_path / spec_hash(model.cache_spec("query"))[:32]
    shards = sorted(spec_dir.glob("*.shard.json"))
    assert len(shards) == 2
    # a writer killed before its manifest: unreferenced files are ignored
    (spec_dir / "dead-1-000000.vectors.npy").write_bytes(b"\x00\x01\x02")
    (spec_dir / "dead-1-000000.keys.npy").write_bytes(b"garbage")
    again = embed_texts(Counting(), texts, "query", tmp_path, progress=False)
    assert again.n_cached == 12
    np.testing.assert_allclose(again.vectors, np.stack([toy_vector(t) for t in texts]), atol=1e-6)
    # a shard's vector file damaged behind its manifest's back: its rows are recomputed
    (second,) = [  # the shard of texts[8:] (4 rows)
        m.name.replace(".shard.json", ".vectors.npy")
        for m in shards
        if json.loads(m.read_text())["rows"] == 4
    ]
    with open(spec_dir / second, "r+b") as f:
        f.truncate(100)
    model = Counting()
    healed = embed_texts(model, texts, "query", tmp_path, progress=False)
    assert healed.n_cached == 8 and [t for c in model.calls for t in c] == texts[8:]
    np.testing.assert_array_equal(healed.vectors, again.vectors)


WRITER = textwrap.dedent(
    """
    import hashlib, pathlib, sys, time
    import numpy as np
    from evalkit.embed import ModelVersion, embed_texts

    root = pathlib.Path(sys.argv[1])
    (root / f"ready-{sys.argv[2]}-{sys.argv[3]}").touch()
    while not (root / "go").exists():  # start all writers together
        time.sleep(0.01)

    class Toy(ModelVersion):
        backend = "counting"
        def _embed_batch(self, texts, role, dimensions):
            out = []
            for t in texts:
                seed = int.from_bytes(hashlib.sha256(f"{role}|{t}".encode()).digest()[:8], "little")
                v = np.random.default_rng(seed).normal(size=6)
                out.append(v / np.linalg.norm(v))
            return np.array(out, dtype=np.float32)

    start, stop = int(sys.argv[2]), int(sys.argv[3])
    texts = [f"t {i} some words" for i in range(start, stop)]
    r = embed_texts(Toy("counting", batch_size=7), texts, "query", root / "cache", progress=False)
    print(r.n_requests, r.n_cached)
    """
)


def test_concurrent_writers_share_one_spec_safely(tmp_path):
    ranges = [(0, 300), (150, 450), (100, 400), (0, 450)]  # heavily overlapping
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(a), str(b)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a, b in ranges
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    texts = texts_n(450)
    model = Counting()
    result = embed_texts(model, texts, "query", tmp_path / "cache", progress=False)
    assert model.calls == [] and result.n_cached == 450
    np.testing.assert_allclose(result.vectors, np.stack([toy_vector(t) for t in texts]), atol=1e-6)
    (spec_dir,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    manifests = list(spec_dir.glob("*.shard.json"))
    assert 1 <= len(manifests) <= 4  # at most one (small) shard per writer, none shared
    with VectorCache(tmp_path / "cache", model.cache_spec("query")) as cache:
        assert len(cache) == 450
        # each text stored once: writers claim the texts they embed (issue 26, item 9)
        assert sum(s.rows for s in cache.shards()) == 450


def test_cache_get_put_at_scale_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    n = 100_000
    keys = text_keys([f"doc {i}" for i in range(n)])
    vectors = rng.normal(size=(n, 32)).astype(np.float32)
    with VectorCache(tmp_path, {"backend": "scale"}, fsync=False) as cache:
        for s in range(0, n, 10_000):
            cache.put(keys[s : s + 10_000], vectors[s : s + 10_000])
    probe = rng.permutation(n + 5_000)  # 5,000 unknown keys mixed in
    extra = text_keys([f"unknown {i}" for i in range(5_000)])
    all_keys = keys + extra
    with VectorCache(tmp_path, {"backend": "scale"}) as cache:
        positions, got = cache.get([all_keys[i] for i in probe])
    known = probe < n
    np.testing.assert_array_equal(positions, np.flatnonzero(known))
    np.testing.assert_array_equal(got, vectors[probe[known]])


@pytest.mark.slow
def test_real_model_warm_rerun(tmp_path):
    use = UseM3("use_m3", threads=1, batch_size=16)
    texts = [f"query about topic {i}" for i in range(40)]
    cold = embed_texts(use, texts, "query", tmp_path, progress=False)
    assert cold.n_requests == 3
    warm = embed_texts(UseM3("use_m3", threads=1), texts, "query", tmp_path, progress=False)
    assert warm.n_requests == 0 and warm.n_cached == 40
    np.testing.assert_array_equal(warm.vectors, cold.vectors)
    # the document role of USE has the same spec: shared entries
    assert embed_texts(use, texts, "document", tmp_path, progress=False).n_requests == 0


KILLED_WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    sys.path.insert(0, sys.argv[2])
    from tests.test_embed_cache import Counting, texts_n
    from evalkit.embed import embed_texts

    root = pathlib.Path(sys.argv[1])

    class Stalls(Counting):
        def _embed_batch(self, texts, role, dimensions):
            if len(self.calls) == 27:  # batches 26-27 sit in the shard being filled
                (root / "stalled").touch()
                time.sleep(600)
            return super()._embed_batch(texts, role, dimensions)

    shard_mb = 50 * (4 * 6 + 16) / 2**20  # 50 rows of 6 dims per shard
    embed_texts(Stalls(batch_size=10), texts_n(400), "query", root / "cache", progress=False,
                shard_mb=shard_mb, flush_s=None)
    """
)


def test_killed_writer_resumes_recomputing_only_the_shard_in_flight(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path), str(REPO)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "stalled").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no clean-up of any kind runs
    proc.wait(30)
    texts = texts_n(400)
    model = Counting(batch_size=10)
    spec = model.cache_spec("query")
    with VectorCache(tmp_path / "cache", spec) as cache:
        assert [s.rows for s in cache.shards()] == [50] * 5  # 250 committed rows
    result = embed_texts(model, texts, "query", tmp_path / "cache", progress=False)
    assert result.n_cached == 250
    assert [t for c in model.calls for t in c] == texts[250:]  # only the shard in flight + rest
    np.testing.assert_allclose(result.vectors, np.stack([toy_vector(t) for t in texts]), atol=1e-6)


def test_shards_are_bounded_and_lookup_is_vectorised(tmp_path):
    keys = text_key_array([f"doc {i}" for i in range(1000)])
    vectors = np.random.default_rng(1).normal(size=(1000, 8)).astype(np.float32)
    with VectorCache(tmp_path, {"backend": "bounded"}, shard_mb=100 * (32 + 16) / 2**20) as c:
        for s in range(0, 1000, 30):
            c.put(keys[s : s + 30], vectors[s : s + 30])
    with VectorCache(tmp_path, {"backend": "bounded"}) as c:
        rows = [s.rows for s in c.shards()]
        assert max(rows) <= 100 + 30 and sum(rows) == 1000 and len(rows) >= 8
        pos, got = c.get(keys[::-1])
        np.testing.assert_array_equal(pos, np.arange(1000))
        np.testing.assert_array_equal(got, vectors[::-1])
        assert not c.last_unit_norm  # random rows were not stored normalised


@pytest.mark.parametrize("order", ["in order", "shuffled"])
def test_gathers_of_every_shape_read_the_stored_rows(tmp_path, order):
    """A whole catalog in order (runs read in parallel), a dense subset (whole shards read,
    then taken) and a sparse one (rows taken from the shards' memory maps), in order or not."""
    keys = text_key_array([f"doc {i}" for i in range(2000)])
    vectors = np.random.default_rng(2).normal(size=(2000, 8)).astype(np.float32)
    with VectorCache(tmp_path, {"backend": "shapes"}, shard_mb=400 * (32 + 16) / 2**20) as c:
        for s in range(0, 2000, 100):
            c.put(keys[s : s + 100], vectors[s : s + 100])
    rng = np.random.default_rng(3)
    with VectorCache(tmp_path, {"backend": "shapes"}) as c:
        assert len(c.shards()) >= 4
        for rows in (np.arange(2000), np.flatnonzero(rng.random(2000) < 0.7),
                     np.flatnonzero(rng.random(2000) < 0.05)):  # fmt: skip
            if order == "shuffled":
                rows = rng.permutation(rows)
            pos, got = c.get(keys[rows])
            np.testing.assert_array_equal(pos, np.arange(len(rows)))
            np.testing.assert_array_equal(got, vectors[rows])


def test_a_run_of_stored_keys_is_found_without_the_sorted_table(tmp_path):
    """Keys stored in order in consecutive rows (a warm catalog, or a slice of one) are found
    without sorting the store's keys, at the same rows the sorted lookup gives; anything else
    (a gap, a key out of order, a miss) goes through the sorted table."""
    from evalkit.embed.cache import _KeyIndex

    keys = text_key_array([f"doc {i}" for i in range(1000)])
    vectors = np.random.default_rng(4).normal(size=(1000, 8)).astype(np.float32)
    with VectorCache(tmp_path, {"backend": "runs"}, shard_mb=300 * (32 + 16) / 2**20) as c:
        for s in range(0, 1000, 100):
            c.put(keys[s : s + 100], vectors[s : s + 100])
        c.put(keys[:50], vectors[:50])  # a second writer's copy of the first 50, stored later
    with VectorCache(tmp_path, {"backend": "runs"}) as c:
        assert len(c.shards()) >= 3 and len(c) == 1000
        index = c._key_index()  # noqa: SLF001 - the fast path and the sorted table side by side
        missing = text_key_array(["not stored"])
        for query in (keys, keys[120:870], keys[np.r_[0:10, 11:20]], keys[::-1][:30],
                      np.concatenate([keys[:5], missing])):  # fmt: skip
            fresh = _KeyIndex(index.folder, index.shards, index.keys, index.starts)
            pos, rows = fresh.lookup(query)
            assert (fresh._table is None) == (len(query) in (1000, 750))  # noqa: SLF001
            fresh._table = None  # noqa: SLF001
            hi, lo, table_rows = fresh._sorted()  # noqa: SLF001
            qhi, qlo = query.view("<u8").reshape(-1, 2).T
            at = np.searchsorted(hi, qhi)
            found = (at < len(hi)) & (hi[np.minimum(at, len(hi) - 1)] == qhi)
            np.testing.assert_array_equal(pos, np.flatnonzero(found))
            np.testing.assert_array_equal(rows, table_rows[at[found]])
            got_pos, got = c.get(query)
            np.testing.assert_array_equal(got_pos, pos)
            np.testing.assert_array_equal(got, vectors[rows % 1000])  # global row r: doc r % 1000


def test_fully_cached_in_order_read_is_a_view_and_not_renormalised(tmp_path):
    texts = texts_n(30)
    embed_texts(Counting(batch_size=30), texts, "document", tmp_path, progress=False)
    warm = embed_texts(Counting(), texts, "document", tmp_path, progress=False)
    assert isinstance(warm.vectors.base, np.memmap) or isinstance(warm.vectors, np.memmap)
    assert not warm.vectors.flags.writeable  # the stored rows themselves, no copy made
    np.testing.assert_array_equal(
        warm.vectors, np.stack([toy_vector(t, "document") for t in texts])
    )


def test_store_in_an_fsspec_url(tmp_path):
    pytest.importorskip("fsspec")
    url = f"memory://evalkit-test-{tmp_path.name}"
    texts = texts_n(20)
    cold = embed_texts(Counting(batch_size=8), texts, "query", url, progress=False)
    model = Counting()
    warm = embed_texts(model, texts, "query", url, progress=False)
    assert model.calls == [] and warm.n_cached == 20
    np.testing.assert_array_equal(warm.vectors, cold.vectors)
    (summary,) = inventory(url)
    assert summary.rows == 20 and summary.dims == (DIM,) and summary.spec["backend"] == "counting"


SMALL_SHARD_MB = 10 * (4 * DIM + 16) / 2**20  # a shard every 10 rows


def shard_names(root) -> list[str]:
    return sorted(p.name for p in Path(root).rglob("*.shard.json"))


def test_a_fully_embedded_catalog_is_merged_into_one_shard_and_read_back_without_a_copy(tmp_path):
    texts = texts_n(95)
    cold = embed_texts(Counting(batch_size=8), texts, "document", tmp_path, progress=False,
                       shard_mb=SMALL_SHARD_MB, compact_mb=0)  # fmt: skip
    assert len(shard_names(tmp_path)) == 1  # ten shards written while embedding, then merged
    (summary,) = inventory(tmp_path)
    assert summary.rows == 95
    model = Counting()
    warm = embed_texts(model, texts, "document", tmp_path, progress=False)
    assert model.calls == [] and warm.n_cached == 95
    assert not warm.vectors.flags.writeable  # a view of the merged shard, no copy
    np.testing.assert_array_equal(warm.vectors, cold.vectors)
    part = embed_texts(Counting(), texts[20:70], "document", tmp_path, progress=False)
    assert not part.vectors.flags.writeable  # a slice of the catalog: a view too
    np.testing.assert_array_equal(part.vectors, cold.vectors[20:70])


def test_no_merge_below_the_threshold_or_when_part_was_cached(tmp_path):
    texts = texts_n(60)
    embed_texts(
        Counting(batch_size=8),
        texts[:30],
        "document",
        tmp_path,
        progress=False,
        shard_mb=SMALL_SHARD_MB,
    )  # fmt: skip  (default threshold: 256 MB)
    first = len(shard_names(tmp_path))
    assert first >= 2
    embed_texts(
        Counting(batch_size=8),
        texts,
        "document",
        tmp_path,
        progress=False,
        shard_mb=SMALL_SHARD_MB,
        compact_mb=0,
    )  # fmt: skip  (30 of 60 were cached)
    assert len(shard_names(tmp_path)) >= first + 2
    model = Counting()
    warm = embed_texts(model, texts, "document", tmp_path, progress=False)
    assert model.calls == []
    np.testing.assert_array_equal(
        warm.vectors, np.stack([toy_vector(t, "document") for t in texts])
    )


def four_shards(cache: VectorCache) -> tuple[np.ndarray, np.ndarray]:
    """Keys and vectors of 40 texts, put into ``cache`` as four 10-row shards (flushed)."""
    keys = text_key_array(texts_n(40))
    vectors = np.stack([toy_vector(t) for t in texts_n(40)])
    for s in range(0, 40, 10):
        cache.put(keys[s : s + 10], vectors[s : s + 10])
    cache.flush()
    return keys, vectors


def test_compact_keeps_shards_holding_rows_it_was_not_given(tmp_path):
    with VectorCache(tmp_path, {"backend": "merge"}, shard_mb=SMALL_SHARD_MB) as c:
        keys, vectors = four_shards(c)
        assert not c.compact(keys[:30], vectors[:30])  # the last shard's rows would be lost
        assert len(c.shards()) == 4
        assert c.compact(keys, vectors)
        assert len(c.shards()) == 1
        pos, got = c.get(keys)
        np.testing.assert_array_equal(got, vectors)
    with VectorCache(f"memory://evalkit-merge-{tmp_path.name}", {"backend": "merge"},
                     shard_mb=SMALL_SHARD_MB) as remote:  # fmt: skip
        four_shards(remote)
        assert not remote.compact(keys, vectors)  # remote stores are never rewritten


def test_a_reader_that_listed_the_merged_shards_reads_nothing_wrong(tmp_path):
    """A reader listed the shards just before another process merged them: the deleted shards'
    keys are looked up again and found in the merged shard, never read as wrong vectors, and
    nothing is set aside (their writer removed them: no damage)."""
    with VectorCache(tmp_path, {"backend": "race"}, shard_mb=SMALL_SHARD_MB) as writer:
        keys, vectors = four_shards(writer)
        with VectorCache(tmp_path, {"backend": "race"}) as reader:
            reader._key_index()  # noqa: SLF001 - the reader lists the four shards now
            assert writer.compact(keys, vectors)
            pos, got = reader.get(keys)
            np.testing.assert_array_equal(pos, np.arange(40))
            np.testing.assert_array_equal(got, vectors)
            assert not list(Path(reader.dir).glob("*.damaged"))
        with VectorCache(tmp_path, {"backend": "race"}) as later:
            pos, got = later.get(keys)
            np.testing.assert_array_equal(pos, np.arange(40))
            np.testing.assert_array_equal(got, vectors)


@pytest.mark.parametrize("order", ["in order", "shuffled"])
def test_a_merged_shard_is_read_block_by_block(tmp_path, monkeypatch, order):
    """Rows of a shard larger than BLOCK_MB that are not one run (the re-index's re-embedded
    rows, the retrieved pairs' items) are read through one block-sized buffer: the same rows."""
    import evalkit.embed.cache as cache_mod

    keys = text_key_array([f"doc {i}" for i in range(2000)])
    vectors = np.random.default_rng(5).normal(size=(2000, 8)).astype(np.float32)
    with VectorCache(tmp_path, {"backend": "blocks"}, shard_mb=300 * (32 + 16) / 2**20) as c:
        for s in range(0, 2000, 100):
            c.put(keys[s : s + 100], vectors[s : s + 100])
        assert c.compact(keys, vectors)
    monkeypatch.setattr(cache_mod, "BLOCK_MB", 130 * 32 / 2**20)  # blocks of 130 rows
    rng = np.random.default_rng(6)
    with VectorCache(tmp_path, {"backend": "blocks"}) as c:
        assert len(c.shards()) == 1
        for rows in (np.flatnonzero(rng.random(2000) < 0.7), np.flatnonzero(rng.random(2000) < 0.05),
                     np.r_[0:10, 1990:2000]):  # fmt: skip
            if order == "shuffled":
                rows = rng.permutation(rows)
            pos, got = c.get(keys[rows])
            np.testing.assert_array_equal(pos, np.arange(len(rows)))
            np.testing.assert_array_equal(got, vectors[rows])


def test_a_full_disk_while_merging_keeps_the_shards_and_no_partial_file(tmp_path, monkeypatch):
    import errno

    with VectorCache(tmp_path, {"backend": "full"}, shard_mb=SMALL_SHARD_MB) as c:
        keys, vectors = four_shards(c)

        def full(f, array, allow_pickle=False):
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(np.lib.format, "write_array", full)
        assert not c.compact(keys, vectors)
        monkeypatch.undo()
        assert len(c.shards()) == 4
        assert not [p.name for p in Path(c.dir).iterdir() if p.name.startswith(".")]
        pos, got = c.get(keys)
        np.testing.assert_array_equal(got, vectors)
