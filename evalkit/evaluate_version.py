"""One model version on one dataset: embed -> index -> replay -> score.

:func:`evaluate_version` is the per-version half of :mod:`evalkit.pipeline`; it returns plain data
(:class:`~evalkit.results.VersionResult`) and run statistics, and knows nothing of MLflow.

>>> judged_pairs({"q1": {"d2": 1, "d1": 0}}, ["q1"], ["d1", "d2"])
([('q1', 'd1'), ('q1', 'd2')], array([0, 0]), array([0, 1]))
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from evalkit.clicks.correlation import pair_similarity
from evalkit.clicks.stage import pair_rows
from evalkit.data.schema import EvalData
from evalkit.embed import embed_texts
from evalkit.index.faiss_index import IndexSpec, build_index, measure_ann_recall
from evalkit.metrics.ir import score
from evalkit.results import VersionResult
from evalkit.retrieve.replay import replay


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


def pair_rows_of(data: EvalData) -> PairRows:
    qrels = data.judgments.qrels if data.judgments is not None else {}
    judged, qr, ir = judged_pairs(qrels, data.queries.ids, data.catalog.ids)
    cq = ci = None
    if data.clicks is not None:
        cq, ci = pair_rows(data.clicks, data.queries.ids, data.catalog.ids)
    return PairRows(judged, qr, ir, cq, ci)


def _latency_probe(
    version: Any, texts: list[str], sample: int, seed: int
) -> tuple[np.ndarray, float]:
    """Per-request latencies and texts/s on an uncached sample of query texts."""
    if not texts or sample <= 0:
        return np.zeros(0), float("nan")
    rng = np.random.default_rng(seed)
    take = rng.choice(len(texts), size=min(sample, len(texts)), replace=False)
    probe = [texts[i] for i in np.sort(take)]
    t0 = time.perf_counter()
    res = embed_texts(version, probe, "query", cache_dir=None, progress=False)
    wall = time.perf_counter() - t0
    return np.asarray(res.latencies_s, dtype=np.float64), len(probe) / wall if wall > 0 else float(
        "nan"
    )


def evaluate_version(
    version: Any,
    data: EvalData,
    cfg: DictConfig,
    spec: IndexSpec,
    metrics: list[str],
    id_rank: np.ndarray,
    rows: PairRows | None = None,
    engine: Any = None,
) -> tuple[VersionResult, dict[str, float]]:
    """Embed, index, replay and score one model version. Returns its result and run statistics.

    ``id_rank`` (:func:`~evalkit.retrieve.replay.id_ranks`) and ``rows`` (:func:`pair_rows_of`)
    depend only on the data: compute them once for all versions.  ``engine`` (``engine=ray``,
    :class:`~evalkit.engine.ray_engine.RayEngine`) embeds into the cache on Ray and searches the
    sharded catalog on Ray; the driver reads the vectors back through the cache and scores.
    """
    cache_dir = Path(cfg.cache.dir) if cfg.cache.enabled else None
    stats: dict[str, float] = {}
    remote: dict[str, Any] = {}
    t0 = time.perf_counter()
    if engine is not None:
        cache_dir = engine.cache_dir(cache_dir)
        texts = {"document": data.catalog.text_for(data.text_field), "query": data.queries.texts}
        remote = engine.embed(version, texts, cache_dir, cfg.progress)
    docs = embed_texts(
        version,
        data.catalog.text_for(data.text_field),
        "document",
        cache_dir=cache_dir,
        progress=cfg.progress,
    )
    tq = time.perf_counter()
    queries = embed_texts(
        version, data.queries.texts, "query", cache_dir=cache_dir, progress=cfg.progress
    )
    q_seconds = time.perf_counter() - tq
    stats["embed_seconds"] = time.perf_counter() - t0
    stats["embed_requests"] = docs.n_requests + queries.n_requests
    stats["embed_cached"] = docs.n_cached + queries.n_cached
    if remote:
        stats["embed_requests"] += sum(r.n_requests for r in remote.values())
        stats["embed_cached"] = sum(r.n_cached for r in remote.values())
        stats["embed_retries"] = sum(r.retries for r in remote.values())
    stats["dim"] = docs.vectors.shape[1]

    if engine is not None:
        ranking, search_stats = engine.rank(
            version=version,
            doc_vectors=docs.vectors,
            query_vectors=queries.vectors,
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
        index = build_index(docs.vectors, spec, seed=cfg.seed)
        stats["index_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ranking = replay(
            index,
            queries.vectors,
            data.queries.ids,
            data.catalog.ids,
            int(cfg.k),
            batch_size=spec.search_batch,
            progress=cfg.progress,
            id_rank=id_rank,
        )
        stats["search_seconds"] = time.perf_counter() - t0
    stats["ties"] = ranking.ties
    stats["boundary_ties"] = ranking.boundary_ties
    if not spec.exact and engine is None:
        recall = measure_ann_recall(
            docs.vectors,
            queries.vectors,
            ranking.indices,
            ranking.k,
            spec.ann_recall_sample,
            cfg.seed,
        )
        stats[f"ann_recall_at_{int(cfg.k)}"] = recall  # named by the configured k

    qrels = data.judgments.qrels if data.judgments is not None else {}
    scores = score(ranking, qrels, metrics)
    stats["queries_scored"] = scores.n_scored
    stats["queries_without_relevant"] = scores.n_without_relevant

    rows = rows if rows is not None else pair_rows_of(data)
    pairs = rows.judged
    similarity = pair_similarity(
        queries.vectors, docs.vectors, rows.judged_q, rows.judged_i, normalize=False
    )
    click_similarity = None
    if rows.click_q is not None:
        cq, ci = rows.click_q, rows.click_i
        click_similarity = np.full(len(cq), np.nan, dtype=np.float32)
        ok = (cq >= 0) & (ci >= 0)
        click_similarity[ok] = pair_similarity(
            queries.vectors, docs.vectors, cq[ok], ci[ok], normalize=False
        )

    # Latency of the query requests made now (none on a warm rerun), or of an explicit probe.
    latencies = np.asarray(queries.latencies_s, dtype=np.float64)
    throughput = len(data.queries) / q_seconds if queries.n_requests and q_seconds > 0 else None
    if (
        remote.get("query") is not None and remote["query"].n_requests
    ):  # the query requests were made by Ray workers
        latencies = np.asarray(remote["query"].latencies_s, dtype=np.float64)
        throughput = None  # one Ray execution embeds queries and documents together
    if cfg.latency.probe:
        latencies, throughput = _latency_probe(
            version, data.queries.texts, int(cfg.latency.probe), cfg.seed
        )
        stats["latency_probe_requests"] = len(latencies)
    result = VersionResult(
        name=version.name,
        params=version.params(),
        overall=scores.overall,
        per_query=scores.per_query,
        ranking=ranking,
        pair_ids=pairs,
        pair_similarity=similarity,
        latencies_s=latencies,
        throughput=throughput,
        batch_size=getattr(version, "batch_size", None),
        concurrency=getattr(version, "concurrency", 1),
        fingerprint=dict(data.fingerprint),
        click_similarity=click_similarity,
        extra=stats,
    )
    return result, stats


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
