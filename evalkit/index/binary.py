"""Binary (sign-bit) vectors: FAISS ``IndexBinaryFlat`` over one bit per dimension, with optional
rescoring of the top candidates by their float32 inner product (``index.precision=binary``).

Hamming distances ``h`` become ``1 - 2 h / d``; with ``rescore=n`` the top ``max(n, k)``
candidates are re-ranked by, and scored with, their exact inner product.  Why, and the recall
measured: docs/how-to/search-speed.md.

>>> import numpy as np
>>> x = np.array([[0.8, 0.6], [0.6, 0.8], [-0.6, 0.8]], dtype="float32")
>>> s, r = BinaryIndex(x, rescore=0).search(x[:1], 3)
>>> r[0].tolist(), s[0].tolist()   # rows 0 and 1 share both signs; row 2 differs in one of 2
([0, 1, 2], [1.0, 1.0, 0.0])
>>> s, r = BinaryIndex(x, rescore=3).search(x[:1], 2)
>>> r[0].tolist(), [round(float(v), 2) for v in s[0]]   # rescored: exact inner products (cosines)
([0, 1], [1.0, 0.96])
"""

from __future__ import annotations

import faiss
import numpy as np

#: Float32 values materialised per block when rescoring (queries x candidates x dimensions).
RESCORE_BLOCK_FLOATS = 1 << 22
#: Catalog rows packed into sign bits per call.
ADD_BATCH = 100_000
#: Where a dimension's bit flips: at 0 (``v > 0``) or at the catalog's mean of that dimension.
THRESHOLDS = ("zero", "mean")


def sign_bits(vectors: np.ndarray, threshold: np.ndarray | None = None) -> np.ndarray:
    """``vectors > threshold`` (0 when ``None``) packed 8 dimensions per byte (padding bits 0)."""
    x = np.asarray(vectors)
    return np.packbits(x > (0 if threshold is None else threshold), axis=1)


class BinaryIndex:
    """A FAISS-index look-alike over the sign bits of a float32 catalog (``vectors`` is kept,
    uncopied, for rescoring; ``threshold``: ``zero`` or ``mean``, the catalog's per dimension)."""

    def __init__(self, vectors: np.ndarray, rescore: int = 0, threshold: str = "zero") -> None:
        self.xb = np.ascontiguousarray(vectors, dtype=np.float32)
        self.ntotal, self.d = self.xb.shape
        self.rescore = int(rescore)
        self.threshold: np.ndarray | None = None
        if threshold == "mean" and self.ntotal:
            self.threshold = self.xb.mean(axis=0, dtype=np.float64).astype(np.float32)
        self.index = faiss.IndexBinaryFlat(8 * ((self.d + 7) // 8))
        for s in range(0, self.ntotal, ADD_BATCH):  # bounded (rows, d) boolean temporaries
            self.index.add(sign_bits(self.xb[s : s + ADD_BATCH], self.threshold))

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores float32, rows int64) per query, best first; missing rows are -1."""
        q = np.ascontiguousarray(x, dtype=np.float32)
        depth = max(k, self.rescore) if self.rescore else k
        depth = min(depth, self.ntotal)
        if depth <= 0 or len(q) == 0:
            return _padded(np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64), k)
        hamming, rows = self.index.search(sign_bits(q, self.threshold), depth)
        rows = rows.astype(np.int64)
        if not self.rescore:
            scores = (1.0 - 2.0 * hamming.astype(np.float64) / self.d).astype(np.float32)
            scores[rows < 0] = -np.inf
            return _padded(scores, rows, k)
        scores = rescored(q, self.xb, rows)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return _padded(
            np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1), k
        )


def rescored(queries: np.ndarray, vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Exact inner products ``queries[i] . vectors[rows[i, j]]`` (``-inf`` where the row is -1)."""
    n_q, n_c = rows.shape
    out = np.full((n_q, n_c), -np.inf, dtype=np.float32)
    step = max(1, RESCORE_BLOCK_FLOATS // max(1, n_c * vectors.shape[1]))
    for s in range(0, n_q, step):
        r = rows[s : s + step]
        cand = vectors[np.maximum(r, 0)]  # (b, n_c, d)
        ip = np.einsum("bcd,bd->bc", cand, queries[s : s + step], dtype=np.float32)
        out[s : s + step] = np.where(r >= 0, ip, -np.inf)
    return out


def _padded(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's shape for ``k`` larger than the catalog: rows -1, scores -inf."""
    if scores.shape[1] >= k:
        return scores.astype(np.float32), rows
    pad = k - scores.shape[1]
    n = len(scores)
    return (
        np.hstack([scores, np.full((n, pad), -np.inf, np.float32)]).astype(np.float32),
        np.hstack([rows, np.full((n, pad), -1, np.int64)]),
    )
