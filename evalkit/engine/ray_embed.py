"""Embedding on Ray Data: the texts a version still needs, embedded by an actor pool, written to
the evalkit cache on the driver as the batches stream back.

One actor per worker holds one model version.  Vectors are cached before client-side truncation /
normalisation, so the driver reads them back as with ``engine=local``; a killed run resumes with
the batches in flight.  The texts to embed are staged as Parquet blocks under
``<cache.dir>/staging/<uuid>/`` (the store every node shares).

>>> plan_blocks(10, batch_rows=4, workers=2)
[(0, 4), (4, 8), (8, 10)]
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalkit import errors
from evalkit.embed.cache import VectorCache, as_key_array, text_keys
from evalkit.embed.embed_pass import storable
from evalkit.embed.model_version import RequestLog, check_role, check_texts
from evalkit.embed.store import Folder
from evalkit.errors import EndpointError, EvalkitError

log = logging.getLogger(__name__)

#: What an actor reports of its requests (:class:`~evalkit.embed.model_version.RequestLog`).
TALLY = ("latencies_s", "retries", "endpoints", "tokens", "usage_reports")


@dataclass
class RemoteEmbedding:
    """What the Ray workers did for one (version, role): counts, latencies, per-endpoint tallies."""

    n_cached: int = 0
    n_embedded: int = 0
    latencies_s: list[float] = field(default_factory=list)
    retries: int = 0
    endpoints: dict[str, dict[str, int]] = field(default_factory=dict)
    tokens: int = 0  # the tokens the responses reported, summed
    usage_reports: int = 0  # the responses that reported them

    @property
    def n_requests(self) -> int:
        return len(self.latencies_s)

    @property
    def reported_tokens(self) -> int | None:
        """The workers' tokens when every request reported them (None: unknown or none made)."""
        n = self.n_requests
        return self.tokens if n and self.usage_reports == n else None

    def add(self, tally: dict[str, Any]) -> None:
        self.latencies_s.extend(tally.get("latencies_s", []))
        for key in ("retries", "tokens", "usage_reports"):
            setattr(self, key, getattr(self, key) + int(tally.get(key, 0)))
        for url, counts in tally.get("endpoints", {}).items():
            row = self.endpoints.setdefault(url, {"requests": 0, "retries": 0, "failures": 0})
            for key, n in counts.items():
                row[key] = row.get(key, 0) + int(n)


class StagedTexts:
    """Parquet blocks of the texts to embed (a local folder or an fsspec URL); removed on exit."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.folder = Folder(cache_dir).child("staging").child(uuid.uuid4().hex)
        self.paths: list[str] = []
        self.filesystem: Any = None

    def __enter__(self) -> StagedTexts:
        self.folder.makedirs()
        if self.folder.remote:
            from pyarrow.fs import FSSpecHandler, PyFileSystem

            self.filesystem = PyFileSystem(FSSpecHandler(self.folder.fs))
        return self

    def write(
        self, todo: list[tuple[str, np.ndarray, list[str]]], blocks: list[tuple[int, int]]
    ) -> None:
        """One Parquet file per block of the (role, position, text) rows, in ``todo`` order."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        roles = np.concatenate([np.full(len(m), r, dtype=object) for r, m, _ in todo])
        pos = np.concatenate([m for _, m, _ in todo]).astype(np.int64)
        text = np.concatenate([np.asarray(u, dtype=object)[m] for _, m, u in todo])
        role, text = pa.array(roles, pa.string()), pa.array(text, pa.string())
        table = pa.table({"pos": pos, "role": role, "text": text})
        for b, (lo, hi) in enumerate(blocks):
            name = f"block-{b:06d}.parquet"
            path = self.folder._full(name) if self.folder.remote else str(self.folder.path / name)
            pq.write_table(table.slice(lo, hi - lo), path, filesystem=self.filesystem)
            self.paths.append(path)

    def __exit__(self, *exc: object) -> None:
        if self.folder.remote:
            with contextlib.suppress(FileNotFoundError):  # object stores have no empty folders
                self.folder.fs.rm(self.folder.root, recursive=True)
        else:
            shutil.rmtree(self.folder.path, ignore_errors=True)


