"""Cold vs warm evaluation through the real CLI: what the embedding cache saves.

Runs ``evalkit`` with a fresh cache directory and MLflow store, from a fresh working folder: once
cold (every text embedded), then ``--warm-runs`` times warm (same inputs: zero embedding calls),
and prints wall times (each warm run and their median), the speed-up and the embedding calls each
run made.  The latency probe of the in-process models is stored per user and reused by the warm
runs (``latency.max_age_s``); numba's compiled code is cached per user (``numba_cache_dir``), so
a new folder does not compile again.  The first cold run of a fresh install also pays ranx's numba JIT
compilation (~30 s, cached afterwards); ``--prewarm`` runs a tiny evaluation first to exclude it.

    python benchmarks/bench_warm_rerun.py                      # Cranfield, use_m3 vs e5_small
    python benchmarks/bench_warm_rerun.py --dataset demo       # the README's demo
    python benchmarks/bench_warm_rerun.py --dataset demo --warm-runs 3
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / "tests" / "data"  # gzip BEIR folders, read directly


def run(args: list[str], work: Path, name: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one ``evalkit`` process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_UPDATE_DOWNLOAD_COUNTS": "0"}
    cmd = [
        sys.executable,
        "-m",
        "evalkit.cli",
        *args,
        f"tracking.uri=sqlite:///{work}/mlflow.db",
        f"tracking.experiment={name}",
        f"cache.dir={work}/cache",
        f"hydra.run.dir={work}/{name}",
        "progress=false",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    folder = work / "cwd"  # a fresh working folder: nothing of an earlier run beside it
    folder.mkdir(exist_ok=True)
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 3):
        sys.exit(f"evalkit failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, cpu


def embed_calls(work: Path, name: str) -> int:
    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id])
    return int(sum(r.data.metrics.get("embed_requests", 0) for r in runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cranfield", help="demo, or a folder name in tests/data")
    ap.add_argument("--models", default="[use_m3,e5_small]")
    ap.add_argument("--prewarm", action="store_true", help="compile ranx's JIT before timing")
    ap.add_argument("--warm-runs", type=int, default=3, help="warm runs (the median is printed)")
    a = ap.parse_args()
    data = (
        [] if a.dataset == "demo" else ["dataset=beir", f"dataset.path={COLLECTIONS / a.dataset}"]
    )
    args = [*data, f"models={a.models}"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if a.prewarm:
            run(
                ["dataset=beir", f"dataset.path={COLLECTIONS / 'adi'}", "models=[use_m3]"],
                work,
                "prewarm",
            )
        load = os.getloadavg()
        (cold, cold_cpu), load_cold = run(args, work, "cold"), os.getloadavg()
        warms = [run(args, work, f"warm{i}") for i in range(max(1, a.warm_runs))]
        load_warm = os.getloadavg()
        warm, warm_cpu = sorted(warms)[len(warms) // 2]  # the median run (by wall time)
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        )
        print(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"dataset {a.dataset}, models {a.models}")
        print(
            f"cold: {cold:7.1f} s wall, {cold_cpu:6.1f} s CPU  "
            f"({embed_calls(work, 'cold')} embedding requests; load {load[0]:.1f} -> {load_cold[0]:.1f})"
        )
        for i, (w, c) in enumerate(warms):
            print(
                f"warm {i + 1}: {w:5.1f} s wall, {c:6.1f} s CPU  "
                f"({embed_calls(work, f'warm{i}')} embedding requests)"
            )
        print(
            f"warm median of {len(warms)}: {warm:5.1f} s wall, {warm_cpu:6.1f} s CPU  "
            f"(load {load_warm[0]:.1f})"
        )
        print(f"speed-up warm vs cold: {cold / warm:.1f}x")


if __name__ == "__main__":
    main()
