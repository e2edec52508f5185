"""A 12-job sweep (3 dimensions x 4 precisions) at ``--items`` catalog items: one embedding per
version, against the same jobs run one by one (issue 27, "Scale").

Runs, each with its own cold vector store and MLflow store under ``--dir``:

1. ``sweep``: ``evalkit --multirun models.e5_small.dimensions=128,256,384
   index.precision=fp32,fp16,sq8,binary`` on the demo catalog of ``--items`` items (the basic
   launcher: jobs one after another in one process, the store shared);
2. ``one``: the sweep's first job alone on a cold store (what each job costs when nothing is
   reused), from which the naive way (12 independent cold jobs) is 12 x its time.

Prints both wall times, the ratio, and the embedding requests the sweep sent per version (from
the MLflow child runs: each version's texts embedded once, the other 11 jobs read the store).

Usage::

    python benchmarks/bench_sweep.py                      # 100k items
    python benchmarks/bench_sweep.py --items 20000 --dir /tmp/bench-sweep
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DIMS = "128,256,384"
PRECISIONS = "fp32,fp16,sq8,binary"


def _evalkit(args: list[str], work: Path, log: Path) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_UPDATE_DOWNLOAD_COUNTS": "0"}
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "evalkit.cli", *args, "progress=false"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 3, 4):
        raise SystemExit(f"evalkit exited {proc.returncode}: see {log}")
    return seconds


def _common(work: Path, items: int) -> list[str]:
    return [
        "models=[use_m3,e5_small]",
        f"dataset.n_items={items}",
        f"tracking.uri=sqlite:///{work}/mlflow.db",
        f"cache.dir={work}/cache",
        f"latency.store_dir={work}/latency",
    ]


def embed_requests(work: Path) -> dict[str, float]:
    """Embedding requests per version over every run of the store."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    exp = client.get_experiment_by_name("evalkit")
    out: dict[str, float] = {}
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        v = r.data.tags.get("evalkit.model_version")
        if v:
            out[v] = out.get(v, 0.0) + r.data.metrics.get("embed_requests", 0.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/evalkit-bench-sweep"))
    a = ap.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    sweep, one = a.dir / "sweep", a.dir / "one"
    for d in (sweep, one):
        d.mkdir(parents=True)
    t_sweep = _evalkit(
        [
            "--multirun",
            *_common(sweep, a.items),
            f"models.e5_small.dimensions={DIMS}",
            f"index.precision={PRECISIONS}",
            f"hydra.sweep.dir={sweep}/multirun",
        ],
        sweep,
        sweep / "out.txt",
    )
    t_one = _evalkit(
        [
            *_common(one, a.items),
            "models.e5_small.dimensions=128",
            "index.precision=fp32",
            f"hydra.run.dir={one}/run",
        ],
        one,
        one / "out.txt",
    )
    jobs = len(DIMS.split(",")) * len(PRECISIONS.split(","))
    print(f"items {a.items:,}, {jobs} jobs, cores {os.cpu_count()}")
    print(f"  sweep (one store):            {t_sweep:8.1f} s")
    print(f"  one job on a cold store:      {t_one:8.1f} s")
    print(f"  {jobs} cold jobs (naive, x{jobs}):   {jobs * t_one:8.1f} s")
    print(f"  ratio naive / sweep:          {jobs * t_one / t_sweep:8.2f}x")
    print(f"  embedding requests in the sweep, per version: {embed_requests(sweep)}")
    print(f"  embedding requests of the one job:             {embed_requests(one)}")


if __name__ == "__main__":
    main()
