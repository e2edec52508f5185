"""evalkit.engine: where embedding and search run (``conf/engine/``): ``local`` or ``ray``.

:func:`open_engine` gives ``None`` for ``engine=local`` (everything in this process, as always) or
a started :class:`~evalkit.engine.ray_engine.RayEngine` for ``engine=ray``; Ray itself is only
imported then (optional extra ``pip install -e ".[ray]"``).

>>> import contextlib
>>> with open_engine(EngineSpec(), {}) as engine:
...     engine is None
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from evalkit.engine.spec import EngineSpec


@contextlib.contextmanager
def open_engine(spec: EngineSpec, model_configs: dict[str, dict[str, Any]]) -> Iterator[Any]:
    """``None`` for the local engine, else a connected RayEngine (stopped on exit)."""
    if not spec.distributed:
        yield None
        return
    from evalkit.engine.session import require_ray

    require_ray()
    from evalkit.engine.ray_engine import RayEngine

    with RayEngine(spec, model_configs) as engine:
        yield engine


__all__ = ["EngineSpec", "open_engine"]
