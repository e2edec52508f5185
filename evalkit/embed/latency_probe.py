"""The latency probe: every model version timed on the same seeded query requests, at the same
load, interleaved in waves (:func:`wave_order`), uncached, after an untimed warm-up - the latency
the release gate compares.  Why: docs/explanation/verdict.md ("Latency that can be trusted").

>>> from evalkit.embed.local_models import UseM3
>>> a, b = UseM3("a", threads=1), UseM3("b", threads=1)
>>> res = probe_latency([a, b], ["red shoe", "blue hat", "green scarf"],
...                     ProbeSettings(texts=3, min_requests=4, batch_size=2))
>>> [(r.version, r.n_requests, r.batch_size, r.concurrency) for r in res.values()]
[('a', 4, 2, 1), ('b', 4, 2, 1)]
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from evalkit.config_schema import read_section, setting
from evalkit.embed.model_version import ModelVersion, RequestLog, check_texts

log = logging.getLogger(__name__)

#: Keys of the ``latency`` section read by :class:`evalkit.embed.latency_store.ReuseSettings`.
REUSE_KEYS = ("max_age_s", "store_dir")


#: Backends that answer over HTTP; every other one runs the model in process.
HTTP_BACKENDS = frozenset({"openai"})


def backend_kind(params: dict[str, object] | None) -> str | None:
    """``"http"`` or ``"in-process"`` from a version's params (``None`` if it has no backend)."""
    backend = (params or {}).get("backend")
    if backend in (None, ""):
        return None
    return "http" if str(backend) in HTTP_BACKENDS else "in-process"


@dataclass(frozen=True)
class ProbeSettings:
    """The ``latency`` config section's probe settings; ``seed`` is the run's."""

    texts: int = setting(64, key="probe", ge=0, help="query texts sampled; 0 = no probe")
    min_requests: int = setting(30, ge=2, help="timed requests per version, at least")
    batch_size: int = setting(1, ge=1, help="texts per request (a search request embeds one)")
    concurrency: int = setting(1, ge=1, help="requests in flight (HTTP versions only)")
    seed: int = 0

    @property
    def enabled(self) -> bool:
        return self.texts > 0

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None, seed: int = 0) -> ProbeSettings:
        """Read ``cfg.latency`` (its reuse keys belong to ``ReuseSettings``)."""
        return replace(read_section(cls, cfg, "latency", ignore=REUSE_KEYS), seed=int(seed))

    def for_kinds(self, kinds: Sequence[str | None]) -> ProbeSettings:
        """The settings for versions of these :func:`backend_kind` s: when every one is
        ``"in-process"``, at most ``min_requests x batch_size`` texts are sampled, so each version
        gets exactly ``min_requests`` requests; otherwise unchanged."""
        if not kinds or any(k != "in-process" for k in kinds):
            return self
        return replace(self, texts=min(self.texts, self.min_requests * self.batch_size))

    def requests(self, n_texts: int) -> int:
        """Timed requests per version: every sampled text at least once, at least
        ``min_requests``, rounded up to whole waves of ``concurrency``."""
        per_pass = math.ceil(min(n_texts, self.texts) / self.batch_size) if n_texts else 0
        n = max(self.min_requests, per_pass)
        return math.ceil(n / self.concurrency) * self.concurrency


@dataclass(frozen=True)
class ProbeResult:
    """One version's probe: per-request latencies (s) and texts/s over its waves."""

    version: str
    latencies_s: np.ndarray
    throughput: float
    batch_size: int
    concurrency: int
    n_texts: int  # distinct sampled texts
    retries: int = 0
    #: age of the stored probe this result reuses (:mod:`.latency_store`); None = measured now
    reused_age_s: float | None = None

    @property
    def n_requests(self) -> int:
        return int(len(self.latencies_s))


def wave_order(n_versions: int, n_waves: int) -> list[list[int]]:
    """Version order of every wave: rotated by one each wave."""
    return [[(w + i) % n_versions for i in range(n_versions)] for w in range(n_waves)]


def sample_texts(texts: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` texts drawn without replacement (seeded), in their original order."""
    texts = check_texts(texts, "query texts")
    if len(texts) <= n:
        return list(texts)
    take = np.sort(np.random.default_rng(seed).choice(len(texts), size=n, replace=False))
    return [texts[i] for i in take]


def probe_requests(sample: Sequence[str], n_requests: int, batch_size: int) -> list[list[str]]:
    """``n_requests`` requests of exactly ``batch_size`` texts, cycling through ``sample``."""
    n = len(sample)
    return [
        [sample[(r * batch_size + j) % n] for j in range(batch_size)] for r in range(n_requests)
    ]


def _send(version: ModelVersion, batches: list[list[str]], rlog: RequestLog) -> float:
    """Send ``batches`` (one wave) uncached; returns the wave's wall time."""
    t0 = time.perf_counter()
    version.embed_batches(
        batches, "query", on_batch=lambda i, v: None, request_log=rlog, finalize=False
    )
    return time.perf_counter() - t0


def probe_latency(
    versions: Sequence[ModelVersion], texts: Sequence[str], settings: ProbeSettings
) -> dict[str, ProbeResult]:
    """Every version's probe, by name; empty when the probe is off or there are no texts."""
    sample = sample_texts(texts, settings.texts, settings.seed) if settings.enabled else []
    if not sample or not versions:
        return {}
    bs, conc = settings.batch_size, settings.concurrency
    requests = probe_requests(sample, settings.requests(len(sample)), bs)
    for v in versions:  # untimed one-text warm-up: loads the model, which the copies share
        _send(v, [requests[0][:1]], RequestLog())
    loaded = [v.with_load(bs, conc) for v in versions]
    waves = [requests[i : i + conc] for i in range(0, len(requests), conc)]
    logs = [RequestLog() for _ in loaded]
    walls = [0.0] * len(loaded)
    for w, order in enumerate(wave_order(len(loaded), len(waves))):
        for i in order:
            walls[i] += _send(loaded[i], waves[w], logs[i])
    out = {}
    for v, rlog, wall in zip(loaded, logs, walls):
        lat = np.asarray(rlog.latencies_s, dtype=np.float64)
        out[v.name] = ProbeResult(
            version=v.name,
            latencies_s=lat,
            throughput=len(requests) * bs / wall if wall > 0 else math.nan,
            batch_size=bs,
            concurrency=v.concurrency,
            n_texts=len(sample),
            retries=rlog.retries,
        )
        log.info(
            "latency probe %s: %d requests of %d texts, p95 %.1f ms%s",
            v.name,
            len(lat),
            bs,
            float(np.percentile(lat, 95)) * 1000.0 if len(lat) else math.nan,
            f" ({rlog.retries} retried)" if rlog.retries else "",
        )
    return out


def probe_metrics(result: ProbeResult) -> dict[str, float]:
    """Child-run MLflow metrics of one version's probe (docs/explanation/verdict.md)."""
    out = {
        "latency_probe_requests": float(result.n_requests),
        "probe_retries": float(result.retries),
        "latency_probe_reused": float(result.reused_age_s is not None),
    }
    if result.reused_age_s is not None:
        out["latency_probe_age_s"] = float(result.reused_age_s)
    if result.n_requests:
        p50, p95, p99 = np.percentile(result.latencies_s * 1000.0, [50, 95, 99])
        out |= {
            "latency_probe_p50_ms": float(p50),
            "latency_probe_p95_ms": float(p95),
            "latency_probe_p99_ms": float(p99),
        }
    if math.isfinite(result.throughput):
        out["latency_probe_throughput_texts_per_s"] = result.throughput
    return out
