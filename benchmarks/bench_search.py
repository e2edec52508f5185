"""Replay throughput: evalkit's FAISS search + deterministic tie-breaking vs numpy brute force.

Same vectors, same queries, same k; prints queries/s for each, the ratio, and that both return
the same top-k (exact search).  With ``--hnsw`` also the HNSW index's build time, throughput and
recall against exact search.

    python benchmarks/bench_search.py --items 100000 --queries 2000
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from evalkit.index.faiss_index import IndexSpec, ann_recall, build_index
from evalkit.retrieve.replay import replay


def numpy_topk(docs: np.ndarray, queries: np.ndarray, k: int, batch: int) -> np.ndarray:
    """The naive way: matmul, argpartition, argsort - in batches so it fits in memory."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), batch):
        sims = queries[s : s + batch] @ docs.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        out[s : s + batch] = np.take_along_axis(part, order, axis=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=2_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--hnsw", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    # Clustered vectors (real embeddings are not uniform on the sphere).
    centers = rng.standard_normal((256, a.dim)).astype(np.float32)
    docs = centers[rng.integers(0, 256, a.items)] + 0.6 * rng.standard_normal(
        (a.items, a.dim)
    ).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = centers[rng.integers(0, 256, a.queries)] + 0.6 * rng.standard_normal(
        (a.queries, a.dim)
    ).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    item_ids = [f"d{i}" for i in range(a.items)]
    query_ids = [f"q{i}" for i in range(a.queries)]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{a.items:,} items x {a.dim} dims, {a.queries:,} queries, k={a.k}")

    t0 = time.perf_counter()
    index = build_index(docs, IndexSpec(kind="flat"))
    ranking = replay(index, queries, query_ids, item_ids, a.k)
    t_faiss = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = numpy_topk(docs, queries, a.k, batch=256)
    t_numpy = time.perf_counter() - t0
    same = float(np.mean(ranking.indices == naive))
    print(
        f"evalkit (FAISS flat + tie-breaking): {a.queries / t_faiss:8.0f} queries/s ({t_faiss:.2f} s)"
    )
    print(
        f"numpy brute force (matmul+argpartition): {a.queries / t_numpy:8.0f} queries/s ({t_numpy:.2f} s)"
    )
    print(f"speed-up: {t_numpy / t_faiss:.1f}x; identical top-{a.k} positions: {same:.4f}")

    if a.hnsw:
        t0 = time.perf_counter()
        hnsw = build_index(docs, IndexSpec(kind="hnsw"))
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        approx = replay(hnsw, queries, query_ids, item_ids, a.k)
        t_hnsw = time.perf_counter() - t0
        print(
            f"hnsw (M=32, efSearch=128): build {t_build:.1f} s, {a.queries / t_hnsw:.0f} queries/s, "
            f"recall@{a.k} vs exact {ann_recall(approx.indices, ranking.indices, a.k):.4f}"
        )


if __name__ == "__main__":
    main()
