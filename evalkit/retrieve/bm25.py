"""A lexical BM25 ranking: the model-independent "production" ranking simulated clicks are made on.

>>> r = bm25_ranking(["a", "b", "c"], ["red shoe", "blue shoe", "green hat"], ["q"], ["red shoes"])
>>> r.top("q")
['a']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from evalkit.retrieve.ranking import Ranking

_TOKEN = re.compile(r"\w+", re.UNICODE)


def _term_matrix(texts: Sequence[str], vocab: dict[str, int], grow: bool) -> sparse.csr_matrix:
    """Term-frequency CSR matrix (texts x vocabulary); unknown terms dropped unless ``grow``."""
    indptr, indices = [0], []
    for t in texts:
        for tok in _TOKEN.findall(str(t).lower()):
            j = vocab.get(tok)
            if j is None and grow:
                j = vocab[tok] = len(vocab)
            if j is not None:
                indices.append(j)
        indptr.append(len(indices))
    data = np.ones(len(indices))
    m = sparse.csr_matrix(
        (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
        shape=(len(texts), len(vocab)),
    )
    m.sum_duplicates()
    return m


def bm25_top_k(
    item_ids: Sequence[str],
    item_texts: Sequence[str],
    query_ids: Sequence[str],
    query_texts: Sequence[str],
    k: int = 10,
    k1: float = 1.2,
    b: float = 0.75,
) -> tuple[np.ndarray, np.ndarray]:
    """BM25 (Lucene idf) top-``k`` of every query over ``item_texts``: catalog rows (int64, ``-1``
    pads: only items sharing a term are ranked) and scores (float32); ties by item id descending."""
    vocab: dict[str, int] = {}
    docs = _term_matrix(item_texts, vocab, grow=True)
    queries = _term_matrix(query_texts, vocab, grow=False)
    queries.data[:] = 1.0  # each query term counts once
    n_docs = docs.shape[0]
    df = np.bincount(docs.indices, minlength=len(vocab))
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    dl = np.asarray(docs.sum(axis=1)).ravel()
    avgdl = dl.mean() if n_docs else 1.0
    tf = docs.tocoo()
    norm = k1 * (1 - b + b * dl[tf.row] / max(avgdl, 1e-9))
    w = idf[tf.col] * tf.data * (k1 + 1) / (tf.data + norm)
    weights = sparse.csr_matrix((w, (tf.row, tf.col)), shape=docs.shape)
    scores = (queries @ weights.T).tocoo()
    id_rank = np.empty(n_docs, dtype=np.int64)
    id_rank[np.argsort(np.asarray(item_ids, dtype=object), kind="stable")] = np.arange(n_docs)
    keep = scores.data > 0
    r, c, s = scores.row[keep], scores.col[keep], scores.data[keep]
    order = np.lexsort((-id_rank[c], -s, r))
    r, c, s = r[order], c[order], s[order]
    starts = np.searchsorted(r, np.arange(len(query_ids)))
    rank = np.arange(len(r)) - starts[r]
    sel = rank < k
    indices = np.full((len(query_ids), k), -1, dtype=np.int64)
    out_scores = np.zeros((len(query_ids), k), dtype=np.float32)
    indices[r[sel], rank[sel]] = c[sel]
    out_scores[r[sel], rank[sel]] = s[sel]
    return indices, out_scores


def bm25_ranking(
    item_ids: Sequence[str],
    item_texts: Sequence[str],
    query_ids: Sequence[str],
    query_texts: Sequence[str],
    k: int = 10,
    k1: float = 1.2,
    b: float = 0.75,
) -> Ranking:
    """:func:`bm25_top_k` as a :class:`Ranking`."""
    indices, scores = bm25_top_k(item_ids, item_texts, query_ids, query_texts, k=k, k1=k1, b=b)
    return Ranking(list(query_ids), indices, scores, list(item_ids))
