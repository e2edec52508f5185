"""One model version on one dataset: the engine embeds and searches, this module scores."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evalkit.compare.worklist import metric_cutoff
from evalkit.data.schema import EvalData
from evalkit.embed.chunking import input_limit_tokens, long_text_warning
from evalkit.embed.model_version import EmbeddingResult, ModelVersion
from evalkit.engine.interface import Engine, SearchJob
from evalkit.metrics.ir import score
from evalkit.metrics.judged_only import judged_only_name, judged_only_scores, unjudged_share
from evalkit.results import VersionResult
from evalkit.retrieve.ranking import Ranking

log = logging.getLogger(__name__)


def warn_long_texts(version: ModelVersion, data: EvalData) -> str | None:
    """Log and return the warning about texts far over the model's input limit, or None."""
    if version.brings_vectors:  # precomputed: nothing is embedded
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


def chunking_stats(version: ModelVersion, data: EvalData) -> dict[str, float]:
    """With chunking: the catalog's chunks per item and longest item in tokens (a warning when
    every item is one chunk)."""
    if version.chunking is None or version.brings_vectors:
        return {}
    from evalkit.embed.chunking import chunk_counts

    c = chunk_counts(data.embedded_texts(), version.chunking)
    if c.no_op:
        log.warning(
            "models.%s.chunking.size=%d changes nothing here: the longest document has %d "
            "tokens (every document is one chunk)",
            version.name,
            version.chunking.size,
            c.longest_tokens,
        )
    return {
        "chunks_per_item_mean": c.mean,
        "chunks_per_item_max": float(c.max),
        "longest_item_tokens": float(c.longest_tokens),
    }


def evaluate_version(
    version: ModelVersion,
    data: EvalData,
    engine: Engine,
    job: SearchJob,
    metrics: Sequence[str],
    primary: str | None = None,
) -> tuple[VersionResult, dict[str, float]]:
    """Embed, index, replay and score one model version: its result and run statistics."""
    warn_long_texts(version, data)
    searched = engine.search(version, data, job)
    stats = searched.stats
    stats.update(chunking_stats(version, data))
    stats["relevant_judgments_missing"], stats["judged_items_missing"] = job.rows.missing
    ranking, queries, remote = searched.ranking, searched.queries, searched.remote
    qrels = data.judgments.qrels if data.judgments is not None else {}
    scores = score(ranking, qrels, list(metrics))
    stats.update(queries_scored=scores.n_scored, queries_without_relevant=scores.n_without_relevant)
    judged_only: dict[str, dict[str, float]] = {}
    if primary is not None and qrels and scores.n_scored:
        coverage, judged_only = judgment_coverage(ranking, qrels, primary, scores.scored_query_ids)
        stats.update(coverage)

    latencies, throughput = query_latency(queries, remote, len(data.queries))
    result = VersionResult(
        name=version.name,
        params=version.params(),
        overall=scores.overall,
        per_query=scores.per_query,
        ranking=ranking,
        pair_ids=job.rows.judged,
        pair_similarity=searched.similarity,
        latencies_s=latencies,
        throughput=throughput,
        batch_size=version.batch_size,
        concurrency=version.concurrency,
        fingerprint=dict(data.fingerprint),
        click_similarity=searched.click_similarity,
        extra=stats,
        judged_only=judged_only,
    )
    return result, stats


def query_latency(
    queries: EmbeddingResult, remote: Mapping[str, Any], n_queries: int
) -> tuple[np.ndarray, float | None]:
    """Latency (s per request) and throughput (texts/s, None: not measured) of the query requests
    made now; with ``engine=ray`` the workers' latencies and no throughput."""
    q_seconds = queries.wall_s
    latencies = np.asarray(queries.latencies_s, dtype=np.float64)
    throughput = n_queries / q_seconds if queries.n_requests and q_seconds > 0 else None
    if remote.get("query") is not None and remote["query"].n_requests:
        latencies = np.asarray(remote["query"].latencies_s, dtype=np.float64)
        throughput = None
    return latencies, throughput


def judgment_coverage(
    ranking: Ranking, qrels: Mapping[str, Mapping[str, int]], primary: str, scored: Sequence[str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """``unjudged_at_<k>`` and ``<metric>_judged_only`` over the scored queries, and the
    judged-only per-query values."""
    k = metric_cutoff(primary, ranking.k)[1]
    judged = judged_only_scores(ranking, qrels, [primary])
    stats = {
        f"unjudged_at_{k}": unjudged_share(ranking, qrels, k, scored),
        judged_only_name(primary): judged.overall[primary],
    }
    return {name: v for name, v in stats.items() if v == v}, {primary: judged.per_query[primary]}


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
