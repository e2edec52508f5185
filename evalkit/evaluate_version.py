"""One model version on one dataset: embed -> index -> replay -> score.

:func:`evaluate_version` is the per-version half of :mod:`evalkit.pipeline`; it returns plain data
(:class:`~evalkit.results.VersionResult`) and run statistics, and knows nothing of MLflow.

>>> judged_pairs({"q1": {"d2": 1, "d1": 0}}, ["q1"], ["d1", "d2"])
([('q1', 'd1'), ('q1', 'd2')], array([0, 0]), array([0, 1]))
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from evalkit.clicks.correlation import pair_similarity
from evalkit.clicks.stage import pair_rows
from evalkit.data.schema import EvalData
from evalkit.embed import embed_texts
from evalkit.embed.cache import FLUSH_S, SHARD_MB
from evalkit.embed.chunking import input_limit_tokens, long_text_warning
from evalkit.embed.vector_checks import vector_stats
from evalkit.errors import EndpointError
from evalkit.index.faiss_index import (
    ArrayFlatIP,
    IndexSpec,
    build_index,
    measure_ann_recall,
    stored_vectors,
)
from evalkit.metrics.ir import missing_relevant, score
from evalkit.results import VersionResult
from evalkit.retrieve.replay import replay

log = logging.getLogger(__name__)


def judged_pairs(
    qrels: dict[str, dict[str, int]], query_ids: list[str], item_ids: list[str]
) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Every judged (query, item) pair, sorted, with their query and catalog row numbers.

    Pairs whose query or item is not in the tables (e.g. a judged item skipped as invalid) are
    left out.  Vectorised lookups: one pass over the judgments, no per-pair dict probing.
    """
    q = pd.Index(np.asarray(query_ids, dtype=object))
    d = pd.Index(np.asarray(item_ids, dtype=object))
    pq = np.fromiter((qid for qid, items in qrels.items() for _ in items), dtype=object)
    pd_ = np.fromiter((i for items in qrels.values() for i in items), dtype=object)
    qr, ir = q.get_indexer(pq), d.get_indexer(pd_)
    keep = (qr >= 0) & (ir >= 0)
    pq, pd_, qr, ir = pq[keep], pd_[keep], qr[keep], ir[keep]
    order = np.lexsort((pd_, pq)) if len(pq) else np.zeros(0, dtype=np.int64)
    pairs = list(zip(pq[order].tolist(), pd_[order].tolist()))
    return pairs, qr[order].astype(np.int64), ir[order].astype(np.int64)


@dataclass(frozen=True)
class PairRows:
    """Row numbers of the judged and the logged (query, item) pairs: the same for every version,
    so the pipeline computes them once (:func:`pair_rows_of`)."""

    judged: list[tuple[str, str]]
    judged_q: np.ndarray
    judged_i: np.ndarray
    click_q: np.ndarray | None = None
    click_i: np.ndarray | None = None
    #: (relevant judgments, distinct items) judged but not in the catalog: :func:`missing_relevant`
    missing: tuple[int, int] = (0, 0)


def pair_rows_of(data: EvalData) -> PairRows:
    qrels = data.judgments.qrels if data.judgments is not None else {}
    judged, qr, ir = judged_pairs(qrels, data.queries.ids, data.catalog.ids)
    cq = ci = None
    if data.clicks is not None:
        cq, ci = pair_rows(data.clicks, data.queries.ids, data.catalog.ids)
    missing = missing_relevant(qrels, data.queries.ids, data.catalog.ids)
    return PairRows(judged, qr, ir, cq, ci, missing)


