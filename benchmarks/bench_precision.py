"""Index precision on the shipped Cranfield with e5_small: recall against exact fp32, bytes, latency.

Embeds Cranfield (``tests/data/cranfield``, BEIR's ``title_text``, its 2 empty rows skipped, as
``dataset=beir`` does) with the in-process e5_small model once (vectors cached as ``.npy`` under
``--cache``; ~23 min on 2 busy cores), then for
each ``index.precision`` (fp32, fp16, sq8, sq4, binary with ``index.rescore`` in 0, 100, 200,
400, 1000; with ``--centered`` also ``index.binary_threshold=mean``) builds the index evalkit
builds and prints:

- recall@k of its top-k against exact fp32 search (every query; evalkit's ``ann_recall``);
- FAISS's size of the index per vector and in total (``evalkit.index.cost.index_bytes``);
- p50 / p95 of single-query searches (top-k) over ``--latency-sample`` seeded queries, the best
  of ``--repeat`` passes per configuration (the machine is shared).

    python benchmarks/bench_precision.py
    python benchmarks/bench_precision.py --dimensions 0 256 128 --centered
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import faiss
import numpy as np

from evalkit.data.beir import load_beir
from evalkit.embed.local_models import E5Small
from evalkit.index.cost import index_bytes, search_latency
from evalkit.index.faiss_index import ArrayFlatIP, IndexSpec, ann_recall, build_index

REPO = Path(__file__).resolve().parents[1]


def embedded(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Cranfield's catalog and query vectors from e5_small (embedded once, then read)."""
    docs_file, queries_file = (
        cache / "cranfield-e5_small-docs.npy",
        cache / "cranfield-e5_small-q.npy",
    )
    if docs_file.exists() and queries_file.exists():
        return np.load(docs_file), np.load(queries_file)
    data = load_beir(
        REPO / "tests" / "data" / "cranfield", text_field="title_text", on_invalid="skip"
    )
    model = E5Small()
    t0 = time.perf_counter()
    docs = model.embed(data.embedded_texts(), "document")
    queries = model.embed(list(data.queries.texts), "query")
    print(
        f"embedded {len(docs)} items + {len(queries)} queries in {time.perf_counter() - t0:.0f} s"
    )
    cache.mkdir(parents=True, exist_ok=True)
    np.save(docs_file, docs)
    np.save(queries_file, queries)
    return docs, queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/wt-index-scratch/bench-precision"))
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--rescore", type=int, nargs="+", default=[0, 100, 200, 400, 1000])
    ap.add_argument("--latency-sample", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--centered",
        action="store_true",
        help="also binary with index.binary_threshold=mean (bits around the catalog's mean)",
    )
    ap.add_argument("--threads", type=int, default=1, help="FAISS threads (single-query search)")
    ap.add_argument(
        "--dimensions",
        type=int,
        nargs="+",
        default=[0],
        help="also truncated to these dims and re-normalised, as models.e5_small.dimensions "
        "does (0 = all 384)",
    )
    args = ap.parse_args()
    faiss.omp_set_num_threads(args.threads)
    full_docs, full_queries = embedded(args.cache)
    for dim in args.dimensions:
        docs, queries = truncated(full_docs, dim), truncated(full_queries, dim)
        table(docs, queries, args)


def truncated(x: np.ndarray, dim: int) -> np.ndarray:
    """The first ``dim`` dimensions, re-normalised (``dim`` 0: ``x`` as it is)."""
    if not dim or dim >= x.shape[1]:
        return x
    t = np.ascontiguousarray(x[:, :dim])
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def table(docs: np.ndarray, queries: np.ndarray, args: argparse.Namespace) -> None:
    """One line per precision: recall@k against exact fp32, bytes, single-query latency."""
    k = min(args.k, len(docs))
    _, exact_rows = ArrayFlatIP(docs).search(queries, k)
    print(
        f"Cranfield x e5_small: {len(docs)} items, {len(queries)} queries, {docs.shape[1]} dims; "
        f"k={k}; FAISS {faiss.__version__}, {args.threads} thread(s); {platform.processor() or platform.machine()}"
    )
    configs = [("fp32", 0, "zero"), ("fp16", 0, "zero"), ("sq8", 0, "zero"), ("sq4", 0, "zero")]
    thresholds = ["zero", "mean"] if args.centered else ["zero"]
    configs += [("binary", r, t) for t in thresholds for r in args.rescore]
    print(
        f"{'precision':<9} {'threshold':>9} {'rescore':>7} {'recall@' + str(k):>10} "
        f"{'bytes/vec':>10} {'index bytes':>12} {'p50 ms':>8} {'p95 ms':>8}"
    )
    for precision, rescore, threshold in configs:
        spec = IndexSpec(precision=precision, rescore=rescore, binary_threshold=threshold)
        index = ArrayFlatIP(docs) if spec.exact else build_index(docs, spec)
        _, rows = index.search(queries, k)
        recall = ann_recall(rows, exact_rows, k)
        size = index_bytes(index)
        runs = [
            search_latency(index, queries, k, args.latency_sample, seed=0)
            for _ in range(args.repeat)
        ]
        p50 = min(r.p50_ms for r in runs)
        p95 = min(r.p95_ms for r in runs)
        shown, thr = (str(rescore), threshold) if precision == "binary" else ("-", "-")
        print(
            f"{precision:<9} {thr:>9} {shown:>7} {recall:>10.4f} {size / len(docs):>10.1f} "
            f"{size:>12,d} {p50:>8.3f} {p95:>8.3f}"
        )


if __name__ == "__main__":
    main()
