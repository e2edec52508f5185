"""Cold vs warm evaluation through the real CLI: what the embedding cache saves.

Runs ``evalkit`` twice with a fresh cache directory and MLflow store: cold (every text embedded)
and warm (same inputs: zero embedding calls), and prints wall times, the speed-up and the
embedding calls each run made.  The first cold run of a fresh install also pays ranx's numba JIT
compilation (~30 s, cached afterwards); ``--prewarm`` runs a tiny evaluation first to exclude it.

    python benchmarks/bench_warm_rerun.py                      # Cranfield, use_m3 vs e5_small
    python benchmarks/bench_warm_rerun.py --dataset demo       # the README's demo
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
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
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
        (warm, warm_cpu), load_warm = run(args, work, "warm"), os.getloadavg()
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        )
        print(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"dataset {a.dataset}, models {a.models}")
        print(
            f"cold: {cold:7.1f} s wall, {cold_cpu:6.1f} s CPU  "
            f"({embed_calls(work, 'cold')} embedding requests; load {load[0]:.1f} -> {load_cold[0]:.1f})"
        )
        print(
            f"warm: {warm:7.1f} s wall, {warm_cpu:6.1f} s CPU  "
            f"({embed_calls(work, 'warm')} embedding requests; load {load_warm[0]:.1f})"
        )
        print(f"speed-up warm vs cold: {cold / warm:.1f}x")


if __name__ == "__main__":
    main()
