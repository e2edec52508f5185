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
from dataclasses import dataclass

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
    infinite and all-zero rows are left out (:func:`storable`).  ``keys``: the store keys of the
    distinct texts, by row.
    """

    def __init__(self, cache: VectorCache | None, keys: np.ndarray) -> None:
        self.cache = cache
        self.keys = keys
        self.finished: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.next = 0

    def start(self) -> None:
        """A new round: batches numbered from 0 again (the last round was put already)."""
        self.put_all()
        self.next = 0

    def add(self, i: int, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Batch ``i`` of the round finished: the distinct texts' ``rows`` and their vectors."""
        if self.cache is None:
            return
        self.finished[i] = storable(self.keys[rows], vectors)
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


@dataclass(frozen=True)
class Deduped:
    """The distinct texts of a call in order of first appearance, each input text's row among
    them (``inverse``; None: every text is distinct) and their store keys (``(0, 16)`` when the
    call has no store)."""

    texts: list[str]
    inverse: np.ndarray | None
    keys: np.ndarray


def dedupe(texts: list[str], keys: np.ndarray | None, with_store: bool) -> Deduped:
    """Step 1: the distinct texts.  With a store, their keys (``keys``: every text's, when the
    caller hashed them already); a catalog without repeats is told by its keys, without the
    hash table of :func:`unique_texts`.

    >>> d = dedupe(["b", "a", "b"], None, with_store=True)
    >>> d.texts, d.inverse.tolist(), d.keys.shape
    (['b', 'a'], [0, 1, 0], (2, 16))
    """
    if not with_store or not texts:
        unique, inverse = unique_texts(texts)
        return Deduped(unique, inverse, np.zeros((0, 16), dtype=np.uint8))
    if keys is not None and keys.shape != (len(texts), 16):
        raise ValueError(f"{len(texts)} texts but keys of shape {keys.shape}")
    all_keys = keys if keys is not None else text_key_array(texts)
    if keys_distinct(all_keys):  # the common catalog case: hashed once, no repeats
        return Deduped(texts, None, all_keys)
    unique, inverse = unique_texts(texts)
    return Deduped(unique, inverse, text_key_array(unique))


@dataclass(frozen=True)
class Found:
    """Rows of the distinct texts read from the store (``positions``), their vectors (None:
    none found) and whether every one was stored L2-normalised."""

    positions: np.ndarray
    vectors: np.ndarray | None
    unit: bool = True


class StoreReader:
    """The store reads of one call (step 2, look up): every distinct text's key at first, then
    the rows other jobs stored since (read again only when the store changed)."""

    def __init__(self, cache: VectorCache, keys: np.ndarray) -> None:
        self.cache = cache
        self.keys = keys

    def first(self) -> Found:
        """Every key looked up once."""
        positions, vectors = self.cache.get(self.keys)
        return Found(positions, vectors, self.cache.last_unit_norm)

    def stored_since(self, positions: np.ndarray) -> Found:
        """The rows of ``positions`` another job stored since the last read."""
        if not len(positions) or not self.cache.outdated():
            return Found(positions[:0], None)
        self.cache.refresh()
        got, vectors = self.cache.get(self.keys[positions])
        return Found(positions[got], vectors, self.cache.last_unit_norm)


class _Filling:
    """The distinct texts' matrix as it fills (step 5, assemble): rows read from the store or
    embedded now, which are done, how many came from the store, whether all are unit-norm."""

    def __init__(self, out: _Assembler) -> None:
        self.out = out
        self.filled = np.zeros(out.n, dtype=bool)
        self.n_cached = 0
        self.unit = True  # every vector so far was L2-normalised when stored / returned

    def take_stored(self, found: Found) -> int:
        """Place the rows the store had; how many."""
        if found.vectors is None:
            return 0
        self.unit = self.unit and found.unit
        self.out.place(found.positions, found.vectors, "cached")
        self.filled[found.positions] = True
        self.n_cached += len(found.positions)
        return len(found.positions)

    def take_new(self, positions: np.ndarray, vectors: np.ndarray) -> None:
        """Place a finished batch (a wrong dimension raises here: before it is stored)."""
        self.out.place(positions, vectors, "new")
        self.unit = self.unit and unit_norm(vectors)
        self.filled[positions] = True

    def missing(self, positions: np.ndarray | None = None) -> np.ndarray:
        """The rows (of ``positions``, or all) that have no vector yet."""
        if positions is None:
            return np.flatnonzero(~self.filled)
        return positions[~self.filled[positions]]


