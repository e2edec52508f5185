"""Where the heavy stages run: ``local`` (in this process, the default) or ``ray``.

``conf/engine/*.yaml`` builds an :class:`EngineSpec`; scoring and reporting stay on the driver.

>>> EngineSpec().kind, EngineSpec(kind="ray").address is None
('local', True)
>>> EngineSpec(kind="spark")
Traceback (most recent call last):
...
evalkit.errors.ConfigError: engine.kind='spark' is unknown (expected 'local' or 'ray')
"""

from __future__ import annotations

from dataclasses import dataclass

from evalkit.errors import ConfigError

KINDS = ("local", "ray")


def _positive(key: str, value: object, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        expected = "null or an integer >= 1" if allow_none else "an integer >= 1"
        raise ConfigError(f"engine.{key}={value!r} is invalid (expected {expected})")


@dataclass(frozen=True)
class EngineSpec:
    """The ``engine`` config group.

    Attributes:
        kind: ``local`` (everything in this process) or ``ray`` (Ray Data, Ray tasks).
        address: null / ``local``: start a local Ray; ``auto``, ``host:port``, ``ray://...``: join.
        num_cpus: CPUs of a local Ray (null = all); only when starting one.
        object_store_memory: bytes of a local Ray's object store (null = Ray's default).
        include_dashboard: start the Ray dashboard with a local Ray.
        embed_workers: actors per in-process model version (null = the cluster's CPUs).
        http_workers: actors per OpenAI-compatible version (each ``concurrency`` requests).
        http_num_cpus: CPUs reserved per HTTP actor.
        batch_rows: texts per Ray Data batch (null = the version's batch_size x concurrency).
        shard_rows: catalog rows per search shard (one Ray task each).
        index_store: save IVF shard indexes under ``<cache.dir>/indexes`` and reuse them.
        verbose: Ray's INFO lines, workers' output and C++ core lines on stderr.
    """

    kind: str = "local"
    address: str | None = None
    num_cpus: int | None = None
    object_store_memory: int | None = None
    include_dashboard: bool = False
    embed_workers: int | None = None
    http_workers: int = 1
    http_num_cpus: float = 0.5
    batch_rows: int | None = None
    shard_rows: int = 1_000_000
    index_store: bool = True
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"engine.kind={self.kind!r} is unknown (expected 'local' or 'ray')")
        address = self.address
        if address is not None and not (
            address in ("auto", "local") or str(address).startswith("ray://") or ":" in str(address)
        ):
            raise ConfigError(
                f"engine.address={self.address!r} is invalid (expected null, local, auto, "
                "ray://host:port or host:port)"
            )
        for key in ("num_cpus", "object_store_memory", "embed_workers", "batch_rows"):
            _positive(key, getattr(self, key))
        _positive("http_workers", self.http_workers, allow_none=False)
        _positive("shard_rows", self.shard_rows, allow_none=False)
        cpus = self.http_num_cpus
        if isinstance(cpus, bool) or not isinstance(cpus, int | float) or not cpus > 0:
            raise ConfigError(f"engine.http_num_cpus={cpus!r} is invalid (expected a number > 0)")

    @property
    def distributed(self) -> bool:
        return self.kind == "ray"

    @property
    def joins_cluster(self) -> bool:
        return self.kind == "ray" and self.address not in (None, "local")

    def params(self) -> dict[str, object]:
        """MLflow params (``engine.kind``, ``engine.address``)."""
        return {
            "engine.kind": self.kind,
            "engine.address": self.address if self.joins_cluster else "",
        }
