"""``embed_texts``: vectors for many texts, de-duplicated, cached, batched, resumable.

Identical texts are embedded once; texts already in the cache are not embedded again; the rest
go to the model version in batches of ``version.batch_size`` (concurrently for the OpenAI
backend), and each finished batch is written to the cache at once, so an interrupted run
resumes where it stopped and a sweep reuses earlier jobs' vectors.  The cache holds vectors
before evalkit's client-side truncation and normalisation (keyed by ``cache_spec(role)``), so
a sweep over ``dimensions`` embeds each text once.  Jobs that share a store claim the texts they
embed (:mod:`evalkit.embed.claims`): a job missing texts another job is embedding waits for them
and reads them from the store, so a parallel sweep on a cold store embeds each text once.  Only
vectors the run accepts are stored (:func:`storable`; a run whose vectors fail the checks takes
back what it stored).

>>> import tempfile
>>> from evalkit.embed.local_models import UseM3
>>> use = UseM3("use_m3", threads=1)
>>> cache = tempfile.mkdtemp()
>>> cold = embed_texts(use, ["red shoe", "blue hat", "red shoe"], "document", cache, progress=False)
>>> cold.vectors.shape, cold.n_unique, cold.n_requests, cold.n_cached
((3, 512), 2, 1, 0)
>>> warm = embed_texts(use, ["blue hat", "red shoe"], "document", cache, progress=False)
>>> warm.n_requests, warm.n_cached, bool((warm.vectors == cold.vectors[[1, 0]]).all())
(0, 2, True)
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from evalkit.embed.cache import (
    COMPACT_MB,
    FLUSH_S,
    SHARD_MB,
    CacheSettings,
    VectorCache,
    keys_distinct,
    text_key_array,
)
from evalkit.embed.claims import Claims
from evalkit.embed.model_version import (
    EmbeddingResult,
    ModelVersion,
    RequestLog,
    check_role,
    check_texts,
)
from evalkit.embed.store import unit_norm
from evalkit.embed.vector_checks import ROLE_NAMES, bad_rows, check_vectors
from evalkit.errors import EndpointError

log = logging.getLogger(__name__)


class _Assembler:
    """Rows of the unique-text matrix, allocated when the dimension is first known.

    When the cache returns every row in order (a view of one stored shard), that view is the
    matrix: no copy.  ``owned`` says whether the matrix is this object's own (writable) memory.

    The first vectors placed (cached or the first finished batch) are checked against the
    requested ``dimensions`` and the dimension ``expect_dim`` of the other role, so a mismatch
    fails before the rest is embedded.
    """

    def __init__(
        self,
        n: int,
        name: str,
        cache_dir: object,
        role: str = "document",
        requested_dim: int | None = None,
        expect_dim: int | None = None,
    ) -> None:
        self.n = n
        self.name = name
        self.cache_dir = cache_dir
        self.role = role
        self.requested_dim = requested_dim
        self.expect_dim = expect_dim
        self.matrix: np.ndarray | None = None
        self.owned = False
        #: the dimension of what the store already holds for this spec (0: nothing), and the
        #: command that deletes it
        self.store_dim = 0
        self.store_drop = ""

    def _check_first(self, d: int, source: str) -> None:
        role = ROLE_NAMES.get(self.role, self.role)
        if self.store_dim and d != self.store_dim:
            raise EndpointError(
                f"model version {self.name!r}: the {source} {role} vectors have {d} dimensions "
                f"but the vector store holds {self.store_dim}-dimensional ones for this spec in "
                f"{self.cache_dir} (the served model changed behind an unchanged name? set "
                f"models.{self.name}.revision, or delete them: {self.store_drop}) "
                f"(expected {self.store_dim} dimensions)"
            )
        if self.requested_dim is not None and d < self.requested_dim:
            raise EndpointError(
                f"model version {self.name!r}: the first {source} {role} vectors have {d} "
                f"dimensions, fewer than the requested dimensions={self.requested_dim} "
                f"(expected >= {self.requested_dim}; set models.{self.name}.dimensions <= {d})"
            )
        if self.expect_dim is not None and d != self.expect_dim:
            other = "catalog" if self.role == "query" else "query"
            raise EndpointError(
                f"model version {self.name!r}: {role} vectors have {d} dimensions but the "
                f"{other} vectors have {self.expect_dim} (expected one dimension for queries "
                "and catalog: the endpoint serves different models or dimensions per role)"
            )

    def place(self, positions: np.ndarray, vectors: np.ndarray, source: str) -> None:
        if self.matrix is None:
            self._check_first(vectors.shape[1], source)
            if len(positions) == self.n and positions[-1] == self.n - 1:  # all rows, in order
                self.matrix = vectors
                return
            self.matrix = np.empty((self.n, vectors.shape[1]), dtype=np.float32)
            self.owned = True
        elif vectors.shape[1] != self.matrix.shape[1]:
            self._check_first(vectors.shape[1], source)  # the store's dimension: say so
            kept = (
                "" if self.cache_dir is None else f"; the {vectors.shape[1]}-d ones were not stored"
            )
            raise EndpointError(
                f"model version {self.name!r}: {source} vectors have {vectors.shape[1]} "
                f"dimensions but earlier ones have {self.matrix.shape[1]} (the served model "
                f"changed behind an unchanged spec? set models.{self.name}.revision) "
                f"(expected one dimension{kept})"
            )
        self.matrix[positions] = vectors


class _InOrder:
    """Finished batches of one round of embedding, put into the store in batch order.

    Batches may finish out of order (concurrent requests): putting them in batch order keeps the
    texts in order in the shards, so a warm rerun reads them as runs.  Only vectors the run
    accepts are put: a batch of another dimension stops the run before it gets here, NaN,
    infinite and all-zero rows are left out (:func:`storable`).
    """

    def __init__(self, cache: VectorCache | None) -> None:
        self.cache = cache
        self.finished: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.next = 0

    def start(self) -> None:
        """A new round: batches numbered from 0 again (the last round was put already)."""
        self.put_all()
        self.next = 0

    def add(self, i: int, keys: np.ndarray, vectors: np.ndarray) -> None:
        if self.cache is None:
            return
        self.finished[i] = storable(keys, vectors)
        while self.next in self.finished:
            self.cache.put(*self.finished.pop(self.next))
            self.next += 1

    def put_all(self) -> None:
        """Put every finished batch now, in whatever order (the round ended or stopped)."""
        if self.cache is None:
            return
        for j in sorted(self.finished):
            self.cache.put(*self.finished.pop(j))


def storable(keys: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a batch the store may keep: not NaN, infinite or all zeros (the run's checks
    refuse those; a stored one would fail every rerun).

    >>> vectors = np.array([[1, 0], [0, 0], [0, np.nan], [0, 1]], np.float32)
    >>> keys, kept = storable(np.arange(4, dtype=np.uint8).reshape(4, 1), vectors)
    >>> keys.ravel().tolist(), kept.tolist()
    ([0, 3], [[1.0, 0.0], [0.0, 1.0]])
    """
    nonfinite, zero = bad_rows(vectors)
    if not len(nonfinite) and not len(zero):
        return keys, vectors
    keep = np.ones(len(vectors), dtype=bool)
    keep[nonfinite], keep[zero] = False, False
    return keys[keep], vectors[keep]


