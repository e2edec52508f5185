"""What an index costs, measured in the job: its bytes (FAISS's serialised size, streamed through
a counter) and its single-query search latency (``search_p50_ms`` / ``search_p95_ms``).

>>> import numpy as np
>>> from evalkit.index.faiss_index import IndexSpec, build_index
>>> x = np.eye(8, dtype="float32")
>>> index_bytes(build_index(x, IndexSpec())) == len(faiss.serialize_index(build_index(x, IndexSpec())))
True
>>> lat = search_latency(build_index(x, IndexSpec()), x, k=2, sample=5)
>>> lat.n, 0 < lat.p50_ms <= lat.p95_ms
(5, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from evalkit.index.binary import BinaryIndex

#: Bytes per callback when counting a serialisation (FAISS writes in chunks of this size).
_CHUNK = 1 << 20


def index_bytes(index: Any) -> int:
    """Bytes of ``index`` as FAISS serialises it (:class:`BinaryIndex`: plus its mean threshold;
    :class:`ArrayFlatIP`: what an ``IndexFlatIP`` would serialise to)."""
    from evalkit.index.faiss_index import ArrayFlatIP

    if isinstance(index, ArrayFlatIP):
        return flat_bytes(index.ntotal, index.d)
    total = 0

    def count(chunk: bytes) -> int:
        nonlocal total
        total += len(chunk)
        return len(chunk)

    writer = faiss.PyCallbackIOWriter(count, _CHUNK)
    if isinstance(index, BinaryIndex):
        faiss.write_index_binary(index.index, writer)
        if index.threshold is not None:
            total += index.threshold.nbytes
    else:
        faiss.write_index(index, writer)
    del writer  # flushes the last chunk
    return total


def flat_bytes(n: int, d: int) -> int:
    """What an exact ``IndexFlatIP`` over ``n`` x ``d`` float32 vectors serialises to.

    >>> flat_bytes(1000, 64) == len(faiss.serialize_index(faiss.IndexFlatIP(64))) + 256_000
    True
    """
    return len(faiss.serialize_index(faiss.IndexFlatIP(d))) + 4 * n * d


def sharded_cost(index_bytes: int, n: int) -> dict[str, float]:
    """``index_bytes`` / ``index_bytes_per_vector`` of an index (sharded: the sum of its shards'
    files, and no latency: through Ray tasks it would time Ray's scheduling)."""
    return {
        "index_bytes": float(index_bytes),
        "index_bytes_per_vector": index_bytes / n if n else float("nan"),
    }


@dataclass(frozen=True)
class LatencyStats:
    """Single-query search latency over ``n`` sampled queries, in milliseconds."""

    n: int
    p50_ms: float
    p95_ms: float


def search_latency(
    index: Any, queries: np.ndarray, k: int, sample: int, seed: int = 0
) -> LatencyStats:
    """Time ``index.search`` on one query at a time for ``sample`` seeded queries (all if fewer),
    after one untimed warm-up search."""
    n_q = len(queries)
    take = np.arange(n_q)
    if n_q > sample:
        take = np.sort(np.random.default_rng(seed).choice(n_q, size=sample, replace=False))
    q = np.ascontiguousarray(queries[take], dtype=np.float32)
    k = max(1, min(k, index.ntotal))
    if len(q):
        index.search(q[:1], k)
    times = np.empty(len(q), dtype=np.float64)
    for i in range(len(q)):
        t0 = time.perf_counter()
        index.search(q[i : i + 1], k)
        times[i] = time.perf_counter() - t0
    if not len(times):
        return LatencyStats(0, float("nan"), float("nan"))
    p50, p95 = np.percentile(times * 1000.0, [50, 95])
    return LatencyStats(len(times), float(p50), float(p95))


def index_cost(
    index: Any, queries: np.ndarray, k: int, latency_sample: int, seed: int = 0
) -> dict[str, float]:
    """The run statistics of an index's cost: ``index_bytes``, ``index_bytes_per_vector`` and,
    unless ``latency_sample`` is 0, ``search_p50_ms`` / ``search_p95_ms``."""
    out = sharded_cost(index_bytes(index), index.ntotal)
    if latency_sample and len(queries) and index.ntotal:
        lat = search_latency(index, queries, k, latency_sample, seed)
        out["search_p50_ms"] = lat.p50_ms
        out["search_p95_ms"] = lat.p95_ms
    return out
