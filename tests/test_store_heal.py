"""The vector store heals itself (issue 26, items 1, 3 and 11).

- A damaged shard (vectors file truncated, cut by one byte, garbled header; keys file truncated)
  is set aside as ``*.damaged``: the run that meets it re-embeds its rows once, and three reruns
  after it make zero embedding calls (before: every run re-embedded them and added a shard).
  Rows another, good shard holds win: they are not embedded at all.
- A ``kill -9`` at the merge step leaves its temporary file: ``task=vectors`` reports it and
  counts it in the size; a later writer removes it once stale and its process gone.
- ``task=vectors`` tells specs apart by chunking / prefix / dimensions sent, and lists an
  interrupted run's empty spec folder as empty.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import evalkit.embed.store as store_mod
from evalkit.embed import VectorCache, embed_texts
from evalkit.embed.cache import spec_hash, text_key_array
from evalkit.embed.store import inventory, temp_files

from .cli import REPO, run_evalkit
from .test_embed_cache import DIM, Counting, texts_n, toy_vector

N = 82
SHARD_MB = 30 * (4 * DIM + 16) / 2**20  # a shard every 30 rows: 3 shards for 82 texts


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:100])
    elif how == "cut by a byte":
        path.write_bytes(data[:-1])
    elif how == "garbled header":
        path.write_bytes(data[:8] + b"\x7f garbage {'shape': (x" + data[32:])
    else:  # pragma: no cover
        raise ValueError(how)


def cold_store(root: Path) -> tuple[Path, list[Path]]:
    embed_texts(Counting(batch_size=10), texts_n(N), "document", root, progress=False,
                shard_mb=SHARD_MB, compact_mb=None)  # fmt: skip
    folder = root / spec_hash(Counting().cache_spec("document"))[:32]
    manifests = sorted(folder.glob("*.shard.json"))
    assert len(manifests) == 3
    return folder, manifests


@pytest.mark.parametrize(
    ("part", "how"),
    [
        ("vectors", "truncated"),
        ("vectors", "cut by a byte"),
        ("vectors", "garbled header"),
        ("keys", "truncated"),
    ],
)
def test_a_damaged_shard_is_re_embedded_once_then_never_again(tmp_path, caplog, part, how):
    folder, manifests = cold_store(tmp_path)
    victim = manifests[1].name.removesuffix(".shard.json")
    rows = json.loads(manifests[1].read_text())["rows"]
    damage(folder / f"{victim}.{part}.npy", how)

    caplog.set_level(logging.WARNING)
    healer = Counting(batch_size=10)
    healed = embed_texts(healer, texts_n(N), "document", tmp_path, progress=False)
    assert sum(len(c) for c in healer.calls) == rows  # only the damaged shard's rows
    np.testing.assert_allclose(
        healed.vectors, np.stack([toy_vector(t, "document") for t in texts_n(N)]), atol=1e-6
    )
    (warning,) = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert str(folder) in warning and victim in warning
    assert f"evalkit task=vectors vectors.drop={folder.name[:12]}" in warning
    assert (folder / f"{victim}.shard.json.damaged").exists()
    shards_after_heal = len(list(folder.glob("*.shard.json")))
    assert shards_after_heal == 3  # two good ones and the re-embedded rows

    for _ in range(3):  # three reruns: zero embedding calls, the store does not grow
        rerun = Counting(batch_size=10)
        again = embed_texts(rerun, texts_n(N), "document", tmp_path, progress=False)
        assert rerun.calls == [] and again.n_cached == N
        np.testing.assert_array_equal(again.vectors, healed.vectors)
    assert len(list(folder.glob("*.shard.json"))) == shards_after_heal
    (summary,) = inventory(tmp_path)
    assert summary.damaged == (victim,) and summary.rows == N


def test_a_damaged_shard_in_an_fsspec_store_is_set_aside(tmp_path):
    url = f"memory://evalkit-heal-{tmp_path.name}"
    texts = texts_n(N)
    embed_texts(Counting(batch_size=10), texts, "document", url, progress=False,
                shard_mb=SHARD_MB, compact_mb=None)  # fmt: skip
    (summary,) = inventory(url)
    folder = store_mod.Folder(url).child(summary.hash)
    victim = store_mod.list_shards(folder)[0]
    data = folder.read_bytes(victim.vectors_file)
    folder.write_bytes(victim.vectors_file, data[:-1])  # cut by a byte
    healer = Counting(batch_size=10)
    embed_texts(healer, texts, "document", url, progress=False)
    assert sum(len(c) for c in healer.calls) == victim.rows
    rerun = Counting(batch_size=10)
    assert embed_texts(rerun, texts, "document", url, progress=False).n_cached == N
    assert rerun.calls == [] and inventory(url)[0].damaged == (victim.name,)


def test_rows_a_good_shard_also_holds_win_over_the_damaged_one(tmp_path):
    texts = texts_n(40)
    keys = text_key_array(texts)
    vectors = np.stack([toy_vector(t) for t in texts])
    spec = Counting().cache_spec("query")
    with VectorCache(tmp_path, spec) as first:  # the first shard by name...
        first._writer = "a-writer"  # noqa: SLF001 - sorts first
        first.put(keys, vectors)
    with VectorCache(tmp_path, spec) as second:  # ... and a later writer's copy of 20 of them
        second._writer = "b-writer"  # noqa: SLF001
        second.put(keys[10:30], vectors[10:30])
    (damaged,) = Path(first.dir).glob("a-writer-*.vectors.npy")
    damage(damaged, "cut by a byte")
    model = Counting(batch_size=100)
    res = embed_texts(model, texts, "query", tmp_path, progress=False)
    assert model.calls == [texts[:10] + texts[30:]]  # the 20 in the good shard are not embedded
    np.testing.assert_allclose(res.vectors, vectors, atol=1e-6)


def test_task_vectors_lists_damaged_and_empty_specs_and_what_sets_specs_apart(tmp_path):
    store = tmp_path / "cache"
    folder, manifests = cold_store(store)
    damage(folder / manifests[0].name.replace(".shard.json", ".vectors.npy"), "truncated")
    embed_texts(Counting(), texts_n(N), "document", store, progress=False)  # sets it aside
    chunked = Counting(batch_size=10, chunking={"size": 4, "overlap": 1})
    embed_texts(chunked, texts_n(5), "document", store, progress=False)
    prefixed = Counting(batch_size=10, document_prefix="passage: ")
    with pytest.raises(KeyboardInterrupt):  # interrupted before its first batch: empty folder
        embed_texts(Counting(fail_after=0, document_prefix="passage: "), texts_n(5), "document",
                    store, progress=False)  # fmt: skip
    empty = spec_hash(prefixed.cache_spec("document"))[:12]

    listing = run_evalkit("task=vectors", f"cache.dir={store}", work=tmp_path)
    assert listing.returncode == 0, listing.stderr[-3000:]
    lines = listing.stdout.splitlines()
    (damaged_row,) = [x for x in lines if folder.name[:12] in x and x.startswith("-")]
    assert "1 damaged" in damaged_row and f"{N:,}" in damaged_row
    (chunk_row,) = [x for x in lines if "chunks 4/1 mean" in x]
    assert "ok" in chunk_row
    (empty_row,) = [x for x in lines if x.startswith("-") and empty in x]
    assert "prefix 'passage: '" in empty_row and empty_row.rstrip().endswith("empty")
    damaged = manifests[0].name.removesuffix(".shard.json")
    assert any(x.startswith("damaged shards set aside") and f"{folder.name[:12]}: {damaged}" in x
               for x in lines)  # fmt: skip
    assert any(x.startswith("empty spec folder(s)") and empty in x for x in lines)


MERGER = textwrap.dedent(
    """
    import pathlib, sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    from tests.test_embed_cache import texts_n, toy_vector
    from evalkit.embed.cache import VectorCache, text_key_array

    root = pathlib.Path(sys.argv[1])
    write_array = np.lib.format.write_array

    def stalls_at_the_merge(f, array, allow_pickle=False):
        if len(array) == 400:  # the merged shard: write half of it, then hang
            f.write(b"\\x93NUMPY" + bytes(array.nbytes // 2))
            f.flush()
            (root / "merging").touch()
            time.sleep(600)
        return write_array(f, array, allow_pickle=allow_pickle)

    np.lib.format.write_array = stalls_at_the_merge
    texts = texts_n(400)
    keys, vectors = text_key_array(texts), np.stack([toy_vector(t) for t in texts])
    with VectorCache(root / "cache", {"backend": "merge"}, shard_mb=0.01) as cache:
        for s in range(0, 400, 100):
            cache.put(keys[s : s + 100], vectors[s : s + 100])
        cache.flush()
        cache.compact(keys, vectors)
    """
)


def test_a_merge_killed_with_sigkill_leaves_a_temp_file_the_next_writer_removes(
    tmp_path, monkeypatch
):
    proc = subprocess.Popen(
        [sys.executable, "-c", MERGER, str(tmp_path), str(REPO)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "merging").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # no clean-up of any kind runs
    proc.wait(30)
    (folder,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    (left,) = temp_files(store_mod.Folder(folder))
    assert f"~{proc.pid}~" in left.name and left.nbytes > 400 * DIM * 4 // 2
    assert not left.stale  # just written: kept until untouched for TEMP_STALE_S

    listing = run_evalkit("task=vectors", f"cache.dir={tmp_path / 'cache'}",
                          work=tmp_path, out_name="list")  # fmt: skip
    assert listing.returncode == 0, listing.stderr[-3000:]
    (summary,) = inventory(tmp_path / "cache")
    assert summary.temp_files == 1 and summary.temp_bytes == left.nbytes
    assert summary.nbytes == 4 * 100 * (4 * DIM + 16) + left.nbytes  # counted in the size
    assert f"1 temp ({left.nbytes / 1e6:,.1f} MB)" in listing.stdout
    assert f"{summary.nbytes / 1e6:,.1f} MB" in listing.stdout.splitlines()[0]

    mine = folder / store_mod.temp_name("live.vectors.npy")  # a write of this (live) process
    mine.write_bytes(b"x")
    monkeypatch.setattr(store_mod, "TEMP_STALE_S", 0.0)
    with VectorCache(tmp_path / "cache", {"backend": "merge"}):  # a later writer
        pass
    assert not (folder / left.name).exists()  # its process is gone: removed
    assert mine.exists()  # its process lives: kept
    with VectorCache(tmp_path / "cache", {"backend": "merge"}) as reader:
        pos, got = reader.get(text_key_array(texts_n(400)))
    assert len(pos) == 400  # the four shards the merge did not replace are intact