def embed_queries(
    version: Any, data: EvalData, cfg: DictConfig, expect_dim: int | None = None
) -> Any:
    """The queries' :class:`~evalkit.embed.EmbeddingResult` for one version (through the cache,
    or a ``precomputed`` version's files); ``expect_dim``: the catalog's raw dimension, when
    known (a server answering queries in another dimension fails early)."""
    if hasattr(version, "vectors_for"):
        return version.vectors_for(data.queries.ids, "query")
    return embed_texts(
        version,
        data.queries.texts,
        "query",
        cache_dir=str(cfg.cache.dir) if cfg.cache.enabled else None,
        progress=cfg.progress,
        shard_mb=float(cfg.cache.get("shard_mb", SHARD_MB)),
        flush_s=cfg.cache.get("flush_s", FLUSH_S),
        expect_dim=expect_dim,
    )


def embed_version(
    version: Any, data: EvalData, cfg: DictConfig, engine: Any = None, queries: Any = None
) -> tuple[Any, Any, dict[str, Any]]:
    """The catalog's and the queries' :class:`~evalkit.embed.EmbeddingResult` for one version:
    embedded through the cache (first on Ray workers with ``engine=ray``, then read back), or read
    from the files of a ``precomputed`` version.  The third value holds the Ray workers' results
    per role (empty without an engine).  ``queries``: the queries' result when already embedded
    (:func:`embed_queries`, the re-index pass embeds the candidates' first); used as is."""
    if hasattr(version, "vectors_for"):  # precomputed: vectors the team brings, by id
        return (
            version.vectors_for(data.catalog.ids, "document"),
            queries if queries is not None else version.vectors_for(data.queries.ids, "query"),
            {},
        )
    cache_dir = str(cfg.cache.dir) if cfg.cache.enabled else None
    shard_mb = float(cfg.cache.get("shard_mb", SHARD_MB))
    flush_s = cfg.cache.get("flush_s", FLUSH_S)
    remote: dict[str, Any] = {}
    if engine is not None:
        cache_dir = engine.cache_dir(cache_dir)
        texts = {"document": data.embedded_texts(), "query": data.queries.texts}
        remote = engine.embed(version, texts, cache_dir, cfg.progress)
    docs = embed_texts(
        version,
        data.embedded_texts(),
        "document",
        cache_dir=cache_dir,
        progress=cfg.progress,
        shard_mb=shard_mb,
        flush_s=flush_s,
    )
    if queries is None:
        queries = embed_texts(
            version,
            data.queries.texts,
            "query",
            cache_dir=cache_dir,
            progress=cfg.progress,
            shard_mb=shard_mb,
            flush_s=flush_s,
            expect_dim=docs.raw_dim,  # a server answering queries in another dimension fails early
        )
    return docs, queries, remote


@dataclass
class Searched:
    """One version's catalog searched: what scoring and the result need of it."""

    queries: Any  # the queries' EmbeddingResult
    ranking: Any
    stats: dict[str, float]
    similarity: np.ndarray
    click_similarity: np.ndarray | None
    remote: dict[str, Any]


def warn_long_texts(version: Any, data: EvalData) -> str | None:
    """Warn (once per version and evaluation) about texts far over the model's input limit,
    naming the longest catalog and query rows and the chunking option that bounds them
    (:func:`~evalkit.embed.chunking.long_text_warning`).  Returns the warning, or None."""
    if hasattr(version, "vectors_for"):  # precomputed: nothing is embedded
        return None
    message = long_text_warning(
        version.name,
        version.chunking,
        input_limit_tokens(version),
        [
            ("catalog", data.catalog.ids, data.embedded_texts()),
            ("query", data.queries.ids, data.queries.texts),
        ],
    )
    if message:
        log.warning("%s", message)
    return message


