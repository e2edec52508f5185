"""The latency the gate compares: a probe over every version once all are evaluated, or a recent
stored one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from evalkit.data.schema import EvalData
from evalkit.embed.latency_probe import ProbeSettings, backend_kind, probe_metrics
from evalkit.embed.latency_store import ReuseSettings, probe_or_reuse
from evalkit.embed.model_version import ModelVersion
from evalkit.results import VersionResult

log = logging.getLogger(__name__)


def measure_latency(
    results: Sequence[VersionResult],
    versions: Sequence[ModelVersion],
    data: EvalData,
    settings: ProbeSettings,
    reuse: ReuseSettings,
) -> tuple[list[VersionResult], dict[str, dict[str, float]]]:
    """``(results, probe metrics per version)``: each probed result's latency fields replaced by
    the probe's (``latency.probe=0``: unchanged)."""
    results = list(results)
    if not settings.enabled:
        return results, {}
    timed = [v for v in versions if not v.brings_vectors]  # precomputed: nothing to time
    chosen = settings.for_kinds([backend_kind(v.params()) for v in timed])
    probes = probe_or_reuse(timed, data.queries.texts, chosen, reuse)
    reused = bool(probes) and all(p.reused_age_s is not None for p in probes.values())
    log.info(
        "latency probe: %s%d requests of %d query texts per version, interleaved%s",
        "reused, " if reused else "",
        chosen.requests(min(chosen.texts, len(data.queries))),
        chosen.batch_size,
        " (every version in process: latency.min_requests)" if chosen != settings else "",
    )
    metrics: dict[str, dict[str, float]] = {}
    for i, r in enumerate(results):
        p = probes.get(r.name)
        if p is None:
            continue
        extra = {"latency_probe_requests": p.n_requests, "latency_probe_retries": p.retries}
        if p.reused_age_s is not None:  # reused (latency.max_age_s): its age, for the gate
            extra["latency_probe_age_s"] = p.reused_age_s
        results[i] = replace(
            r,
            latencies_s=p.latencies_s,
            throughput=p.throughput,
            batch_size=p.batch_size,
            concurrency=p.concurrency,
            extra={**r.extra, **extra},
        )
        metrics[r.name] = probe_metrics(p)
    return results, metrics