def batches_of(todo: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Step 3: the rows to embed, ``batch_size`` at a time.

    >>> [b.tolist() for b in batches_of(np.arange(5), 2)]
    [[0, 1], [2, 3], [4]]
    """
    return [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]


class _Rounds:
    """Step 4, embed: the texts the store lacks, in rounds.  Jobs sharing the store claim the
    texts they embed (:class:`~evalkit.embed.claims.Claims`): a round embeds the texts this job
    claimed, stores them and releases the claim; texts another job claimed are waited for and
    read from the store (what it did not store is claimed again in the next round)."""

    def __init__(
        self,
        version: ModelVersion,
        role: str,
        unique: Deduped,
        fill: _Filling,
        cache: VectorCache | None,
        bar: tqdm,
        rlog: RequestLog,
    ) -> None:
        self.version, self.role, self.unique = version, role, unique
        self.fill, self.cache, self.bar, self.rlog = fill, cache, bar, rlog
        self.reader = StoreReader(cache, unique.keys) if cache is not None else None
        self.store = _InOrder(cache, unique.keys)
        writable = cache is not None and not cache.read_only
        self.claims = Claims(cache.folder) if writable and len(fill.missing()) else None

    def run(self) -> None:
        """Embed (or read what other jobs stored) until every row is filled."""
        todo = self.fill.missing()
        while len(todo):
            if self.claims is None:  # no store, or one this job may only read
                self._embed(self._from_store(todo))
                self.settle()
                return
            mine = self.claims.take(self.unique.keys[todo])
            self._embed(self._from_store(todo[mine]))  # stored by a job that finished since
            self.settle()
            theirs = todo[~mine]
            if not len(theirs):
                return
            self.claims.wait(self.unique.keys[theirs])  # another job embeds them: read them
            todo = self._from_store(theirs)  # what it did not store (it failed): claimed again

    def settle(self) -> None:
        """This round's vectors into the store, then its claim released (waiters read them).
        Also runs when the call stops on an error, before the store closes."""
        try:
            self.store.put_all()
            if self.cache is not None and self.claims is not None:
                self.cache.flush()
        finally:
            if self.claims is not None:
                self.claims.release()

    def _embed(self, todo: np.ndarray) -> None:
        """One round: the rows of ``todo`` in batches, each placed and stored as it finishes."""
        batch_rows = batches_of(todo, self.version.batch_size)
        self.store.start()
        if not batch_rows:
            return

        def on_batch(i: int, vectors: np.ndarray) -> None:
            self.fill.take_new(batch_rows[i], vectors)
            self.store.add(i, batch_rows[i], vectors)
            self.bar.update(len(batch_rows[i]))

        texts = [[self.unique.texts[j] for j in rows] for rows in batch_rows]
        self.version.embed_batches(
            texts, self.role, on_batch=on_batch, request_log=self.rlog, finalize=False
        )

    def _from_store(self, positions: np.ndarray) -> np.ndarray:
        """Place the rows of ``positions`` another job stored meanwhile; those still missing."""
        if self.reader is None:
            return positions
        self.bar.update(self.fill.take_stored(self.reader.stored_since(positions)))
        return self.fill.missing(positions)

    def compact(self, compact_mb: float | None) -> None:
        """A call that embedded every text now, in several shards of at least ``compact_mb`` MB:
        one shard, so the next warm read is a view of one file, no copy."""
        out, cache = self.fill.out, self.cache
        if (
            cache is None
            or compact_mb is None
            or self.fill.n_cached != 0
            or out.matrix is None
            or not self.fill.filled.all()
            or out.matrix.nbytes < compact_mb * 2**20
        ):
            return
        self.store.put_all()
        if cache.compact(self.unique.keys, out.matrix):
            log.info(
                "%s/%s: %d vectors merged into one shard",
                self.version.name,
                self.role,
                len(self.unique.keys),
            )


def post_process(
    version: ModelVersion,
    role: str,
    fill: _Filling,
    unique: Deduped,
    n_texts: int,
    check: bool,
    cache: VectorCache | None,
) -> np.ndarray:
    """Step 6: the input texts' vectors: every row filled and checked (vectors the checks refuse
    are taken back from the store), truncated / normalised as configured, in input order."""
    out = fill.out
    if out.matrix is None:
        return np.zeros((n_texts, version.dimensions or 0), dtype=np.float32)
    if not fill.filled.all():  # a backend skipped a batch without raising: never return garbage
        raise EndpointError(
            f"model version {version.name!r}: {int((~fill.filled).sum())} text(s) got no vector "
            "(expected one vector per text)"
        )
    if check:
        _check_or_take_back(version, role, out.matrix, fill.n_cached, cache)
    vectors = version.finalize(out.matrix, unit_norm=fill.unit, in_place=out.owned)
    return vectors if unique.inverse is None else vectors[unique.inverse]


def _check_or_take_back(
    version: ModelVersion, role: str, matrix: np.ndarray, n_cached: int, cache: VectorCache | None
) -> None:
    """:func:`~evalkit.embed.vector_checks.check_vectors` on the distinct texts' vectors; on
    failure what this call stored is taken back, and stored vectors are named in the error."""
    hint = ""
    if n_cached and cache is not None:
        hint = (
            f" - {n_cached} of them came from the vector store: delete its folder {cache.dir} "
            f"(this version's {ROLE_NAMES.get(role, role)} vectors only: `evalkit "
            f"task=vectors vectors.drop={cache.spec_hash[:12]}`) to embed them again"
        )
    try:
        check_vectors(matrix, version.name, role, version.dimensions, hint)
    except EndpointError:
        if cache is not None and (taken := cache.discard()):
            log.info("%s/%s: %d refused vectors taken back from the store", version.name, role,
                     taken)  # fmt: skip
        raise


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

    The steps: :func:`dedupe`, look up (:class:`StoreReader`), batch (:func:`batches_of`),
    embed (rounds of claimed texts), assemble (each batch placed as it finishes), post-process
    (:func:`post_process`: checks, truncation, normalisation, input order).

    ``progress`` shows a tqdm bar (only on a terminal); ``shard_mb`` bounds the cache's shard
    files (``cache.shard_mb``) and ``flush_s`` the time between shard writes
    (``cache.flush_s``).  Vectors stored L2-normalised are not normalised again, and a fully
    cached call whose rows lie in order in one shard returns a read-only view of it.
    ``n_cached`` in the result counts unique texts found in the cache; ``latencies_s`` has one
    entry per request made now; ``n_tokens`` the tokens the server reported for them (None when
    it reports none, or no request was made).  ``expect_dim``: the dimension the vectors must
    have before truncation (the other role's ``raw_dim``), checked on the first batch.
    ``check`` runs the sanity checks of :mod:`evalkit.embed.vector_checks` on the vectors of the
    unique texts.  ``keys``: the texts' :func:`~evalkit.text_keys.text_key_array` when the
    caller has them already (:meth:`~evalkit.data.schema.EvalData.embedded_keys`), else they
    are hashed here.  ``compact_mb``: a call that embedded every text and stored at least this
    many MB in several shards merges them into one
    (:meth:`~evalkit.embed.cache.VectorCache.compact`), so the next warm read is a view of one
    file (None: never).
    """
    check_role(role)
    texts = check_texts(texts)
    t0 = time.perf_counter()
    unique = dedupe(texts, keys, with_store=cache_dir is not None)
    out = _Assembler(
        len(unique.texts), version.name, cache_dir, role, version.dimensions, expect_dim
    )
    fill = _Filling(out)
    rlog = RequestLog()
    with contextlib.ExitStack() as stack:
        cache = None
        if cache_dir is not None and unique.texts:
            cache = stack.enter_context(
                VectorCache(cache_dir, version.cache_spec(role), shard_mb=shard_mb, flush_s=flush_s)
            )
            found = StoreReader(cache, unique.keys).first()
            out.store_dim = cache.stored_dim
            out.store_drop = f"`evalkit task=vectors vectors.drop={cache.spec_hash[:12]}`"
            fill.take_stored(found)
        bar = stack.enter_context(_progress_bar(version, role, len(fill.missing()), progress))
        rounds = _Rounds(version, role, unique, fill, cache, bar, rlog)
        stack.callback(rounds.settle)  # also when the run stops on an error, before closing
        rounds.run()
        rounds.compact(compact_mb)
    vectors = post_process(version, role, fill, unique, len(texts), check, cache)
    return _result(version, role, vectors, out, fill, unique, rlog, len(texts), t0)