def evaluate_version(
    version: Any,
    data: EvalData,
    cfg: DictConfig,
    spec: IndexSpec,
    metrics: list[str],
    id_rank: np.ndarray,
    rows: PairRows | None = None,
    engine: Any = None,
    reindex: Any = None,
    queries: Any = None,
) -> tuple[VersionResult, dict[str, float]]:
    """Embed, index, replay and score one model version. Returns its result and run statistics.

    ``id_rank`` (:func:`~evalkit.retrieve.replay.id_ranks`) and ``rows`` (:func:`pair_rows_of`)
    depend only on the data: compute them once for all versions.  ``engine`` (``engine=ray``,
    :class:`~evalkit.engine.ray_engine.RayEngine`) embeds into the cache on Ray and searches the
    sharded catalog on Ray; the driver reads the vectors back through the cache and scores.  A
    precomputed Parquet catalog is never read by the driver with ``engine=ray``: Ray tasks read,
    check and index its parts (:mod:`evalkit.engine.ray_catalog`).
    """
    rows = rows if rows is not None else pair_rows_of(data)
    warn_long_texts(version, data)
    if engine is not None and engine.streams(version):
        searched = engine.stream(version, data, cfg, spec, id_rank, rows)
    else:
        searched = search_in_memory(
            version, data, cfg, spec, id_rank, rows, engine, reindex=reindex, queries=queries
        )
    stats = searched.stats
    # Relevant items judged but not in the catalog stay in the qrels (never retrievable).
    stats["relevant_judgments_missing"], stats["judged_items_missing"] = rows.missing
    ranking, queries, remote = searched.ranking, searched.queries, searched.remote
    qrels = data.judgments.qrels if data.judgments is not None else {}
    scores = score(ranking, qrels, metrics)
    stats["queries_scored"] = scores.n_scored
    stats["queries_without_relevant"] = scores.n_without_relevant

    # Latency of the query requests made now (none on a warm rerun; with engine=ray, the Ray
    # workers').  The pipeline replaces it with the latency probe's before the comparison.
    q_seconds = queries.wall_s
    latencies = np.asarray(queries.latencies_s, dtype=np.float64)
    throughput = len(data.queries) / q_seconds if queries.n_requests and q_seconds > 0 else None
    if remote.get("query") is not None and remote["query"].n_requests:
        latencies = np.asarray(remote["query"].latencies_s, dtype=np.float64)
        throughput = None  # one Ray execution embeds queries and documents together
    result = VersionResult(
        name=version.name,
        params=version.params(),
        overall=scores.overall,
        per_query=scores.per_query,
        ranking=ranking,
        pair_ids=rows.judged,
        pair_similarity=searched.similarity,
        latencies_s=latencies,
        throughput=throughput,
        batch_size=getattr(version, "batch_size", None),
        concurrency=getattr(version, "concurrency", 1),
        fingerprint=dict(data.fingerprint),
        click_similarity=searched.click_similarity,
        extra=stats,
    )
    return result, stats


def click_pair_similarity(
    query_vectors: np.ndarray, catalog: np.ndarray, rows: PairRows, item_pos: Any = None
) -> np.ndarray | None:
    """Similarity of every logged (query, item) pair (NaN where one is unknown); ``item_pos``
    maps catalog rows to rows of ``catalog`` when it holds only some of them."""
    if rows.click_q is None:
        return None
    cq, ci = rows.click_q, rows.click_i
    out = np.full(len(cq), np.nan, dtype=np.float32)
    ok = (cq >= 0) & (ci >= 0)
    items = ci[ok] if item_pos is None else item_pos(ci[ok])
    out[ok] = pair_similarity(query_vectors, catalog, cq[ok], items, normalize=False)
    return out


