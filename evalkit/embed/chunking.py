"""Chunking long texts into overlapping whitespace-token windows, and pooling their vectors.

A text of at most ``size`` whitespace tokens is kept unchanged (one chunk); a longer one is split
into windows of ``size`` tokens that start every ``size - overlap`` tokens, the last window ending
at the last token.  After embedding, :func:`pool` reduces each text's chunk vectors to one vector
(``mean``, ``max`` or ``first``; the caller re-normalises).

>>> c = Chunking(size=3, overlap=1)
>>> pieces, owner = split(["a b c d e", "short text"], c)
>>> pieces
['a b c', 'c d e', 'short text']
>>> owner.tolist()
[0, 0, 1]
>>> import numpy as np
>>> pool(np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], dtype=np.float32), owner, 2, "mean").tolist()
[[0.5, 0.5], [2.0, 2.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.errors import ConfigError

POOLINGS = ("mean", "max", "first")


@dataclass(frozen=True)
class Chunking:
    """Split texts longer than ``size`` whitespace tokens into windows overlapping by ``overlap``."""

    size: int
    overlap: int = 0
    pooling: str = "mean"

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise ConfigError(f"chunking.size={self.size!r} is invalid (expected an integer >= 1)")
        if not isinstance(self.overlap, int) or not 0 <= self.overlap < self.size:
            raise ConfigError(
                f"chunking.overlap={self.overlap!r} is invalid "
                f"(expected an integer >= 0 and < chunking.size={self.size})"
            )
        if self.pooling not in POOLINGS:
            raise ConfigError(
                f"chunking.pooling={self.pooling!r} is unknown (expected one of {', '.join(POOLINGS)})"
            )

    @classmethod
    def from_config(cls, value: Chunking | Mapping[str, Any] | None) -> Chunking | None:
        """``None`` (no chunking), a ``Chunking``, or a mapping ``{size, overlap, pooling}``.

        ``size: null`` also means no chunking, so the configs can carry the full mapping and a
        sweep can override ``models.<name>.chunking.size=128,256``.
        """
        if value is None or isinstance(value, Chunking):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"chunking={value!r} is invalid (expected null or a mapping with size, overlap, pooling)"
            )
        unknown = set(value) - {"size", "overlap", "pooling"}
        if unknown:
            raise ConfigError(
                f"chunking has unknown key(s) {sorted(unknown)} (expected size, overlap, pooling)"
            )
        if value.get("size") is None:  # {size: null, ...}: chunking off (sweepable key)
            return None
        return cls(
            size=value["size"],
            overlap=value.get("overlap", 0) or 0,
            pooling=value.get("pooling", "mean") or "mean",
        )

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "overlap": self.overlap, "pooling": self.pooling}


def windows(n_tokens: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """``(start, end)`` token ranges covering ``n_tokens`` tokens; the last one ends at the end.

    >>> windows(5, 3, 1)
    [(0, 3), (2, 5)]
    >>> windows(6, 3, 0)
    [(0, 3), (3, 6)]
    """
    if n_tokens <= size:
        return [(0, n_tokens)]
    stride = size - overlap
    starts = [*range(0, n_tokens - size, stride), n_tokens - size]
    return [(s, s + size) for s in starts]


def split(texts: Sequence[str], chunking: Chunking) -> tuple[list[str], np.ndarray]:
    """Chunk every text; returns the pieces and ``owner`` (int64: text index of each piece).

    Pieces of one text are contiguous and in order.  With ``pooling="first"`` only the first
    window of each text is produced (the rest would be discarded by pooling anyway).
    """
    pieces: list[str] = []
    counts = np.empty(len(texts), dtype=np.int64)
    first_only = chunking.pooling == "first"
    for i, text in enumerate(texts):
        tokens = text.split()
        if len(tokens) <= chunking.size:
            pieces.append(text)
            counts[i] = 1
            continue
        spans = windows(len(tokens), chunking.size, chunking.overlap)
        if first_only:
            spans = spans[:1]
        pieces.extend(" ".join(tokens[s:e]) for s, e in spans)
        counts[i] = len(spans)
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), counts)
    return pieces, owner


def pool(vectors: np.ndarray, owner: np.ndarray, n_texts: int, pooling: str) -> np.ndarray:
    """Reduce contiguous chunk rows to one row per text (``owner`` from :func:`split`)."""
    if vectors.shape[0] != owner.shape[0]:
        raise ValueError(f"{vectors.shape[0]} chunk vectors for {owner.shape[0]} chunks")
    if n_texts == 0:
        return np.zeros((0, vectors.shape[1]), dtype=np.float32)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    if starts.shape[0] != n_texts:
        raise ValueError(f"chunks cover {starts.shape[0]} texts, expected {n_texts}")
    if pooling == "first":
        return np.ascontiguousarray(vectors[starts], dtype=np.float32)
    if pooling == "max":
        return np.maximum.reduceat(vectors, starts, axis=0).astype(np.float32, copy=False)
    if pooling == "mean":
        counts = np.diff(np.r_[starts, owner.shape[0]]).astype(np.float64)
        sums = np.add.reduceat(vectors.astype(np.float64), starts, axis=0)
        return (sums / counts[:, None]).astype(np.float32)
    raise ConfigError(
        f"chunking.pooling={pooling!r} is unknown (expected one of {', '.join(POOLINGS)})"
    )