def _progress_bar(version: ModelVersion, role: str, total: int, progress: bool) -> tqdm:
    return tqdm(
        total=total,
        unit="text",
        desc=f"embed {version.name}/{role}",
        disable=None if progress else True,
        leave=False,
    )


def _result(
    version: ModelVersion,
    role: str,
    vectors: np.ndarray,
    out: _Assembler,
    fill: _Filling,
    unique: Deduped,
    rlog: RequestLog,
    n_texts: int,
    t0: float,
) -> EmbeddingResult:
    """The call's :class:`EmbeddingResult` (and its one log line)."""
    wall = time.perf_counter() - t0
    log.info(
        "%s/%s: %d texts, %d unique, %d cached, %d requests (%d retries) in %.2f s",
        version.name,
        role,
        n_texts,
        len(unique.texts),
        fill.n_cached,
        len(rlog.latencies_s),
        rlog.retries,
        wall,
    )
    return EmbeddingResult(
        vectors=vectors,
        latencies_s=np.asarray(rlog.latencies_s, dtype=np.float64),
        n_requests=len(rlog.latencies_s),
        n_cached=fill.n_cached,
        batch_size=version.batch_size,
        concurrency=version.concurrency,
        dim=int(vectors.shape[1]),
        n_retries=rlog.retries,
        n_unique=len(unique.texts),
        wall_s=wall,
        raw_dim=int(out.matrix.shape[1]) if out.matrix is not None else None,
        n_failed=rlog.failed,
        n_tokens=rlog.reported_tokens,
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
