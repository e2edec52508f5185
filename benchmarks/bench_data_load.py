"""Throughput of the data layer on a synthetic 1M-item catalog (not a test; prints timings).

    python benchmarks/bench_data_load.py [--items 1000000] [--format parquet|jsonl|csv]

Writes a catalog, 100k queries and 1M judgments to a temporary folder, then times
``load_tabular`` end to end (datasets read + validation + fingerprint) twice: the first run builds
the datasets Arrow cache, the second reuses it.  Also times the fingerprint alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pcsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from evalkit.data.digest import fingerprint_data  # noqa: E402
from evalkit.data.tabular import load_tabular  # noqa: E402


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        pcsv.write_csv(table, path)
    else:
        with open(path, "w", encoding="utf-8") as fh:
            for row in table.to_pylist():
                fh.write(json.dumps(row) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--format", default="parquet", choices=["parquet", "jsonl", "csv"])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)
    n, m = args.items, args.queries
    words = np.array(["red", "blue", "shoe", "hat", "cup", "leather", "wool", "tea", "boot"])
    titles = [" ".join(w) for w in words[rng.integers(0, len(words), size=(n, 4))].tolist()]
    catalog = pa.table(
        {
            "id": [f"sku-{i}" for i in range(n)],
            "title": titles,
            "category": rng.choice(["a", "b", "c"], n).tolist(),
        }
    )
    queries = pa.table({"id": [f"q{i}" for i in range(m)], "text": titles[:m]})
    pairs = rng.choice(n, size=n, replace=False)
    judgments = pa.table(
        {
            "query_id": [f"q{i % m}" for i in range(n)],
            "item_id": [f"sku-{i}" for i in pairs.tolist()],
            "grade": rng.integers(0, 4, n),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name, table in (("items", catalog), ("queries", queries), ("judgments", judgments)):
            _write(table, d / f"{name}.{args.format}", args.format)
        for attempt in ("cold (builds Arrow cache)", "warm"):
            t0 = time.perf_counter()
            data = load_tabular(
                catalog={"path": d / f"items.{args.format}", "attributes": ["category"]},
                queries={"path": d / f"queries.{args.format}"},
                judgments={"path": d / f"judgments.{args.format}"},
                cache_dir=str(d / "hf-cache"),
            )
            dt = time.perf_counter() - t0
            print(
                f"{args.format} {attempt}: {len(data.catalog):,} items + {len(data.queries):,} "
                f"queries + {len(data.judgments):,} judgments in {dt:.2f} s "
                f"({(n + m + n) / dt:,.0f} rows/s)"
            )
        t0 = time.perf_counter()
        fingerprint_data(data.catalog, data.queries, data.judgments)
        print(f"fingerprint alone: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
