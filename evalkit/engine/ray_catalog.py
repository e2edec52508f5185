"""A precomputed catalog past one machine: its Parquet parts read, checked and indexed where they
are, by Ray tasks; the driver only ever holds the few rows it asks for.

Pass 1 (:func:`scan_part`, one Ray task per part) reads and checks a part and returns the raw
vectors the driver asked for (IVF training sample, judged / clicked items).  Pass 2
(:func:`index_part`) adds each part to a copy of the trained (or a flat) index, kept under
``<cache.dir>/indexes/<key>/``.  ``engine=ray`` ranks as ``engine=local``.  How-to:
docs/how-to/ray.md.

>>> ids = ["b", "a", "c"]
>>> lookup = CatalogLookup.of(ids, np.array([1, 0, 2]))
>>> lookup.rows(np.array(["c", "x", "b"], dtype=object)).tolist()
[2, -1, 0]
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from evalkit.embed.precomputed import check_parts, read_parquet_vectors, vector_parts
from evalkit.embed.store import unit_norm
from evalkit.embed.vector_checks import NormSummary
from evalkit.engine.interface import SearchJob
from evalkit.engine.local_engine import checked_dims, replay_job
from evalkit.engine.ray_search import (
    ann_sample,
    index_folder,
    index_key,
    ray_runner,
    read_manifest,
    stored_trained,
    write_manifest,
)
from evalkit.errors import DataError
from evalkit.index.cost import sharded_cost
from evalkit.index.faiss_index import IndexSpec, ann_recall, ivf_nlist, training_rows
from evalkit.retrieve.ranking import Ranking
from evalkit.retrieve.sharded import Shard, ShardedIndex, add_to_shard, merge_topk

log = logging.getLogger(__name__)

TRAIN_CAP = 500_000  # rows an IVF is trained on when index.train_sample is 0 (FAISS keeps 256/list)


@dataclass(frozen=True)
class CatalogLookup:
    """Catalog ids sorted as UTF-8 bytes and their rows: ids map to rows by binary search."""

    sorted_ids: np.ndarray  # fixed-width bytes, ascending
    order: np.ndarray  # catalog row of each sorted id

    @classmethod
    def of(cls, ids: list[str], id_rank: np.ndarray) -> CatalogLookup:
        order = np.empty(len(ids), dtype=np.int64)
        order[id_rank] = np.arange(len(ids), dtype=np.int64)
        encoded = np.asarray([s.encode("utf-8") for s in ids], dtype=bytes)
        return cls(encoded[order], order)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Catalog row of every id (``-1`` for ids not in the catalog)."""
        if not len(self.sorted_ids) or not len(ids):
            return np.full(len(ids), -1, dtype=np.int64)
        keys = np.asarray([str(s).encode("utf-8") for s in ids], dtype=bytes)
        pos = np.minimum(np.searchsorted(self.sorted_ids, keys), len(self.sorted_ids) - 1)
        found = self.sorted_ids[pos] == keys
        return np.where(found, self.order[pos], -1).astype(np.int64)


def load_part(
    path: str, columns: tuple[str, str], lookup: CatalogLookup
) -> tuple[np.ndarray, np.ndarray]:
    """(catalog row of every row, raw vectors) of one checked part."""
    ids, vectors = read_parquet_vectors(path, *columns)
    check_parts(path, ids, vectors, columns[0])
    return lookup.rows(ids), vectors


def _kept(vectors: np.ndarray, used: np.ndarray) -> np.ndarray:
    return vectors if used.all() else vectors[used]


def scan_part(
    path: str, columns: tuple[str, str], lookup: CatalogLookup, want: np.ndarray
) -> dict[str, Any]:
    """Pass 1 on one part: catalog rows, dimension, unit-norm flag, raw vectors of ``want`` rows."""
    faiss.omp_set_num_threads(1)
    rows, vectors = load_part(path, columns, lookup)
    used = rows >= 0
    held = used & np.isin(rows, want, assume_unique=False)
    return {
        "rows": rows,
        "dim": int(vectors.shape[1]),
        "unit": unit_norm(_kept(vectors, used)),
        "want_rows": rows[held],
        "want_vectors": np.ascontiguousarray(vectors[held], dtype=np.float32),
    }


