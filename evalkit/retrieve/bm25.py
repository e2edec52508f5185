"""A lexical BM25 ranking: the model-independent "production" ranking simulated clicks are made on.

>>> r = bm25_ranking(["a", "b", "c"], ["red shoe", "blue shoe", "green hat"], ["q"], ["red shoes"])
>>> r.top("q")
['a']
"""

from __future__ import annotations

from collections.abc import Sequence

from evalkit.data.click_simulation import bm25_top_k
from evalkit.retrieve.ranking import Ranking


def bm25_ranking(
    item_ids: Sequence[str],
    item_texts: Sequence[str],
    query_ids: Sequence[str],
    query_texts: Sequence[str],
    k: int = 10,
    k1: float = 1.2,
    b: float = 0.75,
) -> Ranking:
    """BM25 (Lucene idf) top-``k`` of every query over ``item_texts``, as a :class:`Ranking`
    (:func:`evalkit.data.click_simulation.bm25_top_k`: items sharing no term with the query are
    not ranked; ties broken by item id descending, like every evalkit ranking)."""
    indices, scores = bm25_top_k(item_ids, item_texts, query_ids, query_texts, k=k, k1=k1, b=b)
    return Ranking(list(query_ids), indices, scores, list(item_ids))
