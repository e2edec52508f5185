"""``engine=ray`` for one evaluation: a Ray session plus the two stages it runs remotely.

:class:`RayEngine` is what :func:`evalkit.evaluate_version.evaluate_version` receives: ``embed``
fills the cache on a Ray Data actor pool (:mod:`evalkit.engine.ray_embed`), ``rank`` searches the
sharded catalog on Ray tasks (:mod:`evalkit.engine.ray_search`), and ``stream`` evaluates a
precomputed Parquet catalog part by part without reading it on the driver
(:mod:`evalkit.engine.ray_catalog`).  Everything else stays on the driver.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.engine.ray_embed import RemoteEmbedding, embed_on_ray
from evalkit.engine.ray_search import index_key, ray_ranking
from evalkit.engine.session import RaySession
from evalkit.engine.spec import EngineSpec
from evalkit.errors import ConfigError
from evalkit.index.faiss_index import IndexSpec
from evalkit.retrieve.ranking import Ranking

log = logging.getLogger(__name__)


def is_http(version: Any) -> bool:
    """Whether a version calls an HTTP endpoint (its actors mostly wait on the network)."""
    return getattr(version, "endpoints", None) is not None


class RayEngine:
    """Use as a context manager (starts / joins Ray, stops what it started)."""

    def __init__(self, spec: EngineSpec, model_configs: dict[str, dict[str, Any]]) -> None:
        self.spec = spec
        self.model_configs = model_configs
        self.session = RaySession(spec)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> RayEngine:
        self.session.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self.session.__exit__(*exc)

    def cache_dir(self, configured: Path | None) -> Path:
        """The cache the workers' vectors go through (a temporary one with ``cache.enabled=false``)."""
        if configured is not None:
            return configured
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="evalkit-ray-cache-")
        return Path(self._tmp.name)

    def embed(
        self, version: Any, texts: dict[str, list[str]], cache_dir: Path, progress: bool
    ) -> dict[str, RemoteEmbedding]:
        """Fill the cache with ``version``'s vectors of ``texts`` (per role) on Ray Data."""
        config = self.model_configs.get(version.name)
        if config is None:
            raise ConfigError(f"engine=ray: no config for model version {version.name!r}")
        http = is_http(version)
        workers = (
            self.spec.http_workers if http else (self.spec.embed_workers or self.session.cpus())
        )
        rows = self.spec.batch_rows or version.batch_size * max(1, version.concurrency)
        return embed_on_ray(
            version=version,
            config=config,
            texts=texts,
            cache_dir=cache_dir,
            workers=workers,
            batch_rows=rows,
            num_cpus=self.spec.http_num_cpus if http else 1,
            progress=progress,
        )

    def streams(self, version: Any) -> bool:
        """Whether ``version``'s catalog is read part by part on Ray (precomputed Parquet)."""
        check = getattr(version, "streams", None)
        return bool(check is not None and check("document"))

    def stream(
        self, version: Any, data: Any, cfg: Any, spec: IndexSpec, id_rank: np.ndarray, rows: Any
    ) -> Any:
        """Search a precomputed catalog read, checked and indexed by Ray tasks, part by part;
        the driver holds the queries and the judged / clicked items' vectors only."""
        import ray

        from evalkit.embed.vector_checks import NormSummary
        from evalkit.engine.ray_catalog import stream_catalog
        from evalkit.evaluate_version import Searched, click_pair_similarity, pair_similarity

        t0 = time.perf_counter()
        queries = version.vectors_for(data.queries.ids, "query")
        read_s = time.perf_counter() - t0
        want = rows.judged_i
        if rows.click_i is not None:
            want = np.union1d(want, rows.click_i[rows.click_i >= 0])
        cache = self.cache_dir(str(cfg.cache.dir) if cfg.cache.enabled else None)
        cat = stream_catalog(
            ray=ray,
            version=version,
            data=data,
            queries=queries.vectors,
            spec=spec,
            k=int(cfg.k),
            id_rank=id_rank,
            want=np.unique(want),
            store_root=cache,
            index_store=self.spec.index_store,
            seed=int(cfg.seed),
            progress=bool(cfg.progress),
        )
        q = queries.vectors
        stats: dict[str, float] = {
            # reading the vectors: the queries here, the catalog's parts in pass 1
            "embed_seconds": read_s + cat.stats["scan_seconds"],
            "embed_requests": 0,
            "embed_cached": len(data.catalog) + len(data.queries),
            "embed_retries": 0,
            "embed_failed_requests": 0,
            "dim": cat.dim,
            **(cat.norms + NormSummary.of(q)).metrics(),
        }
        stats.update(cat.stats)
        stats["ties"] = cat.ranking.ties
        stats["boundary_ties"] = cat.ranking.boundary_ties
        similarity = pair_similarity(
            q, cat.vectors, rows.judged_q, cat.positions(rows.judged_i), normalize=False
        )
        clicks = click_pair_similarity(q, cat.vectors, rows, cat.positions)
        return Searched(queries, cat.ranking, stats, similarity, clicks, {})

    def rank(
        self,
        *,
        version: Any,
        doc_vectors: np.ndarray,
        query_vectors: np.ndarray,
        data: Any,
        spec: IndexSpec,
        k: int,
        id_rank: np.ndarray,
        store_root: Path | None,
        seed: int,
        progress: bool,
    ) -> tuple[Ranking, dict[str, float]]:
        key = index_key(
            version.spec("document"),
            str(data.fingerprint.get("catalog", "")),
            str(data.text_field),
            len(doc_vectors),
            spec.params() | {"index.train_sample": spec.train_sample},
            self.spec.shard_rows,
            seed,
        )
        return ray_ranking(
            vectors=doc_vectors,
            queries=query_vectors,
            query_ids=data.queries.ids,
            item_ids=data.catalog.ids,
            id_rank=id_rank,
            k=k,
            spec=spec,
            engine=self.spec,
            store_root=store_root,
            key=key,
            seed=seed,
            progress=progress,
        )
