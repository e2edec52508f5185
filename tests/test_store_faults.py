"""The vector store as users have it (issue 16, section 5).

- A broken server left bad vectors in one spec's shards: the error names that spec's folder
  (deleting it re-embeds that version and role only), not the whole store.
- A read-only shared store (an fsspec filesystem that refuses every write, and a local folder on
  a read-only mount) that holds every vector is used as is, with one warning that new vectors
  cannot be stored; one that holds part of them gets the rest computed (and not stored).
"""

from __future__ import annotations

import errno
import logging
import shutil

import numpy as np
import pytest

from evalkit.embed import VectorCache, embed_texts
from evalkit.embed.cache import spec_hash, text_key_array
from evalkit.embed.store import Folder, inventory
from evalkit.errors import EndpointError

from .cli import run_evalkit
from .test_embed_cache import Counting, texts_n, toy_vector

fsspec = pytest.importorskip("fsspec")
from fsspec.implementations.memory import MemoryFileSystem  # noqa: E402


class ReadOnlyMemoryFS(MemoryFileSystem):
    """fsspec's memory filesystem (same contents) through credentials that may only read."""

    protocol = "romemory"

    @classmethod
    def _strip_protocol(cls, path):
        if path.startswith("romemory://"):
            path = "memory://" + path[len("romemory://") :]
        return super()._strip_protocol(path)

    def _refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Access Denied (read-only credentials)")

    makedirs = mkdir = pipe_file = rm_file = rm = mv = cp_file = touch = _refuse

    def _open(self, path, mode="rb", *args, **kwargs):
        if "r" not in mode:
            self._refuse()
        return super()._open(path, mode, *args, **kwargs)


fsspec.register_implementation("romemory", ReadOnlyMemoryFS, clobber=True)


def _read_only_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is read-only" in r.getMessage()]


# ------------------------------------------------------------------ bad vectors in one spec


@pytest.mark.parametrize("via_task", [False, True], ids=["rm", "task=vectors"])
def test_bad_cached_vectors_name_the_spec_folder_not_the_store(tmp_path, via_task):
    store = tmp_path / "store"
    texts = texts_n(12)
    good, broken = Counting("good", batch_size=4), Counting("broken", batch_size=4)
    broken.backend = "broken-server"  # another cache spec, same store
    embed_texts(good, texts, "query", store, progress=False)
    with VectorCache(store, broken.cache_spec("query")) as cache:  # what a broken server left
        cache.put(text_key_array(texts), np.tile(toy_vector("same"), (len(texts), 1)))
    folder = store / spec_hash(broken.cache_spec("query"))[:32]

    with pytest.raises(EndpointError) as caught:
        embed_texts(broken, texts, "query", store, progress=False)
    message = str(caught.value)
    assert "are identical" in message  # (the count is section 1's BLAS grouping fix)
    assert f"12 of them came from the vector store: delete its folder {folder} " in message
    drop = f"evalkit task=vectors vectors.drop={folder.name[:12]}"
    assert "query vectors only" in message and drop in message

    if via_task:  # what the message says: that spec only
        listing = run_evalkit(
            "task=vectors", f"cache.dir={store}", f"vectors.drop={folder.name[:12]}", work=tmp_path
        )
        assert listing.returncode == 0, listing.stderr[-3000:]
        assert f"dropped spec {folder.name} from {store}: 1 shard(s), 12 vectors" in listing.stdout
        assert "1 spec(s), 12 vectors" in listing.stdout  # the good spec is left
    else:
        shutil.rmtree(folder)
    assert not folder.exists()
    assert broken.calls == []
    again = embed_texts(broken, texts, "query", store, progress=False)
    assert again.n_cached == 0 and len(broken.calls) == 3
    untouched = embed_texts(Counting("good", batch_size=4), texts, "query", store, progress=False)
    assert untouched.n_cached == 12 and untouched.n_requests == 0


# ------------------------------------------------------------------ read-only shared store


