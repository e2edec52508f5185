"""Past one machine: precomputed vectors in Parquet parts through ``engine=ray``, with the peak
memory of the driver and of every Ray process, measured while the real CLI runs.

Builds everything itself under ``--work`` (default ``/tmp/evalkit-bench-ray``):

1. a synthetic catalog (``catalog.parquet``: id, title), queries and judgments (each query's
   relevant items are 3 items of one cluster; the query vector is near the first one);
2. per model version, ``--dim``-d unit vectors for every item, written part by part
   (``--parts`` Parquet files, fixed-size-list float32), never the whole matrix in memory:
   item i = its cluster's centre + noise; version ``b`` has other noise;
3. the big run: ``evalkit engine=ray index=ivf index.codec=pq`` on ``--items`` items with one
   precomputed version (``--big-versions 2`` for an A/B): wall time, peak memory (the sum of the
   proportional set size, PSS, of the CLI process and every process under it - Ray's raylet,
   object store and workers - sampled every 0.5 s), and ``ann_recall_at_<k>`` that evalkit
   measured against exact search on a query sample;
4. the same A/B on ``--ab-items`` items (exact flat search) with ``engine=local`` and
   ``engine=ray``, one after the other in this run: wall, peak memory, ratio.

    python benchmarks/bench_ray.py                                   # 10M x 256-d (~25 GB disk)
    python benchmarks/bench_ray.py --items 200000 --ab-items 100000 --queries 500   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
CLUSTERS = 2048


# ---------------------------------------------------------------- data


def centres(dim: int) -> np.ndarray:
    c = np.random.default_rng(0).standard_normal((CLUSTERS, dim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def labels(n: int) -> np.ndarray:
    return np.random.default_rng(1).integers(0, CLUSTERS, n).astype(np.int32)


def item_vectors(c: np.ndarray, lab: np.ndarray, start: int, stop: int, seed: int) -> np.ndarray:
    """Rows ``start..stop`` of a version's catalog: centre + noise, unit norm, float32."""
    rng = np.random.default_rng([seed, start])
    noise = rng.standard_normal((stop - start, c.shape[1]), np.float32)
    v = c[lab[start:stop]] + np.float32(0.6 / np.sqrt(c.shape[1])) * noise
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32, copy=False)  # float32 on disk, as embedding pipelines write


def fixed_list(v: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])


def build_tables(folder: Path, n: int, n_queries: int) -> dict:
    """catalog / queries / judgments Parquet files; returns the queries' relevant item rows."""
    folder.mkdir(parents=True, exist_ok=True)
    lab = labels(n)
    writer = None
    for s in range(0, n, 1_000_000):
        ids = pa.array([f"d{i}" for i in range(s, min(n, s + 1_000_000))])
        titles = pa.array([f"item {i}" for i in range(s, min(n, s + 1_000_000))])
        table = pa.table({"id": ids, "title": titles})
        writer = writer or pq.ParquetWriter(folder / "catalog.parquet", table.schema)
        writer.write_table(table)
    writer.close()
    rng = np.random.default_rng(2)
    first = rng.choice(n, n_queries, replace=False)
    by_cluster = {}
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(CLUSTERS + 1))
    for c in np.unique(lab[first]):
        by_cluster[int(c)] = order[bounds[c] : bounds[c + 1]]
    rel = []
    for f in first:
        pool = by_cluster[int(lab[f])]
        pool = pool[pool != f]
        rel.append([int(f), *rng.choice(pool, min(2, len(pool)), replace=False).tolist()])
    qids = [f"q{i}" for i in range(n_queries)]
    pq.write_table(
        pa.table({"id": qids, "text": [f"query {i}" for i in range(n_queries)]}),
        folder / "queries.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "query_id": [q for q, r in zip(qids, rel) for _ in r],
                "item_id": [f"d{i}" for r in rel for i in r],
                "grade": [2 if j == 0 else 1 for r in rel for j in range(len(r))],
            }
        ),
        folder / "judgments.parquet",
    )
    return {"first": first}


