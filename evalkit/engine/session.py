"""Start or join Ray for one evaluation, and stop only what was started.

Without ``engine.address`` evalkit starts its own local Ray; a cluster it joins is never shut
down.  Unless ``verbose=true`` Ray stays quiet on stderr.  How-to: docs/how-to/ray.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
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


def quiet_ray_loggers(verbose: bool) -> None:
    """Ray's Python loggers and Ray Data's console handler at WARNING (INFO with ``verbose``)."""
    level = logging.INFO if verbose else logging.WARNING
    logging.getLogger("ray").setLevel(level)
    for handler in logging.getLogger("ray.data").handlers:
        if handler.get_name() == "console" or type(handler).__name__ == "PlainRayHandler":
            handler.setLevel(level)


def init_args(spec: EngineSpec) -> dict[str, Any]:
    """``ray.init`` keyword arguments for ``spec`` (resource sizes only when starting Ray)."""
    args: dict[str, Any] = {
        "logging_level": logging.INFO if spec.verbose else logging.WARNING,
        "log_to_driver": spec.verbose,
    }
    if spec.joins_cluster:
        return args | {"address": spec.address}
    args["address"] = "local"  # our own Ray, never one a stale address file or RAY_ADDRESS names
    args["include_dashboard"] = spec.include_dashboard
    args["_node_ip_address"] = "127.0.0.1"  # a Ray of our own serves this machine only
    args["num_cpus"] = spec.num_cpus or os.cpu_count() or 1
    if spec.object_store_memory:
        args["object_store_memory"] = spec.object_store_memory
    return args


class RaySession:
    """Context manager: Ray connected for the duration; shut down on exit only if started here."""

    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self.started = False
        self.ray: ModuleType | None = None
        self._filter: NativeLogFilter | None = None

    def __enter__(self) -> RaySession:
        self.ray = ray = require_ray()
        quiet_ray_loggers(self.spec.verbose)
        if ray.is_initialized():
            log.info("engine=ray: using the Ray already connected in this process")
            self._filter_native_lines()
            return self
        try:
            ray.init(**init_args(self.spec))
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
        how = "joined" if self.spec.joins_cluster else "started a local"
        log.info("engine=ray: %s Ray with %g CPUs", how, ray.cluster_resources().get("CPU", 0))
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


_NATIVE = re.compile(
    rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([DIWEF]) \d+ \d+\] [\w./-]+\.cc:\d+:"
)


def is_native_ray_line(line: bytes) -> bool:
    """Whether ``line`` is a Ray C++ log line below FATAL (those are dropped).

    >>> is_native_ray_line(b"[2026-12-02 11:39:42,478 E 12407 12407] core_worker.cc:2465: Actor")
    True
    >>> is_native_ray_line(b"[2026-12-02 11:39:22,917][evalkit.pipeline][INFO] - evaluating e5")
    False
    """
    m = _NATIVE.match(line)
    return bool(m) and m.group(1) != b"F"


class NativeLogFilter:
    """Context manager: a filter thread keeps Ray's C++ lines off file descriptor 2."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.dropped = 0
        self._saved: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> NativeLogFilter:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        self._saved = os.dup(self.fd)
        out = os.dup(self.fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, self.fd)
        os.close(write_end)
        self._thread = threading.Thread(
            target=self._pump, args=(read_end, out), name="evalkit-native-log", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is None:
            return
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stderr.flush()
        os.dup2(self._saved, self.fd)  # closes the pipe's last write end held here: EOF
        os.close(self._saved)
        self._saved = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _pump(self, read_end: int, out: int) -> None:
        pending = b""
        try:
            while True:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._emit(line + b"\n", out)
                if pending and not pending.startswith(b"["):  # cannot be Ray's: show it now
                    _write_all(out, pending)
                    pending = b""
            if pending:
                self._emit(pending, out)
        except OSError:
            pass
        finally:
            os.close(read_end)
            os.close(out)

    def _emit(self, line: bytes, out: int) -> None:
        if is_native_ray_line(line):
            self.dropped += 1
            return
        _write_all(out, line)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
