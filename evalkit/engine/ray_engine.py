"""``engine=ray`` for one evaluation: a Ray session plus the two stages it runs remotely.

Embedding: :mod:`evalkit.engine.ray_embed`; search: :mod:`evalkit.engine.ray_search` or, for a
precomputed Parquet catalog, :mod:`evalkit.engine.ray_catalog`.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from evalkit.embed.vector_checks import NormSummary
from evalkit.engine.interface import Embedded, SearchJob
from evalkit.engine.local_engine import embed_for_search, read_embedded, searched
from evalkit.engine.ray_catalog import stream_catalog
from evalkit.engine.ray_embed import RemoteEmbedding, embed_on_ray
from evalkit.engine.ray_search import check_ray_index, index_key, ray_ranking
from evalkit.engine.resident import BuiltOnSearch, ResidentCatalog
from evalkit.engine.session import RaySession
from evalkit.engine.spec import EngineSpec
from evalkit.errors import ConfigError
from evalkit.pairs import Searched

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.data.schema import EvalData
    from evalkit.embed.cache import CacheSettings
    from evalkit.embed.model_version import EmbeddingResult, ModelVersion


class RayEngine:
    """Use as a context manager (starts / joins Ray, stops what it started)."""

    kind = "ray"

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

    def cache_dir(self, configured: str | None) -> str:
        """The store the workers' vectors go through (a temporary folder without a cache)."""
        if configured is not None:
            return configured
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="evalkit-ray-cache-")
        return self._tmp.name

    def embed(
        self,
        version: ModelVersion,
        data: EvalData,
        cache: CacheSettings,
        progress: bool = False,
        queries: EmbeddingResult | None = None,
    ) -> Embedded:
        """Fill the cache on a Ray Data actor pool, then read the vectors back here."""
        if version.brings_vectors:
            return read_embedded(version, data, cache, progress, queries)
        cache = replace(cache, root=self.cache_dir(cache.root))
        texts = {"document": data.embedded_texts(), "query": data.queries.texts}
        remote = self.embed_remote(version, texts, cache.root, progress)
        emb = read_embedded(version, data, cache, progress, queries)
        emb.remote = remote
        return emb

    def embed_remote(
        self, version: ModelVersion, texts: dict[str, list[str]], cache_dir: Any, progress: bool
    ) -> dict[str, RemoteEmbedding]:
        """Fill the store at ``cache_dir`` with the vectors of ``texts`` (per role) on Ray Data."""
        config = self.model_configs.get(version.name)
        if config is None:
            raise ConfigError(f"engine=ray: no config for model version {version.name!r}")
        http = version.calls_endpoint
        workers = (
            self.spec.http_workers if http else (self.spec.embed_workers or self.session.cpus())
        )
        rows = self.spec.batch_rows or version.batch_size * max(1, version.concurrency)
        cpus = self.spec.http_num_cpus if http else 1
        return embed_on_ray(version, config, texts, cache_dir, workers, rows, cpus, progress)

    def search(self, version: ModelVersion, data: EvalData, job: SearchJob) -> Searched:
        """Search the sharded catalog on Ray tasks (a precomputed Parquet catalog is streamed)."""
        check_ray_index(job.spec)  # before anything is embedded
        if version.streams("document"):
            return self._stream(version, data, job)
        catalog, queries, remote, stats = embed_for_search(self, version, data, job)
        params = job.spec.params() | {"index.train_sample": job.spec.train_sample}
        extra = {"text_field": str(data.text_field), "shard_rows": self.spec.shard_rows}
        key = index_key(version, data, len(catalog), params, job.seed, **extra)
        ranking, search_stats = ray_ranking(
            vectors=catalog,
            queries=queries.vectors,
            query_ids=data.queries.ids,
            item_ids=data.catalog.ids,
            id_rank=job.id_rank,
            k=job.k,
            spec=job.spec,
            engine=self.spec,
            store_root=self.cache_dir(job.cache.root),
            key=key,
            seed=job.seed,
            progress=job.progress,
        )
        stats.update(search_stats)
        handle = BuiltOnSearch(catalog, job.spec)
        job.listeners.announce(
            ResidentCatalog(version.name, int(catalog.shape[1]), queries.vectors, handle)
        )
        del handle
        out = searched(ranking, queries, catalog, job.rows, stats, remote)
        del catalog
        return out

    def _stream(self, version: ModelVersion, data: EvalData, job: SearchJob) -> Searched:
        """A precomputed catalog read and indexed part by part by Ray tasks."""
        import ray

        t0 = time.perf_counter()
        queries = version.vectors_for(data.queries.ids, "query")
        read_s = time.perf_counter() - t0
        root = self.cache_dir(job.cache.root)
        cat = stream_catalog(ray, version, data, queries.vectors, job, root, self.spec.index_store)
        stats: dict[str, float] = {
            # reading the vectors: the queries here, the catalog's parts in pass 1
            "embed_seconds": read_s + cat.stats["scan_seconds"],
            "embed_requests": 0,
            "embed_cached": len(data.catalog) + len(data.queries),
            "embed_retries": 0,
            "embed_failed_requests": 0,
            "dim": int(cat.vectors.shape[1]),
            **(cat.norms + NormSummary.of(queries.vectors)).metrics(),
        }
        stats.update(cat.stats)
        return searched(cat.ranking, queries, cat.vectors, job.rows, stats, item_pos=cat.positions)