def build_version(folder: Path, n: int, dim: int, parts: int, seed: int, first: np.ndarray) -> None:
    """One version's catalog parts and its query vectors (near each query's first item)."""
    c, lab = centres(dim), labels(n)
    (folder / "catalog").mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, n, parts + 1).astype(np.int64)
    q = np.zeros((len(first), dim), np.float32)
    for p, (a, b) in enumerate(zip(bounds, bounds[1:])):
        writer = None
        for s in range(a, b, 500_000):  # bounded memory per write
            e = min(b, s + 500_000)
            v = item_vectors(c, lab, s, e, seed)
            here = np.flatnonzero((first >= s) & (first < e))
            q[here] = v[first[here] - s]  # each query starts from its first relevant item
            table = pa.table(
                {"id": pa.array([f"d{i}" for i in range(s, e)]), "vector": fixed_list(v)}
            )
            name = folder / "catalog" / f"part-{p:04d}.parquet"
            writer = writer or pq.ParquetWriter(name, table.schema, use_dictionary=False)
            writer.write_table(table)
        writer.close()
    rng = np.random.default_rng([seed, 99])
    q = q + np.float32(0.5 / np.sqrt(dim)) * rng.standard_normal(q.shape, np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    pq.write_table(
        pa.table({"id": [f"q{i}" for i in range(len(q))], "vector": fixed_list(q)}),
        folder / "queries.parquet",
    )


# ---------------------------------------------------------------- memory


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree(root: int) -> list[int]:
    kids, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += kids.get(pid, [])
    return out


def _kb(pid: int, field: str, file: str) -> int:
    try:
        with open(f"/proc/{pid}/{file}") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Peak PSS of a process tree (sum), of its root (the driver) and of its largest other process."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.stop = root, threading.Event()
        self.total = self.driver = self.worker = 0

    def run(self) -> None:
        while not self.stop.is_set():
            pids = _tree(self.root)
            pss = {p: _kb(p, "Pss:", "smaps_rollup") for p in pids}
            self.total = max(self.total, sum(pss.values()))
            self.driver = max(self.driver, pss.get(self.root, 0))
            others = [v for p, v in pss.items() if p != self.root]
            self.worker = max([self.worker, *others])
            self.stop.wait(0.5)


def run_cli(overrides: list[str], log: Path) -> dict:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",
        "RAY_DEDUP_LOGS": "0",
    }
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalkit.cli", *overrides],
            cwd=REPO,
            env=env,
            stdout=err,
            stderr=subprocess.STDOUT,
        )
        sampler = Sampler(proc.pid)
        sampler.start()
        code = proc.wait()
        sampler.stop.set()
        sampler.join()
    wall = time.perf_counter() - t0
    if code not in (0, 3):
        sys.exit(f"evalkit failed ({code}):\n{log.read_text()[-3000:]}")
    gib = 1 / 2**20
    return {
        "wall": wall,
        "code": code,
        "peak_total_gib": sampler.total * gib,
        "peak_driver_gib": sampler.driver * gib,
        "peak_other_gib": sampler.worker * gib,
    }


def version_metrics(db: str, experiment: str) -> dict[str, dict[str, float]]:
    from mlflow import MlflowClient

    client = MlflowClient(db)
    exp = client.get_experiment_by_name(experiment)
    out = {}
    for r in client.search_runs([exp.experiment_id]):
        if "evalkit.model_version" in r.data.tags:
            out[r.data.tags["evalkit.model_version"]] = dict(r.data.metrics)
    return out


def overrides(
    work: Path, db: str, names: list[str], engine: str, exp: str, *extra: str
) -> list[str]:
    data = work / "data"
    models = [
        f"+models.{v}={{_target_:evalkit.embed.precomputed.Precomputed,name:{v},"
        f"catalog:'{work / v / 'catalog'}',queries:'{work / v / 'queries.parquet'}'}}"
        for v in names
    ]
    return [
        "dataset=tabular",
        f"dataset.catalog.path={data / 'catalog.parquet'}",
        f"dataset.queries.path={data / 'queries.parquet'}",
        f"dataset.judgments.path={data / 'judgments.parquet'}",
        f"dataset.cache_dir={work / 'hf'}",
        "models=[]",
        *models,
        f"engine={engine}",
        f"cache.dir={work / 'store'}",
        f"tracking.uri={db}",
        f"tracking.experiment={exp}",
        f"hydra.run.dir={work / 'runs' / exp}",
        "compare.reindex=false",
        "latency.probe=0",
        "progress=false",
        *extra,
    ]


