"""Start or join Ray for one evaluation, and stop only what was started.

Ray is an optional extra (``pip install -e ".[ray]"``); without it ``engine=ray`` stops with one
line saying so.  A cluster Ray started by someone else (``address: auto`` / ``ray://...``) is
only disconnected from, never shut down.

>>> require_ray.__doc__.split(".")[0]
'The ray module, or a ConfigError telling how to install it'
"""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any

from evalkit.engine.spec import EngineSpec
from evalkit.errors import ConfigError

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install -e ".[ray]"'


def require_ray() -> ModuleType:
    """The ray module, or a ConfigError telling how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is part of the extra
    except ImportError as err:
        raise ConfigError(
            f"engine=ray needs Ray, which is not installed ({err.name or err}): run {INSTALL_HINT}"
        ) from None
    return ray


def init_args(spec: EngineSpec) -> dict[str, Any]:
    """``ray.init`` keyword arguments for ``spec`` (resource sizes only when starting Ray).

    >>> init_args(EngineSpec(kind="ray", num_cpus=2))["num_cpus"]
    2
    >>> "num_cpus" in init_args(EngineSpec(kind="ray", address="auto", num_cpus=2))
    False
    """
    args: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    if spec.address is not None:
        args["address"] = spec.address
        return args
    args["include_dashboard"] = spec.include_dashboard
    args["_node_ip_address"] = "127.0.0.1"  # a Ray of our own serves this machine only
    args["num_cpus"] = spec.num_cpus or os.cpu_count() or 1
    if spec.object_store_memory:
        args["object_store_memory"] = spec.object_store_memory
    return args


class RaySession:
    """Context manager: Ray connected for the duration; shut down on exit only if started here.

    An already initialised Ray (a test's, or a Hydra Ray launcher job's) is reused as is.
    """

    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self.started = False
        self.ray: ModuleType | None = None

    def __enter__(self) -> RaySession:
        ray = require_ray()
        self.ray = ray
        if ray.is_initialized():
            log.info("engine=ray: using the Ray already connected in this process")
            return self
        args = init_args(self.spec)
        try:
            ray.init(**args)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = self.spec.address or "a new local Ray"
            raise ConfigError(
                f"engine.address={self.spec.address!r}: cannot connect to {where} "
                f"({str(err).splitlines()[0] if str(err) else type(err).__name__})"
            ) from None
        self.started = True
        res = ray.cluster_resources()
        log.info(
            "engine=ray: %s Ray with %g CPUs",
            "joined" if self.spec.address else "started",
            res.get("CPU", 0),
        )
        return self

    def cpus(self) -> int:
        assert self.ray is not None
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def __exit__(self, *exc: object) -> None:
        if self.started and self.ray is not None:
            self.ray.shutdown()
            self.started = False
