"""Start or join Ray for one evaluation, and stop only what was started.

Ray is an optional extra (``pip install -e ".[ray]"``); without it ``engine=ray`` stops with one
line saying so.  Without ``engine.address`` evalkit starts its own local Ray
(``ray.init(address="local")``), whatever other Ray runs on the machine and whatever a stale
``<ray temp dir>/ray_current_cluster`` file (left by a head killed without ``ray stop``) or
``RAY_ADDRESS`` names; ``engine.address=auto`` / ``host:port`` / ``ray://...`` joins that
cluster, which is only disconnected from, never shut down.

Unless ``verbose=true`` (``EngineSpec.verbose``), Ray stays quiet on evalkit's stderr: its
Python loggers (``ray``, Ray Data's console handler) at WARNING, workers' output not forwarded
to the driver (``log_to_driver=False``; errors still come back as exceptions) and the C++ core's
lines (``core_worker.cc``) filtered off file descriptor 2 (:mod:`evalkit.engine.native_log`).
Ray keeps all of them in its own log files (``<ray temp dir>/session_latest/logs/``).

>>> require_ray.__doc__.split(".")[0]
'The ray module, or a ConfigError telling how to install it'
"""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any

from evalkit.engine.native_log import NativeLogFilter
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


def quiet_ray_loggers(verbose: bool) -> None:
    """Ray's Python loggers at WARNING on the console (INFO with ``verbose``).

    Ray Data logs each execution at INFO through its own console handler (the ``ray.data``
    logger does not propagate); its file handler keeps everything in Ray's session logs.
    """
    level = logging.INFO if verbose else logging.WARNING
    logging.getLogger("ray").setLevel(level)
    for handler in logging.getLogger("ray.data").handlers:
        if handler.get_name() == "console" or type(handler).__name__ == "PlainRayHandler":
            handler.setLevel(level)


def init_args(spec: EngineSpec) -> dict[str, Any]:
    """``ray.init`` keyword arguments for ``spec`` (resource sizes only when starting Ray).

    >>> args = init_args(EngineSpec(kind="ray", num_cpus=2))
    >>> args["address"], args["num_cpus"], args["log_to_driver"]
    ('local', 2, False)
    >>> "num_cpus" in init_args(EngineSpec(kind="ray", address="auto", num_cpus=2))
    False
    """
    args: dict[str, Any] = {
        "logging_level": logging.INFO if spec.verbose else logging.WARNING,
        "log_to_driver": spec.verbose,
    }
    if spec.joins_cluster:
        args["address"] = spec.address
        return args
    args["address"] = "local"  # our own Ray, never one a stale address file or RAY_ADDRESS names
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
        self._filter: NativeLogFilter | None = None

    def __enter__(self) -> RaySession:
        ray = require_ray()
        self.ray = ray
        quiet_ray_loggers(self.spec.verbose)
        if ray.is_initialized():
            log.info("engine=ray: using the Ray already connected in this process")
            self._filter_native_lines()
            return self
        args = init_args(self.spec)
        try:
            ray.init(**args)
        except (ConnectionError, RuntimeError, ValueError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            if self.spec.joins_cluster:
                raise ConfigError(
                    f"engine.address={self.spec.address!r}: cannot connect to that Ray cluster "
                    f"({reason})"
                ) from None
            raise ConfigError(
                f"engine=ray: cannot start a local Ray ({reason}) (expected engine.num_cpus / "
                "engine.object_store_memory this machine can give; or engine.address=auto to "
                "join the Ray running here)"
            ) from None
        self.started = True
        self._filter_native_lines()
        res = ray.cluster_resources()
        log.info(
            "engine=ray: %s Ray with %g CPUs",
            "joined" if self.spec.joins_cluster else "started a local",
            res.get("CPU", 0),
        )
        return self

    def _filter_native_lines(self) -> None:
        if not self.spec.verbose and self._filter is None:
            try:
                self._filter = NativeLogFilter().__enter__()
            except OSError as err:  # no file descriptor 2 to put a pipe in front of
                log.debug("engine=ray: Ray's C++ log lines not filtered (%s)", err)

    def cpus(self) -> int:
        assert self.ray is not None
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def __exit__(self, *exc: object) -> None:
        try:
            if self.started and self.ray is not None:
                self.ray.shutdown()
                self.started = False
        finally:
            if self._filter is not None:
                self._filter.__exit__(*exc)
                self._filter = None
