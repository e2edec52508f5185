"""Search past RAM on Ray: the catalog in shards, one Ray task per shard, top-k merged on the driver.

The shards' rows are written once as ``vectors-<i>.npy`` under ``<cache.dir>/indexes/<key>/`` and
memory-mapped by the tasks.  ``index=flat`` ranks byte-identically to ``engine=local``;
``index=ivf`` trains one IVF on the driver, Ray tasks add the shards to copies of it, and a rerun
finding the same key in ``manifest.json`` reuses them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from evalkit.embed.cache import spec_hash
from evalkit.engine.spec import EngineSpec
from evalkit.errors import ConfigError
from evalkit.index.cost import flat_bytes, sharded_cost
from evalkit.index.faiss_index import IndexSpec, ann_recall, trained_ivf, training_rows
from evalkit.retrieve.ranking import Ranking
from evalkit.retrieve.replay import replay
from evalkit.retrieve.sharded import Shard, ShardedIndex, add_to_shard, search_shard, split_rows

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def index_key(
    version: Any, data: Any, n: int, index: dict[str, Any], seed: int, **extra: Any
) -> str:
    """Hex key of a stored index of ``n`` catalog vectors of ``version`` (``extra``: more keys)."""
    catalog = str(data.fingerprint.get("catalog", ""))
    spec = {"vectors": version.spec("document"), "catalog": catalog, "n": n, "index": index}
    return spec_hash(spec | {"seed": seed, **extra})[:32]


def _search_task(
    start: int,
    stop: int,
    path: str | None,
    vectors: Any,
    queries: np.ndarray,
    depth: int,
    nprobe: int,
) -> tuple[np.ndarray, np.ndarray]:
    faiss.omp_set_num_threads(1)
    return search_shard(Shard(start, stop, None, path), _rows(vectors), queries, depth, nprobe)


def _add_task(trained: np.ndarray, vectors: Any, start: int, path: str) -> str:
    faiss.omp_set_num_threads(1)
    return add_to_shard(trained, _rows(vectors), start, path)


def _rows(vectors: Any) -> Any:
    return np.load(vectors, mmap_mode="r") if isinstance(vectors, str) else vectors


def write_vector_shards(
    folder: Path, vectors: np.ndarray, ranges: list[tuple[int, int]]
) -> list[str]:
    """Each shard's rows as ``vectors-<i>.npy`` in ``folder`` (a file with the right shape kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (a, b) in enumerate(ranges):
        path = folder / f"vectors-{i:05d}.npy"
        paths.append(str(path))
        with contextlib.suppress(ValueError):
            if path.exists() and np.load(path, mmap_mode="r").shape == (b - a, vectors.shape[1]):
                continue
        tmp = folder / f".vectors-{i:05d}.{uuid.uuid4().hex}.npy"
        np.save(tmp, np.ascontiguousarray(vectors[a:b], dtype=np.float32))
        os.replace(tmp, path)
    return paths


def ray_runner(ray: Any):  # noqa: ANN201 - a ShardRunner
    """A shard runner searching every shard as a Ray task."""
    remote = ray.remote(num_cpus=1)(_search_task)

    def run(shards, queries, depth, nprobe):  # type: ignore[no-untyped-def]
        qref = ray.put(np.ascontiguousarray(queries, dtype=np.float32))
        futures = [
            remote.remote(s.start, s.stop, s.path, s.vectors, qref, depth, nprobe) for s in shards
        ]
        return ray.get(futures)

    return run


def read_manifest(folder: Path, key: str) -> dict[str, Any] | None:
    """``folder``'s ``manifest.json`` if it was written for ``key``."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("key") == key else None


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """``folder``'s ``manifest.json`` (written last, it marks a finished index)."""
    tmp = folder / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def ann_sample(n_queries: int, spec: IndexSpec, seed: int) -> np.ndarray:
    """Rows of the queries searched exactly for ``ann_recall_at_<k>`` (none with exact search).

    >>> ann_sample(5, IndexSpec(kind="ivf", ann_recall_sample=0), 0).tolist()
    [0, 1, 2, 3, 4]
    """
    if spec.exact:
        return np.zeros(0, dtype=np.int64)
    take = np.arange(n_queries)
    if spec.ann_recall_sample and n_queries > spec.ann_recall_sample:
        rng = np.random.default_rng(seed)
        take = np.sort(rng.choice(n_queries, spec.ann_recall_sample, replace=False))
    return take


def stored_trained(
    folder: Path, sample: Callable[[], np.ndarray], n_total: int, spec: IndexSpec
) -> np.ndarray:
    """The serialised trained IVF of ``folder``, trained on ``sample()`` and stored if absent."""
    stored = folder / "trained.faissindex"
    if stored.exists():
        return np.fromfile(stored, dtype=np.uint8)
    trained = faiss.serialize_index(trained_ivf(sample(), n_total, spec))
    tmp = folder / f".trained.{uuid.uuid4().hex}.tmp"
    trained.tofile(tmp)
    os.replace(tmp, stored)
    return trained