def show(label: str, r: dict, stats: dict[str, dict[str, float]]) -> None:
    print(
        f"{label}: wall {r['wall']:.1f} s (exit {r['code']}), peak memory of all processes "
        f"{r['peak_total_gib']:.2f} GiB (driver {r['peak_driver_gib']:.2f} GiB, largest other "
        f"process {r['peak_other_gib']:.2f} GiB)"
    )
    for name, m in sorted(stats.items()):
        recall = {k: v for k, v in m.items() if k.startswith("ann_recall_at_")}
        print(
            f"  {name}: read+check {m.get('scan_seconds', m.get('embed_seconds', 0)):.1f} s, index "
            f"{m.get('index_seconds', 0):.1f} s, search {m.get('search_seconds', 0):.1f} s, "
            f"nDCG@10 {m.get('ndcg_at_10', float('nan')):.4f}, parts {m.get('catalog_parts', 0):.0f}"
            + "".join(f", {k} {v:.4f}" for k, v in recall.items())
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=10_000_000)
    ap.add_argument("--ab-items", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--parts", type=int, default=20)
    ap.add_argument("--big-versions", type=int, default=1, choices=(1, 2))
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--pq-m", type=int, default=32)
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--train-sample", type=int, default=100_000)
    ap.add_argument("--recall-sample", type=int, default=500)
    ap.add_argument("--work", type=Path, default=Path("/tmp/evalkit-bench-ray"))
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-ab", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep --work afterwards")
    a = ap.parse_args()
    work = a.work.resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    results = {}
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM, "
        f"Python {platform.python_version()}, load avg {os.getloadavg()[0]:.1f}"
    )
    db = f"sqlite:///{work}/mlflow.db"
    if not a.skip_big:
        big = work / "big"
        t0 = time.perf_counter()
        tables = build_tables(big / "data", a.items, a.queries)
        names = ["a", "b"][: a.big_versions]
        for seed, v in enumerate(names, start=10):
            build_version(big / v, a.items, a.dim, a.parts, seed, tables["first"])
        size = sum(p.stat().st_size for p in big.rglob("part-*.parquet")) / 2**30
        print(
            f"data: {a.items:,} items x {a.dim}-d x {len(names)} version(s) in {a.parts} Parquet "
            f"parts each ({size:.1f} GiB), {a.queries:,} queries, in {time.perf_counter() - t0:.0f} s"
        )
        extra = (
            "index=ivf",
            "index.codec=pq",
            f"index.pq_m={a.pq_m}",
            f"index.nlist={a.nlist}",
            f"index.nprobe={a.nprobe}",
            f"index.train_sample={a.train_sample}",
            f"index.ann_recall_sample={a.recall_sample}",
        )
        load = os.getloadavg()[0]
        r = run_cli(overrides(big, db, names, "ray", "big", *extra), work / "big.log")
        results["big"] = {**r, "load": load, "stats": version_metrics(db, "big")}
        show(f"engine=ray, IVF-PQ, {a.items:,} items (load {load:.1f})", r, results["big"]["stats"])
        shutil.rmtree(big / "a", ignore_errors=True)  # disk for the A/B
        shutil.rmtree(big / "b", ignore_errors=True)
        shutil.rmtree(work / "store", ignore_errors=True)
    if not a.skip_ab:
        ab = work / "ab"
        tables = build_tables(ab / "data", a.ab_items, a.queries)
        for seed, v in enumerate(["a", "b"], start=10):
            build_version(ab / v, a.ab_items, a.dim, max(1, a.parts // 4), seed, tables["first"])
        runs = {}
        for engine in ("local", "ray"):
            load = os.getloadavg()[0]
            exp = f"ab-{engine}"
            r = run_cli(overrides(ab, db, ["a", "b"], engine, exp), work / f"{exp}.log")
            runs[engine] = {**r, "load": load, "stats": version_metrics(db, exp)}
            show(
                f"A/B engine={engine}, flat, {a.ab_items:,} items (load {load:.1f})",
                r,
                runs[engine]["stats"],
            )
        same = all(
            runs["local"]["stats"][v].get("ndcg_at_10") == runs["ray"]["stats"][v].get("ndcg_at_10")
            for v in ("a", "b")
        )
        print(
            f"ratio ray / local: wall {runs['ray']['wall'] / runs['local']['wall']:.2f}x, peak memory "
            f"{runs['ray']['peak_total_gib'] / runs['local']['peak_total_gib']:.2f}x; "
            f"same metrics: {same}"
        )
        results["ab"] = runs
    (work / "results.json").write_text(json.dumps(results, indent=1, default=float))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
