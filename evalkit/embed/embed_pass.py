"""``embed_texts``: vectors for many texts, de-duplicated, cached, batched, resumable.

Identical texts are embedded once and stored ones not again; each batch is stored as it finishes,
before client-side truncation and normalisation (a ``dimensions`` sweep embeds each text once).

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
from evalkit.embed.model_version import (
    EmbeddingResult,
    ModelVersion,
    RequestLog,
    check_role,
    check_texts,
)
from evalkit.embed.store import Claims, unit_norm
from evalkit.embed.vector_checks import ROLE_NAMES, bad_rows, check_vectors
from evalkit.errors import EndpointError

log = logging.getLogger(__name__)


class _Assembler:
    """The distinct texts' matrix as it fills (step 5): allocated when the dimension is first
    known (or the store's view of every row in order: not ``owned``), which rows are done, how
    many came from the store, whether all are unit-norm.  The first vectors placed are checked
    against the store's, the requested and the other role's dimension, before the rest is embedded.
    """

    def __init__(
        self, n: int, version: ModelVersion, cache_dir: object, role: str, expect_dim: int | None
    ) -> None:
        self.n, self.name, self.cache_dir, self.role = n, version.name, cache_dir, role
        self.requested_dim, self.expect_dim = version.dimensions, expect_dim
        self.matrix: np.ndarray | None = None
        self.owned = False
        self.filled = np.zeros(n, dtype=bool)
        self.n_cached = 0
        self.unit = True  # every vector so far was L2-normalised when stored / returned
        self.store_dim = 0  # the dimension the store holds for this spec (0: nothing)...
        self.store_drop = ""  # ... and the command that deletes it

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

    def take_stored(self, positions: np.ndarray, vectors: np.ndarray | None, unit: bool) -> int:
        """Place the rows the store had (``vectors`` None: none); how many."""
        if vectors is None:
            return 0
        self.unit = self.unit and unit
        self.place(positions, vectors, "cached")
        self.filled[positions] = True
        self.n_cached += len(positions)
        return len(positions)

    def take_new(self, positions: np.ndarray, vectors: np.ndarray) -> None:
        """Place a finished batch (a wrong dimension raises here: before it is stored)."""
        self.place(positions, vectors, "new")
        self.unit = self.unit and unit_norm(vectors)
        self.filled[positions] = True

    def missing(self, positions: np.ndarray | None = None) -> np.ndarray:
        """The rows (of ``positions``, or all) that have no vector yet."""
        if positions is None:
            return np.flatnonzero(~self.filled)
        return positions[~self.filled[positions]]


def storable(keys: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a batch the store may keep: not NaN, infinite or all zeros (the run's checks
    refuse those; a stored one would fail every rerun)."""
    nonfinite, zero = bad_rows(vectors)
    if not len(nonfinite) and not len(zero):
        return keys, vectors
    keep = np.ones(len(vectors), dtype=bool)
    keep[nonfinite], keep[zero] = False, False
    return keys[keep], vectors[keep]


def unique_texts(texts: list[str]) -> tuple[list[str], np.ndarray | None]:
    """Distinct texts in order, and each text's row among them (``None``: all are distinct)."""
    if not texts:
        return [], None
    codes, uniques = pd.factorize(np.asarray(texts, dtype=object))
    if len(uniques) == len(texts):
        return texts, None
    return list(uniques), codes.astype(np.int64)


@dataclass(frozen=True)
class Deduped:
    """The distinct texts of a call (:func:`unique_texts`) and their store keys."""

    texts: list[str]
    inverse: np.ndarray | None
    keys: np.ndarray


def dedupe(texts: list[str], keys: np.ndarray | None, with_store: bool) -> Deduped:
    """Step 1: the distinct texts and, with a store, their keys (``keys``: every text's, when the
    caller hashed them); a catalog without repeats is told by its keys, without a hash table."""
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


class _Pass:
    """Steps 4 to 6 of one call.  Step 4, embed: the texts the store lacks, in rounds: a round
    embeds, stores and releases the texts this job claimed (:class:`~evalkit.embed.store.Claims`),
    then waits for the texts other jobs claimed and reads them (what they did not store is claimed
    in the next round)."""

    def __init__(
        self,
        version: ModelVersion,
        role: str,
        unique: Deduped,
        fill: _Assembler,
        cache: VectorCache | None,
        bar: tqdm,
    ) -> None:
        self.version, self.role, self.unique = version, role, unique
        self.fill, self.cache, self.bar, self.rlog = fill, cache, bar, RequestLog()
        self.finished: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # batches not yet stored
        self.next = 0
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
        """This round's vectors into the store, then its claim released (also on an error)."""
        try:
            self.put_all()
            if self.cache is not None and self.claims is not None:
                self.cache.flush()
        finally:
            if self.claims is not None:
                self.claims.release()

    def _embed(self, todo: np.ndarray) -> None:
        """One round: the rows of ``todo`` in batches, each placed and stored as it finishes."""
        size = self.version.batch_size
        batch_rows = [todo[i : i + size] for i in range(0, len(todo), size)]
        self.put_all()
        self.next = 0  # a new round: batches numbered from 0 again
        if not batch_rows:
            return

        def on_batch(i: int, vectors: np.ndarray) -> None:
            self.fill.take_new(batch_rows[i], vectors)
            if self.cache is not None:  # stored in batch order: a warm rerun reads runs
                self.finished[i] = storable(self.unique.keys[batch_rows[i]], vectors)
                while self.next in self.finished:
                    self.cache.put(*self.finished.pop(self.next))
                    self.next += 1
            self.bar.update(len(batch_rows[i]))

        texts = [[self.unique.texts[j] for j in rows] for rows in batch_rows]
        self.version.embed_batches(
            texts, self.role, on_batch=on_batch, request_log=self.rlog, finalize=False
        )

    def put_all(self) -> None:
        """Store every finished batch now (the round ended or stopped)."""
        if self.cache is not None:
            for j in sorted(self.finished):
                self.cache.put(*self.finished.pop(j))

    def _from_store(self, positions: np.ndarray) -> np.ndarray:
        """Place the rows of ``positions`` another job stored meanwhile (read again only when the
        store changed); those still missing."""
        cache = self.cache
        if cache is not None and len(positions) and cache.outdated():
            cache.refresh()
            got, vectors = cache.get(self.unique.keys[positions])
            self.bar.update(self.fill.take_stored(positions[got], vectors, cache.last_unit_norm))
        return self.fill.missing(positions)

    def compact(self, compact_mb: float | None) -> None:
        """Merge the shards of a call that embedded every text now, at least ``compact_mb`` MB."""
        fill, cache = self.fill, self.cache
        if (
            cache is None
            or compact_mb is None
            or fill.n_cached != 0
            or fill.matrix is None
            or not fill.filled.all()
            or fill.matrix.nbytes < compact_mb * 2**20
        ):
            return
        self.put_all()
        if cache.compact(self.unique.keys, fill.matrix):
            log.info(
                "%s/%s: %d vectors merged into one shard",
                self.version.name,
                self.role,
                len(self.unique.keys),
            )

    def post_process(self, n_texts: int, check: bool) -> np.ndarray:
        """Step 6: the input texts' vectors, checked, truncated / normalised, in input order."""
        version, fill = self.version, self.fill
        if fill.matrix is None:
            return np.zeros((n_texts, version.dimensions or 0), dtype=np.float32)
        if not fill.filled.all():  # a backend skipped a batch without raising: never return garbage
            raise EndpointError(
                f"model version {version.name!r}: {int((~fill.filled).sum())} text(s) got no "
                "vector (expected one vector per text)"
            )
        if check:
            self._check_or_take_back(fill.matrix)
        vectors = version.finalize(fill.matrix, unit_norm=fill.unit, in_place=fill.owned)
        return vectors if self.unique.inverse is None else vectors[self.unique.inverse]

    def _check_or_take_back(self, matrix: np.ndarray) -> None:
        """:func:`~.vector_checks.check_vectors`; on failure what this call stored is taken back."""
        version, role, cache, n_cached = self.version, self.role, self.cache, self.fill.n_cached
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

    def result(self, vectors: np.ndarray, n_texts: int, t0: float) -> EmbeddingResult:
        """The call's :class:`EmbeddingResult` (and its one log line)."""
        version, rlog = self.version, self.rlog
        n_cached, n_unique = self.fill.n_cached, len(self.unique.texts)
        wall = time.perf_counter() - t0
        log.info(
            "%s/%s: %d texts, %d unique, %d cached, %d requests (%d retries) in %.2f s",
            version.name,
            self.role,
            n_texts,
            n_unique,
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
            n_unique=n_unique,
            wall_s=wall,
            raw_dim=int(self.fill.matrix.shape[1]) if self.fill.matrix is not None else None,
            n_failed=rlog.failed,
            n_tokens=rlog.reported_tokens,
        )


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
    """Vectors for ``texts`` (input order) from ``version`` in ``role``, via the cache if given:
    :func:`dedupe`, look up, batch, embed, assemble, post-process (:class:`_Pass`).  ``expect_dim``: the
    other role's ``raw_dim``; ``check``: :mod:`evalkit.embed.vector_checks`; ``keys``: the texts'
    :func:`~evalkit.text_keys.text_key_array` if known; ``compact_mb``: :meth:`_Pass.compact`."""
    check_role(role)
    texts = check_texts(texts)
    t0 = time.perf_counter()
    unique = dedupe(texts, keys, with_store=cache_dir is not None)
    fill = _Assembler(len(unique.texts), version, cache_dir, role, expect_dim)
    with contextlib.ExitStack() as stack:
        cache = None
        if cache_dir is not None and unique.texts:
            cache = stack.enter_context(
                VectorCache(cache_dir, version.cache_spec(role), shard_mb=shard_mb, flush_s=flush_s)
            )
            positions, vectors = cache.get(unique.keys)
            fill.store_dim = cache.stored_dim
            fill.store_drop = f"`evalkit task=vectors vectors.drop={cache.spec_hash[:12]}`"
            fill.take_stored(positions, vectors, cache.last_unit_norm)
        bar = stack.enter_context(
            tqdm(
                total=len(fill.missing()),
                unit="text",
                desc=f"embed {version.name}/{role}",
                disable=None if progress else True,
                leave=False,
            )
        )
        steps = _Pass(version, role, unique, fill, cache, bar)
        stack.callback(steps.settle)  # also when the run stops on an error, before closing
        steps.run()
        steps.compact(compact_mb)
    return steps.result(steps.post_process(len(texts), check), len(texts), t0)


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
    """``version``'s vectors of ``ids`` / ``texts``: read by id or :func:`embed_texts`."""
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