def ivf_shards(
    ray: Any,
    vector_refs: list[Any],
    ranges: list[tuple[int, int]],
    vectors: np.ndarray,
    spec: IndexSpec,
    folder: Path,
    key: str,
    seed: int,
) -> tuple[list[Shard], bool]:
    """The IVF shards stored in ``folder`` for ``key`` and True, else built here and False."""
    manifest = read_manifest(folder, key)
    if manifest is not None:
        stored = [
            Shard(s["start"], s["stop"], None, str(folder / s["file"])) for s in manifest["shards"]
        ]
        if all(Path(s.path).exists() for s in stored if s.path):
            return stored, True
    folder.mkdir(parents=True, exist_ok=True)
    trained = stored_trained(
        folder, lambda: vectors[training_rows(len(vectors), spec, seed)], len(vectors), spec
    )
    tref = ray.put(trained)
    add = ray.remote(num_cpus=1)(_add_task)
    files = [f"shard-{i:05d}.faissindex" for i in range(len(ranges))]
    futures = [
        add.remote(tref, ref, start, str(folder / name))
        for (start, _), ref, name in zip(ranges, vector_refs, files)
        if not (folder / name).exists()  # a resumed build redoes only the missing shards
    ]
    ray.get(futures)
    shards = [{"start": a, "stop": b, "file": f} for (a, b), f in zip(ranges, files)]
    write_manifest(folder, {"key": key, "index": spec.params(), "shards": shards})
    return [Shard(a, b, None, str(folder / f)) for (a, b), f in zip(ranges, files)], False


def index_folder(
    store_root: Path | str | None, index_store: bool, key: str, prefix: str
) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """``<store_root>/indexes/<key>/``, or a temporary folder (also returned, to clean up)."""
    if store_root is not None and index_store:
        return Path(store_root) / "indexes" / key, None
    tmp_dir = tempfile.TemporaryDirectory(prefix=prefix)
    return Path(tmp_dir.name), tmp_dir


def check_ray_index(spec: IndexSpec) -> None:
    """``engine=ray`` shards exact fp32 flat search or IVF; anything else is a ConfigError.

    >>> check_ray_index(IndexSpec(precision="binary"))
    Traceback (most recent call last):
    ...
    evalkit.errors.ConfigError: index=flat index.precision=binary cannot be sharded on Ray (engine=ray supports index=flat with index.precision=fp32, or index=ivf with index.codec=flat|sq8|pq; use engine=local for index.precision=fp16|sq8|sq4|binary and index=hnsw)
    """
    if spec.kind == "hnsw" or spec.precision != "fp32":
        what = f"index.precision={spec.precision}" if spec.precision != "fp32" else ""
        raise ConfigError(
            f"index={spec.kind} {what}".strip() + " cannot be sharded on Ray (engine=ray "
            "supports index=flat with index.precision=fp32, or index=ivf with "
            "index.codec=flat|sq8|pq; use engine=local for index.precision=fp16|sq8|sq4|binary "
            "and index=hnsw)"
        )


def ray_ranking(
    *,
    vectors: np.ndarray,
    queries: np.ndarray,
    query_ids: list[str],
    item_ids: list[str],
    id_rank: np.ndarray,
    k: int,
    spec: IndexSpec,
    engine: EngineSpec,
    store_root: Path | None,
    key: str,
    seed: int,
    progress: bool = False,
) -> tuple[Ranking, dict[str, float]]:
    """Rank every query over the sharded catalog on Ray: the ranking and run stats."""
    import ray

    check_ray_index(spec)
    t0 = time.perf_counter()
    ranges = split_rows(len(vectors), engine.shard_rows)
    folder, tmp_dir = index_folder(store_root, engine.index_store, key, "evalkit-shards-")
    refs = write_vector_shards(folder, vectors, ranges)
    exact_shards = [Shard(a, b, ref) for (a, b), ref in zip(ranges, refs)]
    runner = ray_runner(ray)
    if spec.kind == "flat":  # exact shards search the .npy rows: an IndexFlatIP's size each
        shards, reused = exact_shards, False
        size = sum(flat_bytes(s.size, vectors.shape[1]) for s in shards)
    else:
        shards, reused = ivf_shards(ray, refs, ranges, vectors, spec, folder, key, seed)
        how = "reused" if reused else "built"
        log.info("IVF index in %d shard(s) at %s (%s)", len(shards), folder, how)
        size = sum(os.path.getsize(s.path) for s in shards if s.path)
    stats = {
        "index_reused": float(reused),
        "index_seconds": time.perf_counter() - t0,
        "index_shards": float(len(shards)),
        **sharded_cost(size, len(vectors)),
    }
    try:
        t0 = time.perf_counter()
        index = ShardedIndex(shards, id_rank, runner, nprobe=spec.nprobe)
        ranking = replay(
            index, queries, query_ids, item_ids, k, spec.search_batch, progress, id_rank
        )
        stats["search_seconds"] = time.perf_counter() - t0
        if not spec.exact:
            take = ann_sample(len(queries), spec, seed)
            exact = ShardedIndex(exact_shards, id_rank, runner)
            _, exact_rows = exact.search(queries[take], min(k, len(vectors)))
            stats[f"ann_recall_at_{k}"] = ann_recall(ranking.indices[take], exact_rows, ranking.k)
    finally:
        if tmp_dir is not None:
            tmp_dir.cleanup()
    return ranking, stats
