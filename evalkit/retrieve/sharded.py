"""Search a catalog split into shards: every shard answers its top-``depth``, and the driver merges
them with evalkit's deterministic order (score desc, item id desc).  Shards are exact or IVF
indexes sharing one trained quantizer, so the merged result equals the single-index result.

>>> import numpy as np
>>> parts = [(np.array([[0.9, 0.5]], "f4"), np.array([[0, 1]])),
...          (np.array([[0.9, 0.7]], "f4"), np.array([[2, 3]]))]
>>> s, r = merge_topk(parts, id_rank=np.arange(4), depth=3)
>>> r.tolist(), s.astype(float).round(2).tolist()   # 0.9 ties: larger item id (row 2) first
([[2, 0, 3]], [[0.9, 0.9, 0.7]])
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from evalkit.retrieve.replay import tie_break_order


@dataclass(frozen=True)
class Shard:
    """Rows ``[start, stop)`` of the catalog: ``vectors`` (an array or a handle the runner
    understands) for exact search, or ``path`` of a FAISS index holding them (ids = catalog
    rows: an IVF, or an ID-mapped flat index of a streamed part)."""

    start: int
    stop: int
    vectors: Any = None
    path: str | None = None

    @property
    def size(self) -> int:
        return self.stop - self.start


def split_rows(n: int, shard_rows: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of at most ``shard_rows`` rows covering ``range(n)``."""
    return [(s, min(n, s + shard_rows)) for s in range(0, n, max(1, shard_rows))]


def search_shard(
    shard: Shard, vectors: np.ndarray | None, queries: np.ndarray, depth: int, nprobe: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``depth`` of one shard: (scores float32, catalog rows int64), FAISS order
    (``vectors``: an exact shard's rows; ``None`` for a shard on disk)."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if shard.path is not None:
        index = faiss.read_index(shard.path)
        ivf = faiss.try_extract_index_ivf(index)  # None for an exact (IDMap flat) shard
        if ivf is not None:
            ivf.nprobe = min(nprobe, ivf.nlist)
        offset = 0
    else:
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        index = faiss.IndexFlatIP(x.shape[1])
        index.add(x)
        offset = shard.start
    depth = min(depth, shard.size)
    if depth <= 0 or len(q) == 0:
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    scores, rows = index.search(q, depth)
    rows = np.where(rows >= 0, rows + offset, -1)
    scores[rows < 0] = -np.inf
    return scores, rows


def merge_topk(
    parts: Sequence[tuple[np.ndarray, np.ndarray]], id_rank: np.ndarray, depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard (scores, rows) into the top-``depth`` per query, ordered by score desc then
    item id desc; padded with score ``-inf`` / row ``-1``."""
    n_q = len(parts[0][0]) if parts else 0
    scores = np.concatenate([p[0] for p in parts], axis=1) if parts else np.zeros((0, 0), "f4")
    rows = np.concatenate([p[1] for p in parts], axis=1) if parts else np.zeros((0, 0), "i8")
    if scores.shape[1] < depth:
        pad = depth - scores.shape[1]
        scores = np.hstack([scores, np.full((n_q, pad), -np.inf, np.float32)])
        rows = np.hstack([rows, np.full((n_q, pad), -1, np.int64)])
    order = tie_break_order(scores, rows, id_rank)[:, :depth]
    return (
        np.take_along_axis(scores, order, axis=1).astype(np.float32),
        np.take_along_axis(rows, order, axis=1).astype(np.int64),
    )


ShardRunner = Callable[[Sequence[Shard], np.ndarray, int, int], list[tuple[np.ndarray, np.ndarray]]]


def local_runner(
    shards: Sequence[Shard], queries: np.ndarray, depth: int, nprobe: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Search the shards one after the other in this process (shard ``vectors`` are arrays)."""
    return [search_shard(s, s.vectors, queries, depth, nprobe) for s in shards]


class ShardedIndex:
    """A FAISS-index look-alike over shards: ``search`` merges their answers on the driver."""

    def __init__(
        self,
        shards: Sequence[Shard],
        id_rank: np.ndarray,
        runner: ShardRunner = local_runner,
        nprobe: int = 16,
    ) -> None:
        self.shards = list(shards)
        self.id_rank = id_rank
        self.runner = runner
        self.nprobe = nprobe
        self.ntotal = sum(s.size for s in self.shards)
        self.calls = 0

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        parts = self.runner(self.shards, queries, k, self.nprobe)
        return merge_topk(parts, self.id_rank, k)


def add_to_shard(
    trained: np.ndarray | None, vectors: np.ndarray, ids: int | np.ndarray, path: str
) -> str:
    """Add ``vectors`` with ids ``ids`` (an array, or the first of a range) to a copy of the
    trained IVF (``None``: an ID-mapped flat index) and write it to ``path`` atomically."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if trained is None:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(x.shape[1]))
    else:
        index = faiss.deserialize_index(np.asarray(trained, dtype=np.uint8))
    if isinstance(ids, int | np.integer):
        ids = np.arange(ids, ids + len(x), dtype=np.int64)
    index.add_with_ids(x, np.asarray(ids, dtype=np.int64))
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, target)
    return str(target)
