""" "Version V's catalog is resident": what an engine may announce while a catalog is loaded.

Stages that want a loaded catalog (:class:`~evalkit.run.reindex_stage.ReindexPass`) subscribe to
the run's :class:`ResidentListeners`; the engine knows nothing of them.

>>> seen = []
>>> listeners = ResidentListeners()
>>> listeners.subscribe(lambda resident: seen.append((resident.version, resident.dim)))
>>> x = np.eye(3, dtype="float32")
>>> listeners.announce(ResidentCatalog("v1", 3, x, ArrayFlatIP(x)))
>>> seen
[('v1', 3)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit.index.faiss_index import ArrayFlatIP, IndexSpec, build_index
from evalkit.retrieve.searcher import Searcher


@dataclass(frozen=True)
class ResidentCatalog:
    """One version's loaded catalog (``index`` by catalog row) and every query's vector."""

    version: str
    dim: int
    queries: np.ndarray
    index: Searcher


Listener = Callable[[ResidentCatalog], None]


@dataclass
class ResidentListeners:
    """The callbacks told when a catalog is resident, in subscription order."""

    listeners: list[Listener] = field(default_factory=list)

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def announce(self, resident: ResidentCatalog) -> None:
        """Tell every listener (synchronously: the catalog stays loaded until the last returns)."""
        for listener in self.listeners:
            listener(resident)


def index_of(vectors: np.ndarray, spec: IndexSpec, **build: Any) -> Searcher:
    """``spec``'s index of ``vectors`` (exact flat fp32: ``vectors`` itself, no copy)."""
    if spec.kind == "flat" and spec.precision == "fp32":
        return ArrayFlatIP(vectors, spec.threads)
    return build_index(vectors, spec, **build)


class BuiltOnSearch:
    """A Searcher over a loaded matrix whose index is built on the first search only.

    >>> x = np.eye(3, dtype="float32")
    >>> index = BuiltOnSearch(x, IndexSpec())
    >>> index.ntotal, index.search(x[:1], 2)[1].tolist()
    (3, [[0, 1]])
    """

    def __init__(self, vectors: np.ndarray, spec: IndexSpec) -> None:
        self.vectors = vectors
        self.spec = spec
        self.ntotal = int(vectors.shape[0])
        self._index: Searcher | None = None

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._index is None:
            self._index = index_of(self.vectors, self.spec)
        return self._index.search(x, k)
