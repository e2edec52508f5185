"""Process set-up of the ``evalkit`` command (never of library callers): numba's per-user cache,
and the garbage collector kept off the libraries' long-lived objects (``gc.freeze()``)."""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any


def user_numba_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/evalkit/numba`` (when absolute), else ``~/.cache/evalkit/numba``."""
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "evalkit" / "numba"


def numba_cache_env(cfg: Any, environ: MutableMapping[str, str]) -> None:
    """Point numba's cache at ``numba_cache_dir`` (null: :func:`user_numba_dir`; false: numba's
    default) unless ``NUMBA_CACHE_DIR`` is set; before numba is first imported.

    >>> env = {"XDG_CACHE_HOME": "/x"}; numba_cache_env({}, env); env["NUMBA_CACHE_DIR"]
    '/x/evalkit/numba'
    """
    if "NUMBA_CACHE_DIR" in environ:
        return
    where = cfg.get("numba_cache_dir")
    if where is False:
        return
    path = user_numba_dir(environ) if where is None or where == "" else Path(str(where))
    environ["NUMBA_CACHE_DIR"] = str(path.expanduser().resolve())


def import_long_lived(module: str) -> ModuleType:
    """Import ``module`` with the collector paused, then freeze every object alive (a module
    imported already: returned, nothing frozen)."""
    if module in sys.modules:
        return sys.modules[module]
    enabled = gc.isenabled()
    gc.disable()  # every full collection during the imports would walk what they made so far
    try:
        return importlib.import_module(module)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def freeze_before_exit() -> None:
    """Freeze every object so the interpreter's final collections walk nothing."""
    gc.freeze()
