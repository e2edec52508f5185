"""Process set-up of the ``evalkit`` command: before heavy libraries are imported, and at exit.

:func:`numba_cache_env` keeps numba's compiled functions (ranx's metrics, evalkit's click
statistics) in a per-user cache directory (:func:`user_numba_dir`:
``$XDG_CACHE_HOME/evalkit/numba``, else ``~/.cache/evalkit/numba``) or in ``numba_cache_dir`` when
set, so each new process - in any working folder - loads them instead of compiling them again.

:func:`import_long_lived` and :func:`freeze_before_exit` keep Python's cyclic garbage collector
off the libraries' own objects.  An evaluation imports MLflow, SQLAlchemy, pandas, scipy, numba
and ranx: hundreds of thousands of tracked objects that live until the process ends, and every
full collection walks all of them (the cost is measured in benchmarks/README.md).
``gc.freeze()`` moves the objects alive at that moment into a permanent generation the
collector does not walk; reference counting still frees each of them, only cyclic garbage among
them is never collected.  The command freezes (1) what importing the pipeline created, with the
collector paused during that import, and (2) everything, just before the process exits.
Library callers (tests, notebooks) are not affected: only the command does this.
"""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any


def user_numba_dir(environ: Mapping[str, str]) -> Path:
    """The per-user default for numba's cache: ``$XDG_CACHE_HOME/evalkit/numba`` when
    ``XDG_CACHE_HOME`` is an absolute path (the XDG base-directory rule), else
    ``~/.cache/evalkit/numba``.

    >>> str(user_numba_dir({"XDG_CACHE_HOME": "/var/cache/me"}))
    '/var/cache/me/evalkit/numba'
    >>> user_numba_dir({"XDG_CACHE_HOME": "relative"}) == Path.home() / ".cache/evalkit/numba"
    True
    """
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "evalkit" / "numba"


def numba_cache_env(cfg: Any, environ: MutableMapping[str, str]) -> None:
    """Point numba's on-disk cache at ``numba_cache_dir`` unless ``NUMBA_CACHE_DIR`` is set.

    ``numba_cache_dir``: null (the default) = :func:`user_numba_dir`; a path (``~`` expanded,
    relative to the working folder); false = numba's own default (``__pycache__`` beside the
    installed package).  Must run before numba is first imported (ranx, evalkit.clicks): numba
    reads it then.

    >>> env = {}; numba_cache_env({"numba_cache_dir": "c/numba"}, env)
    >>> env["NUMBA_CACHE_DIR"].endswith("c/numba")
    True
    >>> env = {"XDG_CACHE_HOME": "/x"}; numba_cache_env({}, env); env["NUMBA_CACHE_DIR"]
    '/x/evalkit/numba'
    >>> env = {"NUMBA_CACHE_DIR": "/mine"}; numba_cache_env({}, env); env["NUMBA_CACHE_DIR"]
    '/mine'
    >>> env = {}; numba_cache_env({"numba_cache_dir": False}, env); env
    {}
    """
    if "NUMBA_CACHE_DIR" in environ:
        return
    where = cfg.get("numba_cache_dir")
    if where is False:
        return
    path = user_numba_dir(environ) if where is None or where == "" else Path(str(where))
    environ["NUMBA_CACHE_DIR"] = str(path.expanduser().resolve())


def import_long_lived(module: str) -> ModuleType:
    """Import ``module`` with the cyclic garbage collector paused, then freeze (``gc.freeze``)
    every object alive: the module and the libraries it imports stay until the process exits.

    A module imported already is returned as it is, and nothing is frozen (a second sweep job in
    the same process must not freeze what the first one left behind).

    >>> import gc
    >>> gc.unfreeze(); mod = import_long_lived("tabnanny")
    >>> mod.__name__, gc.isenabled(), gc.get_freeze_count() > 0
    ('tabnanny', True, True)
    >>> gc.unfreeze(); _ = import_long_lived("tabnanny"); gc.get_freeze_count()
    0
    """
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
    """Freeze every object just before the interpreter shuts down: its final collections then walk
    nothing.  Objects are still released by reference counting, and atexit handlers (logging's
    flush, MLflow's, temporary folders) run as usual.

    >>> import gc
    >>> freeze_before_exit(); gc.get_freeze_count() > 0
    True
    >>> gc.unfreeze()
    """
    gc.freeze()
