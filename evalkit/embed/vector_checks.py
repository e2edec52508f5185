"""Cheap sanity checks on every embedded matrix: finite, non-zero, not constant, right dimension.

They run on every evaluation, on the distinct texts' vectors of one role before anything is
indexed (an endpoint answering all-zero or identical vectors would silently score low).  Identical
rows are found by an integer hash of their bytes, confirmed on the bytes.

>>> import numpy as np
>>> vector_problem(np.eye(3, dtype=np.float32)) is None, vector_problem(np.ones((5, 3), np.float32))
(True, 'all 5 vectors are identical')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evalkit.errors import EndpointError

ROLE_NAMES = {"document": "catalog", "query": "query"}
#: A vector shared by more than this share of distinct texts: a (near-)constant endpoint.
MAX_IDENTICAL_SHARE = 0.5
#: Rows hashed or compared per block: bounds the temporaries (~13 MB at 384 float32).
BLOCK_ROWS = 8192


def _word_view(block: np.ndarray) -> np.ndarray:
    """A block's rows as unsigned integer words (the widest that divides the row's bytes)."""
    raw = np.ascontiguousarray(block).view(np.uint8).reshape(len(block), -1)
    word = next(w for w in (8, 4, 2, 1) if raw.shape[1] % w == 0)
    return raw.view(f"<u{word}")


def row_hashes(vectors: np.ndarray) -> np.ndarray:
    """One uint64 per row from its bytes only (integer words times fixed random odd multipliers,
    summed modulo 2**64: no floating point), so equal rows hash equal."""
    n = len(vectors)
    out = np.empty(n, dtype=np.uint64)
    multipliers = None
    for start in range(0, n, BLOCK_ROWS):
        words = _word_view(vectors[start : start + BLOCK_ROWS])
        if multipliers is None:
            rng = np.random.default_rng(0)
            multipliers = rng.integers(0, 2**64 - 1, words.shape[1], np.uint64, endpoint=True) | 1
        # integer matmul (no BLAS, no temporary): (words * multipliers).sum(axis=1), faster
        np.matmul(words, multipliers, out=out[start : start + len(words)])
    return out


def _largest_equal_rows(vectors: np.ndarray, rows: np.ndarray, at_least: int) -> int:
    """Size of the largest group of byte-identical rows among ``vectors[rows]`` (one hash's rows),
    or a size <= ``at_least`` when no group is larger."""
    best = 0
    while len(rows) > max(best, at_least):
        first = _word_view(vectors[rows[:1]])[0]
        same = np.empty(len(rows), dtype=bool)
        for start in range(0, len(rows), BLOCK_ROWS):
            part = rows[start : start + BLOCK_ROWS]
            same[start : start + len(part)] = (_word_view(vectors[part]) == first).all(axis=1)
        best = max(best, int(np.count_nonzero(same)))
        rows = rows[~same]
    return best


def largest_identical_group(vectors: np.ndarray) -> int:
    """Size of the largest group of byte-identical rows (1 if all differ, 0 if empty)."""
    n = len(vectors)
    if n < 2 or vectors.size == 0:
        return n
    hashes = row_hashes(vectors)
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    sizes = np.diff(np.append(starts, n))
    best = 1
    for group in np.argsort(-sizes, kind="stable"):
        if sizes[group] <= best:
            break
        rows = np.sort(order[starts[group] : starts[group] + sizes[group]])
        best = max(best, _largest_equal_rows(vectors, rows, best))
    return best


def bad_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows holding a NaN or infinite value, all-zero rows), ascending; exact checks on the rows
    whose squared norm is suspect only.

    >>> bad_rows(np.array([[1.0, np.nan], [0.0, 0.0], [1e-30, 0.0], [1e30, 1e30]], np.float32))
    (array([0]), array([1]))
    """
    squared = np.einsum("ij,ij->i", vectors, vectors)
    suspect = np.flatnonzero(~np.isfinite(squared))
    nonfinite = suspect[~np.isfinite(vectors[suspect]).all(axis=1)]
    suspect = np.flatnonzero(squared == 0)
    zero = suspect[~vectors[suspect].any(axis=1)]
    return nonfinite, zero


def vector_problem(vectors: np.ndarray, requested_dim: int | None = None) -> str | None:
    """What is wrong with ``vectors`` (rows = distinct texts), or None."""
    n, d = vectors.shape
    if requested_dim is not None and d < requested_dim:
        return f"vectors have {d} dimensions, fewer than the requested dimensions={requested_dim}"
    if n == 0:
        return None
    nonfinite, zero = bad_rows(vectors)
    if len(nonfinite):
        return f"{len(nonfinite)} of {n} vectors contain NaN or infinite values"
    if len(zero):
        return f"{len(zero)} of {n} vectors are all zeros"
    same = largest_identical_group(vectors)
    if n >= 2 and same == n:
        return f"all {n} vectors are identical"
    if n >= 4 and same > MAX_IDENTICAL_SHARE * n:
        return f"{same} of {n} vectors (different texts) are identical"
    return None


def check_vectors(
    vectors: np.ndarray, version: str, role: str, requested_dim: int | None = None, hint: str = ""
) -> None:
    """:class:`EndpointError` naming the version, the role and how many rows are wrong."""
    problem = vector_problem(vectors, requested_dim)
    if problem is None:
        return
    raise EndpointError(
        f"model version {version!r}, {ROLE_NAMES.get(role, role)} vectors: {problem} "
        f"(expected finite, non-zero, distinct vectors"
        f"{f' of at least {requested_dim} dimensions' if requested_dim else ''}){hint}"
    )


def _squared_norms(block: np.ndarray) -> np.ndarray:
    """Squared L2 norms of a float32 block's rows, as float64: summed in float32, rows whose sum
    overflowed or underflowed summed again in float64.

    >>> norms = np.sqrt(_squared_norms(np.array([[3, 4], [1e20, 0], [1e-20, 0]], np.float32)))
    >>> [float(f"{v:.4g}") for v in norms]
    [5.0, 1e+20, 1e-20]
    """
    squared = np.einsum("ij,ij->i", block, block).astype(np.float64)
    redo = np.flatnonzero(~(np.isfinite(squared) & (squared > 1e-30)))
    if len(redo):
        rows = block[redo].astype(np.float64)
        squared[redo] = np.einsum("ij,ij->i", rows, rows)
    return squared


@dataclass(frozen=True)
class NormSummary:
    """L2-norm range and sum over rows, combinable across parts (``+``)."""

    lo: float = float("inf")
    hi: float = float("-inf")
    total: float = 0.0
    n: int = 0

    @classmethod
    def of(cls, *matrices: np.ndarray, chunk: int = 1 << 16) -> NormSummary:
        """Over the rows of all ``matrices`` (chunked: no full-size temporary)."""
        out = cls()
        for m in matrices:
            for start in range(0, len(m), chunk):
                block = np.asarray(m[start : start + chunk], dtype=np.float32)
                norms = np.sqrt(_squared_norms(block))
                if norms.size:
                    out = out + cls(
                        float(norms.min()), float(norms.max()), float(norms.sum()), norms.size
                    )
        return out

    def __add__(self, other: NormSummary) -> NormSummary:
        return NormSummary(
            min(self.lo, other.lo),
            max(self.hi, other.hi),
            self.total + other.total,
            self.n + other.n,
        )

    def metrics(self) -> dict[str, float]:
        """``vectors_norm_min`` / ``_max`` / ``_mean`` (empty without rows)."""
        if self.n == 0:
            return {}
        return {
            "vectors_norm_min": self.lo,
            "vectors_norm_max": self.hi,
            "vectors_norm_mean": self.total / self.n,
        }


def vector_stats(*matrices: np.ndarray, chunk: int = 1 << 16) -> dict[str, float]:
    """``vectors_norm_min`` / ``_max`` / ``_mean`` over the rows of all ``matrices``."""
    return NormSummary.of(*matrices, chunk=chunk).metrics()
