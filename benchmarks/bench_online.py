"""The online A/B log: how fast one streamed pass reduces a canary's gateway log (issue 25).

Generates (seeded) a gateway log of ``--impressions`` impressions in Parquet parts: 10 positions
per request, one user per 5 requests, 14 days, the arm drawn per user (50/50), a Zipf query mix
of 100k queries, scores falling with the position, position-based clicks, one latency per
request.  Default 100M impressions = 10M requests x 10 positions, 2M users (~1.3 GB of Parquet,
written once into ``--dir`` and reused while its parameters are the same).

Then, each in its own process (peak RSS = that process's ``ru_maxrss``):

- ``engines``: the same per-unit aggregation (requests, impressions, clicks per user and arm) by
  pyarrow datasets (batches + ``Table.group_by``, partial sums merged), DuckDB and polars
  (``scan_parquet`` + streaming ``collect``): the engine choice;
- ``full``: :func:`evalkit.online.read.aggregate_log` end to end on the log (every analysis:
  unit / daily / slice sums, latency per request, positions, score bins, AUC sums, checks): the
  part-by-part path (:mod:`evalkit.online.parts`);
- ``global``: the same with ``EVALKIT_ONLINE_PARTS=0``: DuckDB's global scans (the path taken
  when a request spans parts, and for CSV / JSON logs);
- ``naive``: pandas reads the whole log of ``--naive-impressions`` (default 10M) and groups by
  unit, beside ``full`` on that same log: the ratio.

Usage::

    python benchmarks/bench_online.py                          # 100M impressions in /tmp
    python benchmarks/bench_online.py --impressions 10000000 --only full global
    python benchmarks/bench_online.py --dir /tmp/online-read/bench --threads 2
    python benchmarks/bench_online.py --plain-strings --only full   # strings as Spark writes them

Prints impressions/s, wall time and peak RSS per step; the goal (idle, 2 cores) is <= 2 GB peak
RSS and >= 10M impressions/s through the whole aggregation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

POSITIONS = 10
REQUESTS_PER_USER = 5
DAYS = 14
QUERIES = 100_000
PART_IMPRESSIONS = 5_000_000
START = np.datetime64("2026-11-01T00:00:00", "ms")


def _query_texts(n: int) -> list[str]:
    """``n`` distinct query texts of 1 to 6 tokens."""
    lengths = (np.arange(n) * 7919) % 6 + 1
    return [" ".join(f"w{i}_{t}" for t in range(k)) for i, k in enumerate(lengths)]


def generate(folder: Path, impressions: int, seed: int = 0, plain: bool = False) -> Path:
    """Write the seeded log into ``folder`` (reused when ``_params.json`` matches).  ``plain``:
    the string columns as plain strings and no Arrow schema in the footer, as JVM writers (Spark,
    Flink) leave them; else Arrow dictionaries."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    params = {
        "impressions": impressions,
        "seed": seed,
        "format": 1,
        **({"plain": 1} if plain else {}),
    }
    marker = folder / "_params.json"
    if marker.exists() and json.loads(marker.read_text()) == params:
        return folder
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    requests = impressions // POSITIONS
    users = max(1, requests // REQUESTS_PER_USER)
    rng = np.random.default_rng(seed)
    texts = pa.array(_query_texts(QUERIES))
    zipf_p = 1.0 / np.arange(1, QUERIES + 1) ** 1.1
    zipf_p /= zipf_p.sum()
    arms = pa.array(["control", "treatment"])
    versions = pa.array(["model-a", "model-b"])
    per_part = max(1, PART_IMPRESSIONS // POSITIONS)
    span_ms = DAYS * 86_400_000
    for part, lo in enumerate(range(0, requests, per_part)):
        n = min(per_part, requests - lo)
        req = np.arange(lo, lo + n, dtype=np.int64)
        user = rng.integers(0, users, n, dtype=np.int64)
        arm = ((user * 2_654_435_761) >> 7) % 2
        query = rng.choice(QUERIES, n, p=zipf_p).astype(np.int32)
        ts = START + (req * (span_ms // max(requests, 1))).astype("timedelta64[ms]")
        latency = rng.lognormal(np.log(40.0) + 0.05 * arm, 0.4, n).astype(np.float32)
        pos = np.tile(np.arange(1, POSITIONS + 1, dtype=np.int16), n)
        base = rng.normal(0.6 - 0.2 * arm, 0.08, n).astype(np.float32)
        score = np.repeat(base, POSITIONS) - 0.02 * pos + rng.normal(0, 0.03, n * POSITIONS)
        p_click = 0.35 / pos * (1.0 / (1.0 + np.exp(-8.0 * (score - 0.5))))
        clicked = rng.random(n * POSITIONS) < p_click
        rep = lambda a: np.repeat(a, POSITIONS)  # noqa: E731
        table = pa.table(
            {
                "request_id": rep(req),
                "user_id": rep(user),
                "ab_group": pa.DictionaryArray.from_arrays(rep(arm).astype(np.int8), arms),
                "model_version": pa.DictionaryArray.from_arrays(rep(arm).astype(np.int8), versions),
                "query": pa.DictionaryArray.from_arrays(rep(query), texts),
                "item_id": rng.integers(0, 5_000_000, n * POSITIONS, dtype=np.int64),
                "position": pos,
                "similarity_score": score.astype(np.float32),
                "clicked": clicked,
                "latency_ms": rep(latency),
                "timestamp": pa.array(rep(ts), pa.timestamp("ms", tz="UTC")),
            }
        )
        if plain:
            table = pa.table(
                {n: (c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c)
                 for n, c in zip(table.column_names, table.columns, strict=True)}
            )  # fmt: skip
        pq.write_table(
            table,
            folder / f"part-{part:05d}.parquet",
            row_group_size=1_000_000,
            store_schema=not plain,
        )
    marker.write_text(json.dumps(params))
    return folder


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _unit_pyarrow(folder: Path, threads: int) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    pa.set_cpu_count(threads)
    pa.set_io_thread_count(threads)
    data = ds.dataset(str(folder), format="parquet")
    partials = []
    cols = ["user_id", "ab_group", "request_id", "clicked"]
    for batch in data.to_batches(columns=cols, batch_size=1 << 20):
        t = pa.Table.from_batches([batch])
        t = t.set_column(1, "ab_group", pc.cast(t["ab_group"], pa.string()))
        t = t.append_column("c", pc.cast(t["clicked"], pa.int64()))
        partials.append(
            t.group_by(["user_id", "ab_group"]).aggregate([("request_id", "count"), ("c", "sum")])
        )
    whole = pa.concat_tables(partials)
    out = whole.group_by(["user_id", "ab_group"]).aggregate(
        [("request_id_count", "sum"), ("c_sum", "sum")]
    )
    return out.num_rows


def _unit_duckdb(folder: Path, threads: int) -> int:
    import duckdb

    con = duckdb.connect(config={"threads": threads, "memory_limit": "1GB"})
    rel = con.sql(
        f"SELECT user_id, ab_group, count(*) AS impressions, count(DISTINCT request_id) AS "
        f"requests, sum(clicked::INT) AS clicks FROM read_parquet('{folder}/*.parquet') "
        "GROUP BY ALL"
    )
    return len(rel.fetchnumpy()["user_id"])


def _unit_polars(folder: Path, threads: int) -> int:
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    out = (
        pl.scan_parquet(f"{folder}/*.parquet")
        .group_by("user_id", "ab_group")
        .agg(
            pl.len().alias("impressions"),
            pl.col("request_id").n_unique().alias("requests"),
            pl.col("clicked").cast(pl.Int64).sum().alias("clicks"),
        )
        .collect(engine="streaming")
    )
    return out.height


def _full(folder: Path, threads: int) -> int:
    from evalkit.online.online_settings import OnlineSettings
    from evalkit.online.read import aggregate_log

    os.environ["EVALKIT_ONLINE_THREADS"] = str(threads)
    agg = aggregate_log(OnlineSettings(path=str(folder), slices=("model_version",)), (0.5, 0.3))
    return agg.rows


def _global(folder: Path, threads: int) -> int:
    os.environ["EVALKIT_ONLINE_PARTS"] = "0"
    return _full(folder, threads)


def _naive(folder: Path, threads: int) -> int:
    import pandas as pd

    df = pd.read_parquet(folder)  # the whole log in memory
    df["clicked"] = df["clicked"].astype("int64")
    req = df.groupby(["ab_group", "user_id", "request_id"], observed=True).agg(
        impressions=("clicked", "size"), clicks=("clicked", "sum"), latency=("latency_ms", "max")
    )
    req["clicked_requests"] = req["clicks"] > 0
    out = req.groupby(["ab_group", "user_id"], observed=True).agg(
        requests=("clicks", "size"),
        clicked_requests=("clicked_requests", "sum"),
        impressions=("impressions", "sum"),
        clicks=("clicks", "sum"),
    )
    return len(out)


STEPS = {
    "pyarrow": _unit_pyarrow,
    "duckdb": _unit_duckdb,
    "polars": _unit_polars,
    "full": _full,
    "global": _global,
    "naive": _naive,
}


def _child(step: str, folder: Path, threads: int) -> None:
    t0 = time.perf_counter()
    n = STEPS[step](folder, threads)
    seconds = time.perf_counter() - t0
    print(json.dumps({"step": step, "seconds": seconds, "rss_mb": _rss_mb(), "result": n}))


def run_step(step: str, folder: Path, impressions: int, threads: int) -> dict:
    """Run one step in a fresh process; its wall time, peak RSS and impressions/s."""
    cmd = [sys.executable, __file__, "--child", step, "--dir", str(folder), "--threads"]
    out = subprocess.run([*cmd, str(threads)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"step": step, "error": out.stderr.strip().splitlines()[-1:]}
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["impressions_per_s"] = impressions / res["seconds"]
    return res


def _line(r: dict, impressions: int) -> str:
    if "error" in r:
        return f"{r['step']:>8}: FAILED {r['error']}"
    return (
        f"{r['step']:>8}: {impressions / 1e6:7.1f}M impressions in {r['seconds']:7.2f} s = "
        f"{r['impressions_per_s'] / 1e6:6.2f}M/s, peak RSS {r['rss_mb']:7.0f} MB"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--impressions", type=int, default=100_000_000)
    p.add_argument("--naive-impressions", type=int, default=10_000_000)
    p.add_argument("--dir", default="/tmp/online-read/bench")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["engines", "full", "global", "naive"], nargs="*")
    p.add_argument(
        "--plain-strings",
        action="store_true",
        help="write the string columns as plain strings, no Arrow schema (as Spark writes them)",
    )
    p.add_argument("--child", choices=sorted(STEPS), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        _child(a.child, Path(a.dir), a.threads)
        return
    only = set(a.only or ["engines", "full", "naive"])
    root = Path(a.dir)
    suffix = "-plain" if a.plain_strings else ""
    big = root / f"log-{a.impressions}{suffix}"
    t0 = time.perf_counter()
    generate(big, a.impressions, a.seed, a.plain_strings)
    print(f"log: {big} ({a.impressions:,} impressions, {time.perf_counter() - t0:.0f} s to ready)")
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), threads {a.threads}")
    steps = (["pyarrow", "duckdb", "polars"] if "engines" in only else []) + [
        s for s in ("full", "global") if s in only
    ]
    for step in steps:
        print(_line(run_step(step, big, a.impressions, a.threads), a.impressions), flush=True)
    if "naive" in only:
        small = root / f"log-{a.naive_impressions}{suffix}"
        generate(small, a.naive_impressions, a.seed, a.plain_strings)
        naive = run_step("naive", small, a.naive_impressions, a.threads)
        full = run_step("full", small, a.naive_impressions, a.threads)
        print(_line(naive, a.naive_impressions))
        print(_line(full, a.naive_impressions))
        if "error" not in naive and "error" not in full:
            print(
                f"   ratio (pandas / aggregate_log): time {naive['seconds'] / full['seconds']:.2f}, "
                f"peak RSS {naive['rss_mb'] / full['rss_mb']:.2f}"
            )


if __name__ == "__main__":
    main()
