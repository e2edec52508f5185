"""Cheap sanity checks on every embedded matrix: finite, non-zero, not constant, right dimension.

They run on every evaluation (not only with ``run_checks=true``), on the vectors of the unique
texts of one role, cached or new, before anything is indexed: a server that answers with
all-zero or identical vectors would otherwise produce thousands of ties and a silently low
score.  Everything is vectorised (one pass for norms, exact checks only on suspect rows, one
integer hash per row: ~1 s for 1M x 384 vectors on 2 busy cores), next to minutes of embedding.

Identical vectors are found by their bytes: each row's bytes are hashed with integer arithmetic
(equal rows always hash equal; a float projection such as ``vectors @ direction`` does not
promise that, as BLAS kernels may round the rows left over from their blocks differently), and
the largest groups of equal hashes are then confirmed by comparing the rows' bytes exactly.

>>> import numpy as np
>>> ok = np.eye(3, dtype=np.float32)
>>> vector_problem(ok, requested_dim=None) is None
True
>>> vector_problem(np.zeros((4, 3), np.float32))
'4 of 4 vectors are all zeros'
>>> vector_problem(np.ones((5, 3), np.float32))
'all 5 vectors are identical'
>>> vector_problem(ok, requested_dim=8)
'vectors have 3 dimensions, fewer than the requested dimensions=8'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evalkit.errors import EndpointError

ROLE_NAMES = {"document": "catalog", "query": "query"}
#: A vector shared by more than this share of (distinct) texts means the model is not
#: distinguishing them: a constant or near-constant endpoint.
MAX_IDENTICAL_SHARE = 0.5


#: Rows hashed or compared per block: bounds the temporaries (~13 MB at 384 float32).
BLOCK_ROWS = 8192


def _word_view(block: np.ndarray) -> np.ndarray:
    """A block's rows as unsigned integer words (the widest that divides the row's bytes)."""
    raw = np.ascontiguousarray(block).view(np.uint8).reshape(len(block), -1)
    word = next(w for w in (8, 4, 2, 1) if raw.shape[1] % w == 0)
    return raw.view(f"<u{word}")


def row_hashes(vectors: np.ndarray, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """One uint64 per row, computed from the row's bytes only: equal rows hash equal.

    The row's bytes are read as unsigned integer words and summed with fixed random odd
    multipliers, modulo 2**64 (exact integer arithmetic, no floating point), a block of rows at
    a time.  Different rows rarely share a hash; callers confirm equality on the bytes.

    >>> v = np.array([[1.0, 2.0, 3.0], [0.5, 2.0, 3.0], [1.0, 2.0, 3.0]], np.float32)
    >>> h = row_hashes(v)
    >>> h.dtype.name, bool(h[0] == h[2]), bool(h[0] == h[1])
    ('uint64', True, False)
    """
    n = len(vectors)
    out = np.empty(n, dtype=np.uint64)
    multipliers = None
    for start in range(0, n, block_rows):
        words = _word_view(vectors[start : start + block_rows])
        if multipliers is None:
            rng = np.random.default_rng(0)
            size = words.shape[1]
            multipliers = rng.integers(0, 2**64 - 1, size, np.uint64, endpoint=True) | 1
        # integer matmul (no BLAS, no temporary): the same wrapping sum modulo 2**64 as
        # (words * multipliers).sum(axis=1), ~1.8x faster
        np.matmul(words, multipliers, out=out[start : start + len(words)])
    return out


def _largest_equal_rows(vectors: np.ndarray, rows: np.ndarray, at_least: int) -> int:
    """Size of the largest group of byte-identical rows among ``vectors[rows]`` (rows sharing
    one hash), or a size <= ``at_least`` when no group is larger.  Compared block by block:
    usually all rows equal the first; after a hash collision the rest is grouped again."""
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
    """Size of the largest group of byte-identical rows (1 if all differ, 0 if empty).

    Rows are grouped by :func:`row_hashes`; candidate groups, largest first, are confirmed on
    the rows' bytes (a hash collision never merges different rows).

    >>> v = np.zeros((7, 3), np.float32)
    >>> v[:, 0] = [1, 2, 1, 3, 1, 2, 4]
    >>> largest_identical_group(v), largest_identical_group(v[:0]), largest_identical_group(v[3:4])
    (3, 0, 1)
    """
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
    """(rows holding a NaN or infinite value, all-zero rows), ascending.

    One pass for the squared norms; the exact checks run on the suspect rows only (a norm that
    overflows or underflows is not enough to condemn a row).

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
    """Squared L2 norms of a float32 block's rows, as float64: summed in float32 (3x faster than
    a float64 einsum; relative error ~1e-7), rows whose float32 sum overflowed or underflowed
    (values beyond ~1e19 or below ~1e-15) summed again in float64.

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
    """L2-norm range and sum over rows, combinable across parts (``+``): what
    ``vectors_norm_min`` / ``_max`` / ``_mean`` are computed from, in one process or per part on
    Ray workers.

    >>> a = NormSummary.of(np.array([[3.0, 4.0]]))
    >>> (a + NormSummary.of(np.array([[1.0, 0.0]]))).metrics()["vectors_norm_mean"]
    3.0
    """

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
    """L2-norm range and mean over the rows of all ``matrices`` (chunked: no full-size temporary).

    Logged as ``vectors_norm_min`` / ``_max`` / ``_mean``; the ``vector_contract`` gate reads them.

    >>> s = vector_stats(np.array([[3.0, 4.0]]), np.array([[1.0, 0.0]]))
    >>> s["vectors_norm_min"], s["vectors_norm_max"], s["vectors_norm_mean"]
    (1.0, 5.0, 3.0)
    """
    return NormSummary.of(*matrices, chunk=chunk).metrics()