def plan_blocks(n: int, batch_rows: int, workers: int) -> list[tuple[int, int]]:
    """Row ranges of the Ray Data blocks: whole batches, at least ~4 blocks per worker."""
    per_block = max(batch_rows, math.ceil(n / max(1, 4 * workers) / batch_rows) * batch_rows)
    return [(s, min(n, s + per_block)) for s in range(0, n, per_block)]


class EmbedActor:
    """Ray Data ``map_batches`` class: rows come back with raw vectors and JSON request tallies."""

    def __init__(self, config: dict[str, Any]) -> None:
        from evalkit.instantiate import build

        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.version = build(config, f"model version {config.get('name')!r}")

    def _embed(self, texts: list[str], role: str) -> tuple[np.ndarray, RequestLog]:
        bs = self.version.batch_size
        pieces = [texts[i : i + bs] for i in range(0, len(texts), bs)]
        parts: dict[int, np.ndarray] = {}
        rlog = RequestLog()
        self.version.embed_batches(
            pieces, role, on_batch=parts.__setitem__, request_log=rlog, finalize=False
        )
        return np.concatenate([parts[i] for i in sorted(parts)], axis=0), rlog

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return self._call(batch)
        except EvalkitError as err:  # Ray Data drops the exception's type and message: send them
            failure = {"error": type(err).__name__, "message": str(err)}
            return {
                "pos": np.asarray([-1], dtype=np.int64),
                "role": np.asarray([""], dtype=object),
                "vector": np.zeros((1, 1), dtype=np.float32),
                "tally": np.asarray([json.dumps(failure)], dtype=object),
            }

    def _call(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        roles = np.asarray(batch["role"]).astype(str)
        texts = np.asarray(batch["text"], dtype=object)
        out_pos, out_role, out_vec, out_tally = [], [], [], []
        for role in dict.fromkeys(roles.tolist()):
            take = np.flatnonzero(roles == role)
            vectors, rlog = self._embed([str(t) for t in texts[take]], role)
            tally = {"role": role, **{k: getattr(rlog, k) for k in TALLY}}
            out_pos.append(np.asarray(batch["pos"], dtype=np.int64)[take])
            out_role += [role] * len(take)
            out_vec.append(vectors.astype(np.float32, copy=False))
            out_tally += [json.dumps(tally)] + [""] * (len(take) - 1)
        return {
            "pos": np.concatenate(out_pos),
            "role": np.asarray(out_role, dtype=object),
            "vector": np.concatenate(out_vec, axis=0),
            "tally": np.asarray(out_tally, dtype=object),
        }


def evalkit_cause(err: BaseException) -> EvalkitError | None:
    """The evalkit error behind a Ray task / Ray Data failure, if any."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        inner = getattr(e, "cause", None)  # RayTaskError: the worker's original exception
        if isinstance(inner, EvalkitError):
            return inner
        if isinstance(e, EvalkitError) and not type(e).__module__.startswith("ray"):
            return e
        todo += [inner, e.__cause__, e.__context__]
    return None


@dataclass
class Pending:
    """Per role the unique texts' keys and open cache; the (role, positions, texts) to embed."""

    keys: dict[str, list[bytes]] = field(default_factory=dict)
    caches: dict[str, VectorCache] = field(default_factory=dict)
    todo: list[tuple[str, np.ndarray, list[str]]] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return sum(len(m) for _, m, _ in self.todo)


def embed_on_ray(
    version: Any,
    config: dict[str, Any],
    texts: dict[str, Sequence[str]],
    cache_dir: str | Path,
    workers: int,
    batch_rows: int,
    num_cpus: float,
    progress: bool = False,
) -> dict[str, RemoteEmbedding]:
    """Embed the texts (per role) missing from the cache on one Ray actor pool, cache them."""
    out: dict[str, RemoteEmbedding] = {}
    with contextlib.ExitStack() as stack:
        pending = pending_texts(version, texts, cache_dir, stack, out)
        if not pending.n_rows:
            return out
        staging = stack.enter_context(StagedTexts(cache_dir))
        blocks = plan_blocks(pending.n_rows, batch_rows, workers)
        staging.write(pending.todo, blocks)
        ds = actor_pool(staging, len(blocks), config, batch_rows, workers, num_cpus, progress)
        store_batches(ds, version, pending, out)
    for role, res in out.items():
        for url, counts in sorted(res.endpoints.items()):
            n = [counts[k] for k in ("requests", "retries", "failures")]
            what = "%s/%s endpoint %s: %d requests, %d retries, %d failures"
            log.info(what, version.name, role, url, *n)
    return out


def pending_texts(
    version: Any,
    texts: dict[str, Sequence[str]],
    cache_dir: str | Path,
    stack: contextlib.ExitStack,
    out: dict[str, RemoteEmbedding],
) -> Pending:
    """Each role's unique texts missing from its cache (opened on ``stack``, hits in ``out``)."""
    pending = Pending()
    for role, role_texts in texts.items():
        check_role(role)
        unique = list(dict.fromkeys(check_texts(role_texts)))
        out[role] = RemoteEmbedding()
        if not unique:
            continue
        keys = pending.keys[role] = text_keys(unique)
        cache = stack.enter_context(VectorCache(cache_dir, version.cache_spec(role)))
        pending.caches[role] = cache
        hit_pos, _ = cache.get(keys)
        out[role].n_cached = len(hit_pos)
        missing = np.setdiff1d(np.arange(len(unique)), hit_pos, assume_unique=True)
        if len(missing):
            pending.todo.append((role, missing, unique))
    return pending


def actor_pool(
    staging: StagedTexts,
    n_blocks: int,
    config: dict[str, Any],
    batch_rows: int,
    workers: int,
    num_cpus: float,
    progress: bool,
) -> Any:
    """The staged blocks read in zero-CPU tasks, mapped by a pool of ``workers`` EmbedActors."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = bool(progress)
    # Ray 2.60's default Parquet reader lists files in a task needing a whole CPU, which
    # never starts while the actor pool holds every CPU: list on the driver (the staged
    # block paths are known) and read in zero-CPU tasks.
    ctx.use_datasource_v2 = False
    return ray.data.read_parquet(
        staging.paths,
        filesystem=staging.filesystem,
        override_num_blocks=n_blocks,
        shuffle=None,
        # reading a staged block is light I/O: with one CPU each, the read tasks would wait
        # forever for the CPUs the embedding actors hold
        num_cpus=0,
    ).map_batches(
        EmbedActor,
        fn_constructor_kwargs={"config": config},
        batch_size=batch_rows,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=num_cpus,
    )


def store_batches(ds: Any, version: Any, pending: Pending, out: dict[str, RemoteEmbedding]) -> None:
    """Cache every batch as it arrives; other failures than evalkit errors become EndpointErrors."""
    done, n_rows = 0, pending.n_rows
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            done += store_batch(batch, pending, out)
            log.info("%s on Ray: %d/%d texts embedded", version.name, done, n_rows)
    except EvalkitError:
        raise
    except Exception as err:  # a worker's evalkit error becomes the run's one-line error
        cause = evalkit_cause(err)
        if cause is not None:
            raise cause from None
        first = str(err).strip().splitlines()
        raise EndpointError(
            f"model version {version.name!r}: embedding on Ray failed "
            f"({type(err).__name__}: {first[-1] if first else ''}); "
            f"{done} of {n_rows} texts were embedded and cached"
        ) from err


def store_batch(
    batch: dict[str, np.ndarray], pending: Pending, out: dict[str, RemoteEmbedding]
) -> int:
    """One batch into the caches and its tallies into ``out``; returns the rows stored."""
    tallies = [json.loads(t) for t in batch["tally"] if t]
    failure = next((t for t in tallies if "error" in t), None)
    if failure is not None:
        cls = getattr(errors, failure["error"], None)
        if not (isinstance(cls, type) and issubclass(cls, EvalkitError)):
            cls = EndpointError
        raise cls(failure.get("message", "embedding failed on a Ray worker"))
    column = batch["vector"]
    if column.dtype == object:  # ragged tensor column: rows are arrays
        column = np.stack(list(column))
    vectors = np.ascontiguousarray(column, dtype=np.float32)
    roles = np.asarray(batch["role"]).astype(str)
    for role in dict.fromkeys(roles.tolist()):
        take = np.flatnonzero(roles == role)
        role_keys = as_key_array([pending.keys[role][j] for j in batch["pos"][take]])
        pending.caches[role].put(*storable(role_keys, vectors[take]))
        out[role].n_embedded += len(take)
    for tally in tallies:
        out[tally["role"]].add(tally)
    return len(vectors)