def index_part(
    path: str,
    columns: tuple[str, str],
    lookup: CatalogLookup,
    version: Any,
    unit: bool,
    trained: np.ndarray | None,
    out_path: str | None,
    sample_queries: np.ndarray | None,
    depth: int,
) -> dict[str, Any]:
    """Pass 2 on one part: its index to ``out_path``, norm statistics, exact top-``depth``."""
    faiss.omp_set_num_threads(1)
    rows, raw = load_part(path, columns, lookup)
    used = rows >= 0
    rows = rows[used]
    vectors = version.finalize(_kept(raw, used), unit_norm=unit, in_place=True)
    del raw
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    out: dict[str, Any] = {"norms": NormSummary.of(vectors)}
    if out_path is not None:
        add_to_shard(trained, vectors, rows, out_path)
    if sample_queries is not None:
        k = min(depth, len(vectors))
        if k > 0:
            q = np.ascontiguousarray(sample_queries, dtype=np.float32)
            scores, local = faiss.knn(q, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
            out["exact"] = (scores, np.where(local >= 0, rows[np.maximum(local, 0)], -1))
        else:
            n_q = len(sample_queries)
            out["exact"] = (np.zeros((n_q, 0), np.float32), np.zeros((n_q, 0), np.int64))
    return out


@dataclass
class StreamedCatalog:
    """What the driver keeps: the ranking, the finalised vectors of the asked ``rows`` and stats."""

    ranking: Ranking
    rows: np.ndarray
    vectors: np.ndarray
    norms: NormSummary
    stats: dict[str, float] = field(default_factory=dict)

    def positions(self, catalog_rows: np.ndarray) -> np.ndarray:
        """Positions in :attr:`vectors` of catalog rows that were asked for."""
        return np.searchsorted(self.rows, np.asarray(catalog_rows, dtype=np.int64))


def check_coverage(
    catalog: str, parts: list[str], rows: list[np.ndarray], ids: list[str], field_name: str
) -> None:
    """Every catalog row has exactly one vector over all parts; else a DataError."""
    n = len(ids)
    counts = np.zeros(n, dtype=np.int64)
    for part, r in zip(parts, rows):
        counts += np.bincount(r[r >= 0], minlength=n)
        if (counts > 1).any():
            dup = int(np.flatnonzero(counts > 1)[0])
            raise DataError(
                f"id {ids[dup]!r} appears more than once (also in an earlier part)",
                file=part,
                row=int(np.flatnonzero(r == dup)[0]) + 1,
                field=field_name,
                expected="each id once over all parts",
            )
    absent = np.flatnonzero(counts == 0)
    if len(absent):
        raise DataError(
            f"{len(absent)} catalog id(s) of the evaluation have no vector, first {ids[absent[0]]!r}",
            file=catalog,
            field=field_name,
            expected="a vector for every catalog id",
        )


def part_signature(parts: list[str]) -> list[list[Any]]:
    """(path, size, mtime) of every part: a stored index is reused only for unchanged parts."""
    out = []
    for p in parts:
        try:
            st = os.stat(p)
            out.append([p, st.st_size, int(st.st_mtime)])
        except OSError:  # fsspec URL: the path alone
            out.append([p, None, None])
    return out


def gather(ray: Any, futures: list[Any]) -> list[Any]:
    """``ray.get`` whose failures surface as the worker's one-line evalkit error."""
    from evalkit.engine.ray_embed import evalkit_cause

    try:
        return ray.get(futures)
    except Exception as err:
        cause = evalkit_cause(err)
        if cause is not None:
            raise cause from None
        raise


@dataclass(frozen=True)
class StreamPlan:
    """What both passes read: parts, (id, vector) columns, catalog ids, training and asked rows."""

    catalog: str
    parts: list[str]
    columns: tuple[str, str]
    ids: list[str]
    lookup_ref: Any
    train: np.ndarray
    want: np.ndarray


@dataclass(frozen=True)
class ScannedCatalog:
    """Pass 1's result: the asked rows finalised, the unit-norm flag, each part's row count."""

    asked: np.ndarray
    unit: bool
    sizes: list[int]


def stream_catalog(
    ray: Any,
    version: Any,
    data: Any,
    queries: np.ndarray,
    job: SearchJob,
    store_root: Path | None,
    index_store: bool,
) -> StreamedCatalog:
    """Evaluate ``version``'s catalog part by part on Ray: plan, pass 1, pass 2, search."""
    spec, k, seed = job.spec, job.k, job.seed
    t0 = time.perf_counter()
    plan = plan_stream(ray, version, data, job)
    scanned = scan_parts(ray, plan, version, queries)
    stats: dict[str, float] = {"scan_seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    params = spec.params() | {"train_rows": len(plan.train)}
    key = index_key(version, data, len(plan.ids), params, seed, parts=part_signature(plan.parts))
    folder, tmp_dir = index_folder(store_root, index_store, key, "evalkit-parts-")
    take = ann_sample(len(queries), spec, seed)
    sample = None if spec.exact else np.ascontiguousarray(queries[take], dtype=np.float32)
    n = len(plan.ids)
    files, indexed, reused = index_parts(
        ray, plan, scanned, version, spec, folder, key, sample, min(k, n)
    )
    stats["index_reused"] = float(reused)
    stats["index_seconds"] = time.perf_counter() - t0
    stats["index_shards"] = float(len(files))
    stats["catalog_parts"] = float(len(plan.parts))  # marks a streamed catalog
    stats.update(sharded_cost(sum(os.path.getsize(f) for f in files), n))
    how = "reused" if reused else "built"
    what = "%s: %d part(s) of %s indexed at %s (%s)"
    log.info(what, version.name, len(plan.parts), plan.catalog, folder, how)
    norms = sum((p["norms"] for p in indexed), NormSummary())
    try:
        t0 = time.perf_counter()
        ranking = search_parts(ray, files, scanned.sizes, queries, data, job)
        stats["search_seconds"] = time.perf_counter() - t0
    finally:
        if tmp_dir is not None:
            tmp_dir.cleanup()
    if not spec.exact:
        _, exact_rows = merge_topk([p["exact"] for p in indexed], job.id_rank, min(k, n))
        stats[f"ann_recall_at_{k}"] = ann_recall(ranking.indices[take], exact_rows, ranking.k)
    return StreamedCatalog(ranking, plan.want, scanned.asked, norms, stats)


def plan_stream(ray: Any, version: Any, data: Any, job: SearchJob) -> StreamPlan:
    """The catalog's parts, the IVF training rows and the rows asked for (wanted and training)."""
    catalog, spec = version.files["document"], job.spec
    parts = vector_parts(catalog)
    ids = list(data.catalog.ids)
    n = len(ids)
    lookup_ref = ray.put(CatalogLookup.of(ids, job.id_rank))
    train = np.zeros(0, dtype=np.int64)
    if spec.kind == "ivf":
        sample = spec.train_sample or min(n, TRAIN_CAP, 256 * ivf_nlist(n, spec))
        train = training_rows(n, IndexSpec(kind="ivf", train_sample=sample), job.seed)
    want = np.union1d(np.asarray(job.rows.wanted_items(), dtype=np.int64), train)
    columns = (version.id_column, version.vector_column)
    return StreamPlan(catalog, parts, columns, ids, lookup_ref, train, want)


def scan_parts(ray: Any, plan: StreamPlan, version: Any, queries: np.ndarray) -> ScannedCatalog:
    """Pass 1: every part scanned by a Ray task; the asked rows gathered and finalised here."""
    scan = ray.remote(num_cpus=1)(scan_part)
    want_ref = ray.put(plan.want)
    scanned = gather(
        ray, [scan.remote(p, plan.columns, plan.lookup_ref, want_ref) for p in plan.parts]
    )
    check_part_dims(plan.parts, [s["dim"] for s in scanned], version.vector_column)
    rows = [s["rows"] for s in scanned]
    check_coverage(plan.catalog, plan.parts, rows, plan.ids, version.id_column)
    unit = all(s["unit"] for s in scanned)
    raw = np.empty((len(plan.want), scanned[0]["dim"]), dtype=np.float32)
    for s in scanned:
        raw[np.searchsorted(plan.want, s["want_rows"])] = s["want_vectors"]
    sizes = [int((r >= 0).sum()) for r in rows]
    del scanned, rows
    asked = version.finalize(raw, unit_norm=unit, in_place=True)
    checked_dims(version, asked, queries)
    return ScannedCatalog(asked, unit, sizes)


def check_part_dims(parts: list[str], dims: list[int], field_name: str) -> None:
    """One dimension in every part; else a DataError naming the first part that differs.

    >>> check_part_dims(["a", "b"], [8, 4], "vector")
    Traceback (most recent call last):
    ...
    evalkit.errors.DataError: b, field 'vector': vectors have 4 dimensions, a has 8 (expected one dimension in every part)
    """
    if len(set(dims)) > 1:
        odd = next(i for i, d in enumerate(dims) if d != dims[0])
        raise DataError(
            f"vectors have {dims[odd]} dimensions, {parts[0]} has {dims[0]}",
            file=parts[odd],
            field=field_name,
            expected="one dimension in every part",
        )


def index_parts(
    ray: Any,
    plan: StreamPlan,
    scanned: ScannedCatalog,
    version: Any,
    spec: IndexSpec,
    folder: Path,
    key: str,
    sample: np.ndarray | None,
    depth: int,
) -> tuple[list[str], list[dict[str, Any]], bool]:
    """Pass 2: every part indexed by a Ray task into ``folder``: (files, task reports, reused)."""
    files = [str(folder / f"part-{i:05d}.faissindex") for i in range(len(plan.parts))]
    reused = read_manifest(folder, key) is not None and all(Path(f).exists() for f in files)
    trained_ref = None
    if not reused:
        folder.mkdir(parents=True, exist_ok=True)
        if spec.kind == "ivf":
            rows = np.searchsorted(plan.want, plan.train)
            n = len(plan.ids)
            trained_ref = ray.put(stored_trained(folder, lambda: scanned.asked[rows], n, spec))
    sample_ref = None if sample is None else ray.put(sample)
    add = ray.remote(num_cpus=1)(index_part)
    refs = (plan.columns, plan.lookup_ref, ray.put(version), scanned.unit, trained_ref)
    futures = []
    for p, f in zip(plan.parts, files):
        out = None if reused or os.path.exists(f) else f  # a resumed build: the rest only
        futures.append(add.remote(p, *refs, out, sample_ref, depth))
    indexed = gather(ray, futures)
    if not reused:
        parts = [{"file": Path(f).name, "rows": n} for f, n in zip(files, scanned.sizes)]
        write_manifest(folder, {"key": key, "index": spec.params(), "parts": parts})
    return files, indexed, reused


def search_parts(
    ray: Any, files: list[str], sizes: list[int], queries: np.ndarray, data: Any, job: SearchJob
) -> Ranking:
    """Every query searched in every part's index as Ray tasks, top-``k`` merged here."""
    offsets = np.cumsum([0, *sizes])
    shards = [Shard(int(a), int(b), None, f) for a, b, f in zip(offsets, offsets[1:], files)]
    index = ShardedIndex(shards, job.id_rank, ray_runner(ray), nprobe=job.spec.nprobe)
    return replay_job(index, queries, data, job)
