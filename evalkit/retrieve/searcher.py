"""What a replay searches: any FAISS-index look-alike (``ntotal``, ``search(x, k)``), in batches.

>>> import numpy as np
>>> class Two:
...     ntotal = 2
...     def search(self, x, k):
...         return np.array([[0.9, 0.1]] * len(x))[:, :k], np.array([[1, 0]] * len(x))[:, :k]
>>> search(Two(), np.zeros((3, 4)), depth=1)[1].tolist()
[[1], [1], [1]]
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from tqdm.auto import tqdm


class Searcher(Protocol):
    """A FAISS-index look-alike: ``ntotal`` items, ``search(x, k)`` -> (scores, rows)."""

    @property
    def ntotal(self) -> int: ...

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


def search(
    index: Searcher,
    queries: np.ndarray,
    depth: int,
    batch_size: int = 4096,
    progress: bool = False,
    desc: str = "search",
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``depth`` (scores float32, rows int64; padding ``-1`` / ``-inf``) for every query."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    depth = min(depth, index.ntotal)
    scores = np.empty((len(q), depth), dtype=np.float32)
    rows = np.empty((len(q), depth), dtype=np.int64)
    starts = range(0, len(q), batch_size)
    for s in tqdm(starts, desc=desc, unit="batch", disable=None if progress else True, leave=False):
        scores[s : s + batch_size], rows[s : s + batch_size] = index.search(
            q[s : s + batch_size], depth
        )
    scores[rows < 0] = -np.inf
    return scores, rows