def unique_texts(texts: list[str]) -> tuple[list[str], np.ndarray | None]:
    """Distinct texts in order of first appearance, and each text's row among them (``None``
    when every text is distinct: the identity).  Hash-table work in C (pandas), not Python.

    >>> unique_texts(["b", "a", "b"])
    (['b', 'a'], array([0, 1, 0]))
    >>> unique_texts(["x", "y"])
    (['x', 'y'], None)
    """
    if not texts:
        return [], None
    codes, uniques = pd.factorize(np.asarray(texts, dtype=object))
    if len(uniques) == len(texts):
        return texts, None
    return list(uniques), codes.astype(np.int64)


def embed_texts(
    version: ModelVersion,
    texts: Sequence[str],
    role: str,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    expect_dim: int | None = None,
    check: bool = True,
    shard_mb: float = SHARD_MB,
    flush_s: float | None = FLUSH_S,
    keys: np.ndarray | None = None,
    compact_mb: float | None = COMPACT_MB,
) -> EmbeddingResult:
    """Vectors for ``texts`` (input order) from ``version`` in ``role``, via the cache if given.

    ``progress`` shows a tqdm bar (only on a terminal); ``shard_mb`` bounds the cache's shard
    files (``cache.shard_mb``) and ``flush_s`` the time between shard writes (``cache.flush_s``).  Vectors stored L2-normalised are not normalised again, and a
    fully cached call whose rows lie in order in one shard returns a read-only view of it.  ``n_cached`` in the result counts
    unique texts found in the cache; ``latencies_s`` has one entry per request made now.
    ``expect_dim``: the dimension the vectors must have before truncation (the other role's
    ``raw_dim``), checked on the first batch.  ``check`` runs the sanity checks of
    :mod:`evalkit.embed.vector_checks` on the vectors of the unique texts.  ``keys``: the texts'
    :func:`~evalkit.text_keys.text_key_array` when the caller has them already
    (:meth:`~evalkit.data.schema.EvalData.embedded_keys`), else they are hashed here.
    ``compact_mb``: a call that embedded every text and stored at least this many MB in several
    shards merges them into one (:meth:`~evalkit.embed.cache.VectorCache.compact`), so the next
    warm read is a view of one file (None: never).
    """
    check_role(role)
    texts = check_texts(texts)
    t0 = time.perf_counter()
    all_keys = None
    if cache_dir is not None and texts:
        if keys is not None and keys.shape != (len(texts), 16):
            raise ValueError(f"{len(texts)} texts but keys of shape {keys.shape}")
        # hashed once; the common catalog case has no repeats
        all_keys = keys if keys is not None else text_key_array(texts)
        unique, inverse = (texts, None) if keys_distinct(all_keys) else unique_texts(texts)
    else:
        unique, inverse = unique_texts(texts)
    out = _Assembler(len(unique), version.name, cache_dir, role, version.dimensions, expect_dim)
    filled = np.zeros(len(unique), dtype=bool)
    rlog = RequestLog()
    n_cached = 0
    unit = True  # every vector so far was L2-normalised when it was stored / returned

    spec_dir = spec_name = None  # the store folder of this version and role (a bad cache's)
    with contextlib.ExitStack() as stack:
        cache = None
        keys = np.zeros((0, 16), dtype=np.uint8)
        if cache_dir is not None and unique:
            cache = stack.enter_context(
                VectorCache(cache_dir, version.cache_spec(role), shard_mb=shard_mb, flush_s=flush_s)
            )
            spec_dir, spec_name = cache.dir, cache.spec_hash[:12]
            keys = all_keys if inverse is None else text_key_array(unique)
            hit_pos, hit_vectors = cache.get(keys)
            out.store_dim = cache.stored_dim
            out.store_drop = f"`evalkit task=vectors vectors.drop={spec_name}`"
            if hit_vectors is not None:
                unit = cache.last_unit_norm
                out.place(hit_pos, hit_vectors, "cached")
                filled[hit_pos] = True
                n_cached = len(hit_pos)
        missing = np.flatnonzero(~filled)
        bar = stack.enter_context(
            tqdm(
                total=len(missing),
                unit="text",
                desc=f"embed {version.name}/{role}",
                disable=None if progress else True,
                leave=False,
            )
        )
        putter = _InOrder(cache)
        # jobs sharing the store claim the texts they embed: each text is embedded once
        claims = (
            Claims(cache.folder)
            if cache is not None and not cache.read_only and len(missing)
            else None
        )

        def settle() -> None:
            """This round's vectors into the store, then its claim released (waiters read them)."""
            try:
                putter.put_all()
                if cache is not None and claims is not None:
                    cache.flush()
            finally:
                if claims is not None:
                    claims.release()

        stack.callback(settle)  # also when the run stops on an error, before the cache closes

        def embed(todo: np.ndarray) -> None:
            bs = version.batch_size
            batch_pos = [todo[i : i + bs] for i in range(0, len(todo), bs)]
            putter.start()

            def on_batch(i: int, vectors: np.ndarray) -> None:
                nonlocal unit
                pos = batch_pos[i]
                out.place(pos, vectors, "new")  # raises on a wrong dimension: not stored
                putter.add(i, keys[pos] if cache is not None else keys, vectors)
                unit = unit and unit_norm(vectors)
                filled[pos] = True
                bar.update(len(pos))

            if batch_pos:
                batches = [[unique[j] for j in pos] for pos in batch_pos]
                version.embed_batches(
                    batches, role, on_batch=on_batch, request_log=rlog, finalize=False
                )

        def from_store(positions: np.ndarray) -> np.ndarray:
            """Place the rows of ``positions`` another job stored meanwhile; those still missing."""
            nonlocal unit, n_cached
            if cache is None or not len(positions) or not cache.outdated():
                return positions
            cache.refresh()
            got_pos, got = cache.get(keys[positions])
            if got is not None:
                unit = unit and cache.last_unit_norm
                out.place(positions[got_pos], got, "cached")
                filled[positions[got_pos]] = True
                n_cached += len(got_pos)
                bar.update(len(got_pos))
            return positions[~filled[positions]]

        todo = missing
        while len(todo):
            mine = claims.take(keys[todo]) if claims is not None else np.ones(len(todo), bool)
            embed(from_store(todo[mine]))  # stored by a job that finished since we looked: read
            settle()
            theirs = todo[~mine]
            if not len(theirs) or claims is None:
                break
            claims.wait(keys[theirs])  # another job embeds them: read them from the store
            todo = from_store(theirs)  # what it did not store (it failed): claimed again
        if (
            cache is not None
            and compact_mb is not None
            and n_cached == 0
            and out.matrix is not None
            and filled.all()
            and out.matrix.nbytes >= compact_mb * 2**20
        ):  # every text embedded now, in several shards: one file, read back without a copy
            putter.put_all()
            if cache.compact(keys, out.matrix):
                log.info("%s/%s: %d vectors merged into one shard", version.name, role, len(keys))

    if out.matrix is None:
        dim = version.dimensions or 0
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
    else:
        if not filled.all():  # a backend skipped a batch without raising: never return garbage
            raise EndpointError(
                f"model version {version.name!r}: {int((~filled).sum())} text(s) got no vector "
                "(expected one vector per text)"
            )
        if check:
            hint = (
                f" - {n_cached} of them came from the vector store: delete its folder {spec_dir} "
                f"(this version's {ROLE_NAMES.get(role, role)} vectors only: `evalkit "
                f"task=vectors vectors.drop={spec_name}`) to embed them again"
                if n_cached and spec_dir is not None
                else ""
            )
            try:
                check_vectors(out.matrix, version.name, role, version.dimensions, hint)
            except EndpointError:
                if cache is not None and (taken := cache.discard()):
                    log.info("%s/%s: %d refused vectors taken back from the store", version.name,
                             role, taken)  # fmt: skip
                raise
        vectors = version.finalize(out.matrix, unit_norm=unit, in_place=out.owned)
        if inverse is not None:
            vectors = vectors[inverse]
    wall = time.perf_counter() - t0
    log.info(
        "%s/%s: %d texts, %d unique, %d cached, %d requests (%d retries) in %.2f s",
        version.name,
        role,
        len(texts),
        len(unique),
        n_cached,
        len(rlog.latencies_s),
        rlog.retries,
        wall,
    )
    return EmbeddingResult(
        vectors=vectors,
        latencies_s=np.asarray(rlog.latencies_s, dtype=np.float64),
        n_requests=len(rlog.latencies_s),
        n_cached=n_cached,
        batch_size=version.batch_size,
        concurrency=version.concurrency,
        dim=int(vectors.shape[1]),
        n_retries=rlog.retries,
        n_unique=len(unique),
        wall_s=wall,
        raw_dim=int(out.matrix.shape[1]) if out.matrix is not None else None,
        n_failed=rlog.failed,
    )


def vectors_of(
    version: ModelVersion,
    ids: Sequence[str],
    texts: Sequence[str],
    role: str,
    cache: CacheSettings,
    *,
    progress: bool = False,
    check: bool = True,
    expect_dim: int | None = None,
    keys: np.ndarray | None = None,
) -> EmbeddingResult:
    """``version``'s vectors of the rows ``ids`` / ``texts``: read by id from the files of a
    version that ``brings_vectors``, else embedded through the cache (:func:`embed_texts`; warm:
    no request).  ``check`` / ``expect_dim`` as in :func:`embed_texts`."""
    if version.brings_vectors:
        return version.vectors_for(list(ids), role)
    return embed_texts(
        version,
        texts,
        role,
        cache_dir=cache.root,
        progress=progress,
        expect_dim=expect_dim,
        check=check,
        shard_mb=cache.shard_mb,
        flush_s=cache.flush_s,
        keys=keys,
    )
