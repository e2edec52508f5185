"""evalkit.engine: where embedding and search run (``conf/engine/``): ``local`` or ``ray``.

Ray itself is only imported for ``engine=ray`` (optional extra ``pip install -e ".[ray]"``).

>>> with open_engine(EngineSpec(), {}) as engine:
...     engine.kind
'local'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from evalkit.engine.interface import Embedded, Engine, SearchJob
from evalkit.engine.resident import ResidentCatalog, ResidentListeners
from evalkit.engine.spec import EngineSpec


@contextlib.contextmanager
def open_engine(spec: EngineSpec, model_configs: dict[str, dict[str, Any]]) -> Iterator[Engine]:
    """The engine ``spec`` names, started (and stopped on exit)."""
    if not spec.distributed:
        from evalkit.engine.local_engine import LocalEngine

        with LocalEngine() as local:
            yield local
        return
    from evalkit.engine.session import require_ray

    require_ray()
    from evalkit.engine.ray_engine import RayEngine

    with RayEngine(spec, model_configs) as engine:
        yield engine


__all__ = [
    "Embedded",
    "Engine",
    "EngineSpec",
    "ResidentCatalog",
    "ResidentListeners",
    "SearchJob",
    "open_engine",
]
