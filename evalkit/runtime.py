"""Process set-up that must happen before heavy libraries are imported.

:func:`numba_cache_env` keeps numba's compiled functions (ranx's metrics, evalkit's click
statistics) in ``numba_cache_dir`` (default ``.cache/numba``), so each new process loads them
instead of compiling them again.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any


def numba_cache_env(cfg: Any, environ: MutableMapping[str, str]) -> None:
    """Point numba's on-disk cache at ``numba_cache_dir`` unless ``NUMBA_CACHE_DIR`` is set.

    Must run before numba is first imported (ranx, evalkit.clicks): numba reads it then.

    >>> env = {}; numba_cache_env({"numba_cache_dir": "c/numba"}, env)
    >>> env["NUMBA_CACHE_DIR"].endswith("c/numba")
    True
    """
    where = cfg.get("numba_cache_dir")
    if where and "NUMBA_CACHE_DIR" not in environ:
        environ["NUMBA_CACHE_DIR"] = str(Path(str(where)).resolve())
