"""``engine=local``: embedding and search in this process (the default engine).

:class:`LocalEngine` embeds through the vector cache (or reads a precomputed version's files),
holds the version's catalog matrix once, indexes it in FAISS and replays every query in batches;
the module's other functions are shared with :class:`~evalkit.engine.ray_engine.RayEngine`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from evalkit.embed.embed_pass import vectors_of
from evalkit.embed.model_version import reported_tokens
from evalkit.embed.vector_checks import vector_stats
from evalkit.engine.interface import Embedded, SearchJob
from evalkit.engine.resident import ResidentCatalog, index_of
from evalkit.errors import EndpointError
from evalkit.index.cost import index_cost
from evalkit.index.faiss_index import measure_ann_recall, stored_vectors
from evalkit.pairs import PairRows, Searched, click_pair_similarity, pair_similarity
from evalkit.retrieve.replay import replay

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.data.schema import EvalData
    from evalkit.embed.cache import CacheSettings
    from evalkit.embed.model_version import EmbeddingResult, ModelVersion
    from evalkit.retrieve.ranking import Ranking


def read_embedded(
    version: ModelVersion,
    data: EvalData,
    cache: CacheSettings,
    progress: bool = False,
    queries: EmbeddingResult | None = None,
) -> Embedded:
    """The catalog's and the queries' vectors (queries checked against the catalog's dimension)."""
    docs = catalog_vectors(version, data, cache, progress=progress, check=True)
    if queries is None:
        q = data.queries
        queries = vectors_of(
            version, q.ids, q.texts, "query", cache, progress=progress, expect_dim=docs.raw_dim
        )
    return Embedded(docs, queries)


def catalog_vectors(
    version: ModelVersion,
    data: EvalData,
    cache: CacheSettings,
    rows: np.ndarray | None = None,
    *,
    progress: bool = False,
    check: bool = False,
) -> EmbeddingResult:
    """Catalog vectors (``rows`` of the catalog, or all); ``check``: run the vector checks."""
    ids, texts = data.catalog.ids, data.embedded_texts()
    keys = data.embedded_keys() if cache.enabled and not version.brings_vectors else None
    if rows is not None:
        ids, texts = [ids[i] for i in rows], [texts[i] for i in rows]
        keys = keys[rows] if keys is not None else None
    return vectors_of(
        version, ids, texts, "document", cache, progress=progress, check=check, keys=keys
    )


def embedding_stats(emb: Embedded, seconds: float) -> dict[str, float]:
    """The embedding stage's run statistics (``embed_tokens`` only if every request reported it)."""
    docs, queries, remote = emb.docs, emb.queries, emb.remote
    stats: dict[str, float] = {
        "embed_seconds": seconds,
        "embed_requests": docs.n_requests + queries.n_requests,
        "embed_cached": docs.n_cached + queries.n_cached,
        "embed_retries": docs.n_retries + queries.n_retries,
        "embed_failed_requests": docs.n_failed + queries.n_failed,
    }
    tokens = reported_tokens([docs, queries])  # only where the server reports them
    if remote:  # the requests were made by Ray workers
        stats["embed_requests"] += sum(r.n_requests for r in remote.values())
        stats["embed_cached"] = sum(r.n_cached for r in remote.values())
        stats["embed_retries"] += sum(r.retries for r in remote.values())
        made = [r for r in remote.values() if r.n_requests]
        if made:  # the workers' tokens, when every one of their requests reported them
            worker = [r.reported_tokens for r in made]
            own = tokens if docs.n_requests + queries.n_requests else 0
            known = own is not None and all(t is not None for t in worker)
            tokens = own + sum(worker) if known else None
    if tokens is not None:
        stats["embed_tokens"] = tokens
    stats["dim"] = docs.vectors.shape[1]
    stats.update(vector_stats(docs.vectors, queries.vectors))
    return stats


def checked_dims(version: ModelVersion, docs: np.ndarray, queries: np.ndarray) -> None:
    """One dimension for catalog and queries (never FAISS's ``assert d == self.d``)."""
    if docs.shape[1] != queries.shape[1]:
        raise EndpointError(
            f"model version {version.name!r}: catalog vectors have {docs.shape[1]} "
            f"dimensions, query vectors {queries.shape[1]} (expected one dimension)"
        )


def embed_for_search(
    engine: Any, version: ModelVersion, data: EvalData, job: SearchJob
) -> tuple[np.ndarray, EmbeddingResult, dict[str, Any], dict[str, float]]:
    """``engine.embed`` timed and checked: ``(catalog matrix, queries, remote, stats)``."""
    t0 = time.perf_counter()
    before = job.queries.wall_s if job.queries is not None else 0.0  # embedded earlier
    emb = engine.embed(version, data, job.cache, job.progress, queries=job.queries)
    stats = embedding_stats(emb, time.perf_counter() - t0 + before)
    checked_dims(version, emb.docs.vectors, emb.queries.vectors)
    return emb.docs.vectors, emb.queries, emb.remote, stats


def replay_job(index: Any, queries: np.ndarray, data: EvalData, job: SearchJob) -> Ranking:
    """Every query of ``data`` replayed on ``index`` as ``job`` says."""
    ids = (data.queries.ids, data.catalog.ids)
    return replay(index, queries, *ids, job.k, job.spec.search_batch, job.progress, job.id_rank)


def searched(
    ranking: Ranking,
    queries: EmbeddingResult,
    catalog: np.ndarray,
    rows: PairRows,
    stats: dict[str, float],
    remote: dict[str, Any] | None = None,
    item_pos: Any = None,
) -> Searched:
    """A search's result (``item_pos``: catalog rows -> rows of ``catalog`` holding only some)."""
    stats["ties"] = ranking.ties
    stats["boundary_ties"] = ranking.boundary_ties
    q = queries.vectors
    items = rows.judged_i if item_pos is None else item_pos(rows.judged_i)
    similarity = pair_similarity(q, catalog, rows.judged_q, items, normalize=False)
    clicks = click_pair_similarity(q, catalog, rows, item_pos)
    return Searched(queries, ranking, stats, similarity, clicks, dict(remote or {}))


class LocalEngine:
    """Everything in this process; a no-op context manager."""

    kind = "local"

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    embed = staticmethod(read_embedded)

    def search(self, version: ModelVersion, data: EvalData, job: SearchJob) -> Searched:
        """Index and replay the catalog matrix held once; announce it to ``job.listeners``."""
        catalog, queries, remote, stats = embed_for_search(self, version, data, job)
        spec, q = job.spec, queries.vectors
        t0 = time.perf_counter()
        index = index_of(catalog, spec, progress=job.progress, seed=job.seed)
        stored = stored_vectors(index)  # a flat index's own copy: what later reads use
        catalog = catalog if stored is None else stored
        stats["index_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ranking = replay_job(index, q, data, job)
        stats["search_seconds"] = time.perf_counter() - t0
        # what this index costs: its FAISS size and single-query latency (after the batched search)
        stats.update(index_cost(index, q, job.k, spec.latency_sample, job.seed))
        job.listeners.announce(ResidentCatalog(version.name, int(catalog.shape[1]), q, index))
        out = searched(ranking, queries, catalog, job.rows, stats, remote)
        if not spec.exact:  # named by the configured k
            out.stats[f"ann_recall_at_{job.k}"] = measure_ann_recall(
                catalog, q, ranking.indices, ranking.k, spec.ann_recall_sample, job.seed
            )
        # The catalog matrix is released here, before scoring: a frame kept alive by a reference
        # cycle further down (an exception caught inside a library) must not keep it.
        del catalog, index
        return out
