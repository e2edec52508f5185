"""Scoring at scale: evalkit's chunked array path into ranx vs ranx's Qrels / Run dicts.

A synthetic ranking (``--queries`` x k=100 over a 1M-item catalog) and 3 graded judgments per
query, scored with the default metrics both ways, each in its own process; prints seconds, the
process's peak RSS and whether the per-query values are identical.  ``--dict-queries`` limits
the dict path (it needs ~46 KB per query).

    python benchmarks/bench_scoring.py --queries 200000 --dict-queries 50000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np

from evalkit.metrics.ir import DEFAULT_METRICS, score
from evalkit.retrieve.ranking import Ranking


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(n_queries: int, n_items: int = 1_000_000, k: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    item_ids = [f"d{i}" for i in range(n_items)]
    rows = np.argsort(rng.random((n_queries, k + 20)), axis=1)[:, :k]  # distinct within a row
    rows = (rows * 7919 + rng.integers(0, n_items, (n_queries, 1))) % n_items
    ranking = Ranking(
        query_ids=[f"q{i}" for i in range(n_queries)],
        indices=rows.astype(np.int64),
        scores=np.sort(rng.random((n_queries, k)).astype(np.float32), axis=1)[:, ::-1],
        item_ids=item_ids,
    )
    qrels = {}
    for i, q in enumerate(ranking.query_ids):
        hit = int(rows[i, rng.integers(0, k)])
        qrels[q] = {item_ids[hit]: 2, f"d{rng.integers(0, n_items)}": 1, "missing": 1}
    return ranking, qrels


def dict_path(ranking: Ranking, qrels, metrics):
    from ranx import Qrels, Run, evaluate

    from evalkit.retrieve.run_file import rank_scores

    qids = sorted(qrels)
    run = Run(rank_scores(ranking, qids))
    evaluate(Qrels(qrels), run, list(metrics), return_mean=False, save_results_in_run=True)
    return {m: {q: float(v) for q, v in run.scores[m].items()} for m in metrics}


def measure(path: str, n: int) -> None:
    """One path in this process: prints seconds and peak RSS (the parent compares processes)."""
    metrics = list(DEFAULT_METRICS)
    score(*synthetic(50, n_items=1000), metrics)  # numba's cache loaded before timing
    ranking, qrels = synthetic(n)
    t0 = time.perf_counter()
    values = score(ranking, qrels, metrics).per_query
    if path == "dicts":
        t0 = time.perf_counter()
        ref = dict_path(ranking, qrels, metrics)
        print("IDENTICAL", all(values[m] == ref[m] for m in metrics))
    print(f"RESULT {time.perf_counter() - t0:.2f} {rss_mb():.0f}")


def run(path: str, n: int) -> tuple[float, float, str]:
    out = subprocess.run(
        [sys.executable, __file__, "--only", path, "--queries", str(n)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seconds, peak = next(ln for ln in out.splitlines() if ln.startswith("RESULT")).split()[1:]
    same = next((ln.split()[1] for ln in out.splitlines() if ln.startswith("IDENTICAL")), "")
    return float(seconds), float(peak), same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=200_000)
    ap.add_argument("--dict-queries", type=int, default=50_000)
    ap.add_argument("--only", choices=["arrays", "dicts"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.only:
        measure(a.only, a.queries)
        return
    print(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load {os.getloadavg()}")
    print("| path | queries | seconds | peak RSS of the process |")
    print("|---|---|---|---|")
    n = min(a.dict_queries, a.queries)
    for path, q in (("arrays", a.queries), ("arrays", n), ("dicts", n)):
        seconds, peak, same = run(path, q)
        note = f" (per-query values identical to the arrays path: {same})" if same else ""
        print(f"| {path} | {q:,} | {seconds:.1f} | {peak:,.0f} MB |{note}", flush=True)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
