"""One model version on one dataset: embed -> search -> score, on whichever engine.

:func:`evaluate_version` is the per-version half of :mod:`evalkit.run.evaluation`: the engine
(:class:`~evalkit.engine.base.Engine`) embeds and searches, this module scores the ranking and
returns plain data (:class:`~evalkit.results.VersionResult`) and run statistics.  It knows
nothing of MLflow, of the config, or of which engine runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from evalkit.data.schema import EvalData
from evalkit.embed.base import ModelVersion
from evalkit.embed.chunking import input_limit_tokens, long_text_warning
from evalkit.engine.base import Engine, SearchJob
from evalkit.metrics.ir import score
from evalkit.results import VersionResult

log = logging.getLogger(__name__)


def warn_long_texts(version: ModelVersion, data: EvalData) -> str | None:
    """Warn (once per version and evaluation) about texts far over the model's input limit,
    naming the longest catalog and query rows and the chunking option that bounds them
    (:func:`~evalkit.embed.chunking.long_text_warning`).  Returns the warning, or None."""
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


def evaluate_version(
    version: ModelVersion,
    data: EvalData,
    engine: Engine,
    job: SearchJob,
    metrics: Sequence[str],
) -> tuple[VersionResult, dict[str, float]]:
    """Embed, index, replay and score one model version. Returns its result and run statistics.

    ``job.id_rank`` and ``job.rows`` depend only on the data: the run computes them once for all
    versions.  With ``engine=ray`` the vectors are embedded into the cache on Ray and the
    sharded catalog is searched on Ray; the driver reads the vectors back and scores.
    """
    warn_long_texts(version, data)
    searched = engine.search(version, data, job)
    stats = searched.stats
    # Relevant items judged but not in the catalog stay in the qrels (never retrievable).
    stats["relevant_judgments_missing"], stats["judged_items_missing"] = job.rows.missing
    ranking, queries, remote = searched.ranking, searched.queries, searched.remote
    qrels = data.judgments.qrels if data.judgments is not None else {}
    scores = score(ranking, qrels, list(metrics))
    stats["queries_scored"] = scores.n_scored
    stats["queries_without_relevant"] = scores.n_without_relevant

    # Latency of the query requests made now (none on a warm rerun; with engine=ray, the Ray
    # workers').  The run replaces it with the latency probe's before the comparison.
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
        pair_ids=job.rows.judged,
        pair_similarity=searched.similarity,
        latencies_s=latencies,
        throughput=throughput,
        batch_size=version.batch_size,
        concurrency=version.concurrency,
        fingerprint=dict(data.fingerprint),
        click_similarity=searched.click_similarity,
        extra=stats,
    )
    return result, stats


def latency_metrics(result: VersionResult) -> dict[str, float]:
    """The latency of a version's query requests, as MLflow metrics (empty: no request)."""
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
