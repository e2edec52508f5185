"""Output of a sweep job: its stdout (tables, verdict) in ``<job dir>/stdout.txt`` and, for a
Ray-launched job (whose stderr Ray would interleave with prefixes), its stderr in ``stderr.txt``.

>>> import tempfile
>>> redirect = _Redirect(Path(tempfile.mkdtemp()))
>>> redirect.start()
>>> print("ndcg@10 0.5012")
>>> redirect.stop()
>>> redirect.paths[0].read_text(encoding="utf-8")
'ndcg@10 0.5012\\n'
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import IO, Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from evalkit.sweep.ray_jobs import ray_launched

STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        h
        for lg in loggers
        if isinstance(lg, logging.Logger)
        for h in lg.handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]


class _Redirect:
    """``sys.stdout`` / ``sys.stderr`` (and the log handlers writing to them) sent to
    ``stdout.txt`` / ``stderr.txt`` in ``folder`` between :meth:`start` and :meth:`stop`."""

    def __init__(self, folder: Path, stderr: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.paths = (folder / STDOUT_FILE, folder / STDERR_FILE)
        self.stderr = stderr  # False: only stdout goes to the file
        self._files: list[IO[str]] = []
        self._saved: tuple[Any, Any] | None = None
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []

    def start(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        out = open(self.paths[0], "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in stop()
        err = open(self.paths[1], "a", encoding="utf-8", buffering=1) if self.stderr else sys.stderr  # noqa: SIM115
        self._files = [out, err] if self.stderr else [out]
        self._saved = (sys.stdout, sys.stderr)
        swap = {id(sys.stdout): out}
        if self.stderr:
            swap[id(sys.stderr)] = err
        # One handler per stream (Hydra's `console` first): a Ray worker also has a root handler
        # of its own on stderr, and both would write every line to the file.
        handlers = sorted(_stream_handlers(), key=lambda h: h.get_name() != "console")
        for handler in handlers:
            if isinstance(type(handler).__dict__.get("stream"), property):
                continue  # logging.lastResort: its stream is always sys.stderr (swapped below)
            target = swap.pop(id(handler.stream), None)
            if target is not None:
                self._handlers.append((handler, handler.setStream(target)))
        sys.stdout, sys.stderr = out, err

    def stop(self) -> None:
        if self._saved is None:
            return
        for handler, old in self._handlers:
            handler.setStream(old)
        sys.stdout, sys.stderr = self._saved
        self._saved, self._handlers = None, []
        for f in self._files:
            f.close()
        self._files = []


class RayJobOutput(Callback):
    """Hydra callback: a sweep job's stdout goes to ``stdout.txt`` in its folder (a Ray-launched
    job's stderr to ``stderr.txt`` too)."""

    def __init__(self) -> None:
        self._redirect: _Redirect | None = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra = config.hydra
        if hydra.mode != RunMode.MULTIRUN:
            return
        ray = ray_launched(hydra.runtime.choices)
        self._redirect = _Redirect(Path(str(hydra.runtime.output_dir)), stderr=ray)
        self._redirect.start()

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        if self._redirect is not None:
            self._redirect.stop()
            self._redirect = None