def test_read_only_bucket_holding_every_vector_is_used_with_one_warning(tmp_path, caplog):
    name = f"evalkit-ro-{tmp_path.name}"
    texts = texts_n(20)
    cold = embed_texts(Counting(batch_size=8), texts, "query", f"memory://{name}", progress=False)
    before = [(s.hash, s.rows) for s in inventory(f"memory://{name}")]

    caplog.set_level(logging.WARNING)
    model = Counting(batch_size=8)
    warm = embed_texts(model, texts, "query", f"romemory://{name}", progress=False)
    assert model.calls == [] and warm.n_cached == 20 and warm.n_requests == 0
    np.testing.assert_array_equal(warm.vectors, cold.vectors)
    (warning,) = _read_only_warnings(caplog)
    assert f"vector store romemory://{name} is read-only" in warning
    assert "new vectors cannot be stored" in warning
    assert [(s.hash, s.rows) for s in inventory(f"memory://{name}")] == before


def test_read_only_bucket_missing_vectors_computes_them_without_storing(tmp_path, caplog):
    name = f"evalkit-ro-{tmp_path.name}"
    texts = texts_n(30)
    embed_texts(Counting(batch_size=8), texts[:10], "query", f"memory://{name}", progress=False)
    caplog.set_level(logging.WARNING)
    model = Counting(batch_size=8)
    res = embed_texts(model, texts, "query", f"romemory://{name}", progress=False)
    other = embed_texts(model, texts_n(5, "new"), "query", f"romemory://{name}", progress=False)
    assert res.n_cached == 10 and [t for c in model.calls[:3] for t in c] == texts[10:]
    assert other.n_cached == 0 and other.n_requests == 1  # computed again, not stored
    np.testing.assert_allclose(res.vectors, np.stack([toy_vector(t) for t in texts]), atol=1e-6)
    assert len(_read_only_warnings(caplog)) == 1  # once per store, not per spec or batch
    assert sum(s.rows for s in inventory(f"memory://{name}")) == 10  # nothing was written


def test_local_store_on_a_read_only_mount_is_read(tmp_path, caplog, monkeypatch):
    store = tmp_path / "shared"
    texts = texts_n(16)
    cold = embed_texts(Counting(batch_size=4), texts[:12], "query", store, progress=False)

    def read_only_mount(self, name, data, fsync=True):
        raise OSError(errno.EROFS, "Read-only file system", str(self.url))

    monkeypatch.setattr(Folder, "write_bytes", read_only_mount)
    caplog.set_level(logging.WARNING)
    model = Counting(batch_size=4)
    res = embed_texts(model, texts, "query", store, progress=False)
    assert res.n_cached == 12 and [t for c in model.calls for t in c] == texts[12:]
    np.testing.assert_array_equal(res.vectors[:12], cold.vectors)
    (warning,) = _read_only_warnings(caplog)
    assert str(store) in warning and "Read-only file system" in warning
    assert sum(s.rows for s in inventory(store)) == 12


def test_a_full_disk_is_still_an_error(tmp_path, monkeypatch):
    def full(self, name, data, fsync=True):
        raise OSError(errno.ENOSPC, "No space left on device")

    embed_texts(Counting(batch_size=4), texts_n(4), "query", tmp_path, progress=False)
    monkeypatch.setattr(Folder, "write_bytes", full)
    with pytest.raises(OSError, match="No space left"):
        embed_texts(Counting(batch_size=4), texts_n(8), "query", tmp_path, progress=False)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [("ab", "is invalid"), ("zzzzzzzz", "is invalid"), ("00000000", "0 spec folders")],
)
def test_drop_names_exactly_one_spec_folder(tmp_path, prefix, message):
    from evalkit.embed.store import drop_spec
    from evalkit.errors import ConfigError

    embed_texts(Counting(batch_size=4), texts_n(4), "query", tmp_path, progress=False)
    with pytest.raises(ConfigError, match=message):
        drop_spec(tmp_path, prefix)
    assert sum(s.rows for s in inventory(tmp_path)) == 4
