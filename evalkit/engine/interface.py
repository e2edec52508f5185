"""The :class:`Engine` interface: where one version's vectors are embedded and its catalog searched.

The run only calls :meth:`Engine.search` with a :class:`SearchJob` and gets a
:class:`~evalkit.pairs.Searched` back, the same for every engine.

>>> from evalkit.engine.local_engine import LocalEngine
>>> isinstance(LocalEngine(), Engine)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from evalkit.embed.cache import CacheSettings
from evalkit.engine.resident import ResidentListeners
from evalkit.index.faiss_index import IndexSpec

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.data.schema import EvalData
    from evalkit.embed.model_version import EmbeddingResult, ModelVersion
    from evalkit.pairs import PairRows, Searched


@dataclass(frozen=True)
class SearchJob:
    """How to search one version, and the rows every version shares (``id_rank``, ``rows``)."""

    spec: IndexSpec
    k: int
    seed: int
    cache: CacheSettings
    id_rank: np.ndarray
    rows: PairRows
    progress: bool = False
    #: the queries' vectors when already embedded (used as they are)
    queries: EmbeddingResult | None = None
    #: told when the version's catalog is loaded (:class:`~evalkit.engine.resident.ResidentCatalog`)
    listeners: ResidentListeners = field(default_factory=ResidentListeners)


@dataclass
class Embedded:
    """One version's catalog and query vectors, and what remote workers reported per role."""

    docs: EmbeddingResult
    queries: EmbeddingResult
    remote: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """Embeds and searches one model version at a time; a context manager."""

    kind: str

    def embed(
        self,
        version: ModelVersion,
        data: EvalData,
        cache: CacheSettings,
        progress: bool = False,
        queries: EmbeddingResult | None = None,
    ) -> Embedded:
        """The version's catalog and query vectors (``queries``: already embedded, used as is)."""
        ...

    def search(self, version: ModelVersion, data: EvalData, job: SearchJob) -> Searched:
        """Embed (or read) the version's vectors, index its catalog and replay every query."""
        ...