def search_in_memory(
    version: Any,
    data: EvalData,
    cfg: DictConfig,
    spec: IndexSpec,
    id_rank: np.ndarray,
    rows: PairRows,
    engine: Any = None,
    reindex: Any = None,
    queries: Any = None,
) -> Searched:
    """Embed (or read) the version's vectors, hold its catalog matrix once, index and replay it
    here (or on Ray tasks, sharded, with ``engine=ray``).  ``reindex``: the re-index pass
    (:meth:`~evalkit.reindex_stage.ReindexPass.on_catalog`), timed apart from the search."""
    stats: dict[str, float] = {}
    t0 = time.perf_counter()
    before = queries.wall_s if queries is not None else 0.0  # embedded earlier: counted here
    docs, queries, remote = embed_version(version, data, cfg, engine, queries=queries)
    stats["embed_seconds"] = time.perf_counter() - t0 + before
    stats["embed_requests"] = docs.n_requests + queries.n_requests
    stats["embed_cached"] = docs.n_cached + queries.n_cached
    stats["embed_retries"] = docs.n_retries + queries.n_retries
    stats["embed_failed_requests"] = docs.n_failed + queries.n_failed
    if remote:  # the requests were made by Ray workers
        stats["embed_requests"] += sum(r.n_requests for r in remote.values())
        stats["embed_cached"] = sum(r.n_cached for r in remote.values())
        stats["embed_retries"] += sum(r.retries for r in remote.values())
    stats["dim"] = docs.vectors.shape[1]
    stats.update(vector_stats(docs.vectors, queries.vectors))
    query_vectors = queries.vectors

    if docs.vectors.shape[1] != queries.vectors.shape[1]:  # never FAISS's `assert d == self.d`
        raise EndpointError(
            f"model version {version.name!r}: catalog vectors have {docs.vectors.shape[1]} "
            f"dimensions, query vectors {queries.vectors.shape[1]} (expected one dimension)"
        )
    catalog = docs.vectors
    del docs  # the catalog matrix is held once: by `catalog`, then by the index alone
    index = stored = None
    if engine is not None:  # sharded search on Ray tasks, top-k merged here
        cache_dir = engine.cache_dir(str(cfg.cache.dir) if cfg.cache.enabled else None)
        ranking, search_stats = engine.rank(
            version=version,
            doc_vectors=catalog,
            query_vectors=query_vectors,
            data=data,
            spec=spec,
            k=int(cfg.k),
            id_rank=id_rank,
            store_root=cache_dir,
            seed=cfg.seed,
            progress=cfg.progress,
        )
        stats.update(search_stats)
    else:
        t0 = time.perf_counter()
        if spec.kind == "flat" and spec.precision == "fp32":
            index = ArrayFlatIP(catalog, spec.threads)  # searches `catalog` itself: no copy
        else:
            index = build_index(catalog, spec, progress=cfg.progress, seed=cfg.seed)
        stored = stored_vectors(index)
        if stored is not None:  # flat: search, pair similarities and checks read that copy
            catalog = stored
        stats["index_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ranking = replay(
            index,
            query_vectors,
            data.queries.ids,
            data.catalog.ids,
            int(cfg.k),
            batch_size=spec.search_batch,
            progress=cfg.progress,
            id_rank=id_rank,
        )
        stats["search_seconds"] = time.perf_counter() - t0
    if reindex is not None:
        reindex.add_queries(version.name, query_vectors)
        if engine is None:  # engine=ray searched on Ray tasks: no index here
            reindex.on_catalog(
                version.name, index, int(catalog.shape[1]), data.catalog.ids, id_rank
            )
    stats["ties"] = ranking.ties
    stats["boundary_ties"] = ranking.boundary_ties
    if not spec.exact and engine is None:
        recall = measure_ann_recall(
            catalog,
            query_vectors,
            ranking.indices,
            ranking.k,
            spec.ann_recall_sample,
            cfg.seed,
        )
        stats[f"ann_recall_at_{int(cfg.k)}"] = recall  # named by the configured k

    similarity = pair_similarity(
        query_vectors, catalog, rows.judged_q, rows.judged_i, normalize=False
    )
    click_similarity = click_pair_similarity(query_vectors, catalog, rows)
    # The catalog matrix is released here, before scoring: a frame kept alive by a reference
    # cycle further down (an exception caught inside a library) must not keep it until the next
    # version is loaded.
    del catalog, stored, index
    return Searched(queries, ranking, stats, similarity, click_similarity, remote)


def latency_metrics(result: VersionResult) -> dict[str, float]:
    lat = result.latencies_s
    if len(lat) == 0:
        return {}
    p50, p95, p99 = np.percentile(lat * 1000.0, [50, 95, 99])
    return {
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_p99_ms": p99,
        "throughput_texts_per_s": result.throughput or float("nan"),
    }
