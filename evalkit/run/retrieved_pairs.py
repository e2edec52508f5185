"""Every version's scores of the unjudged top-``k`` pairs of judged queries any version retrieved
(vectors read again through the cache): the non-relevant half of the score population a cut-off
is mapped on (:mod:`evalkit.compare.thresholds`).

>>> from evalkit.retrieve.ranking import Ranking
>>> r = Ranking(["q1", "q2"], np.array([[0, 1], [1, 2]]), np.zeros((2, 2), "f4"), ["a", "b", "c"])
>>> retrieved_pairs([r], {"q1": {"a": 1}}, k=2)
[('q1', 'b')]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from evalkit.data.schema import EvalData
from evalkit.embed.cache import CacheSettings
from evalkit.embed.embed_pass import vectors_of
from evalkit.embed.model_version import ModelVersion
from evalkit.engine.local_engine import catalog_vectors
from evalkit.pairs import pair_similarity, rows_in
from evalkit.results import VersionResult
from evalkit.retrieve.ranking import Ranking

log = logging.getLogger(__name__)


def retrieved_pairs(
    rankings: Sequence[Ranking], qrels: Mapping[str, Mapping[str, int]], k: int
) -> list[tuple[str, str]]:
    """The sorted union of every ranking's unjudged top-``k`` pairs of judged queries."""
    out: set[tuple[str, str]] = set()
    for ranking in rankings:
        present = set(ranking.query_ids)
        for q, judged in qrels.items():
            if not judged or q not in present:
                continue
            out.update((q, i) for i in ranking.top(q, k) if i not in judged)
    return sorted(out)


def located(data: EvalData, pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, ...]:
    """The distinct queries' and items' rows and each pair's index into both:
    ``(q_at, i_at, q_of, i_of)``."""
    if not pairs:
        return (np.zeros(0, dtype=np.int64),) * 4
    q_ids, i_ids = (np.asarray(x, dtype=object) for x in zip(*pairs))
    uq, q_of = np.unique(q_ids, return_inverse=True)
    ui, i_of = np.unique(i_ids, return_inverse=True)
    return rows_in(data.queries.ids, uq), rows_in(data.catalog.ids, ui), q_of, i_of


def score_pairs(
    version: ModelVersion, data: EvalData, rows: tuple[np.ndarray, ...], cache: CacheSettings
) -> np.ndarray:
    """``version``'s raw inner product (what its index ranks by) of every pair of ``rows``."""
    q_at, i_at, q_of, i_of = rows
    if not len(q_of):
        return np.zeros(0, dtype=np.float64)
    q_ids = [data.queries.ids[j] for j in q_at]
    q_texts = [data.queries.texts[j] for j in q_at]
    # check=False: checked when the version was evaluated
    qv = vectors_of(version, q_ids, q_texts, "query", cache, check=False).vectors
    iv = catalog_vectors(version, data, cache, rows=i_at).vectors
    return pair_similarity(qv, iv, q_of, i_of, normalize=False)


def score_retrieved_pairs(
    results: Sequence[VersionResult],
    versions: Sequence[ModelVersion],
    data: EvalData,
    cache: CacheSettings,
    k: int,
) -> list[VersionResult]:
    """The results, ``retrieved_*`` filled in where the version's vectors can be read again
    (``versions`` match the last results: a baseline from MLflow gets none)."""
    results = list(results)
    qrels = data.judgments.qrels if data.judgments is not None else {}
    if not qrels or len(results) < 2:
        return results
    if not cache.enabled and not all(v.brings_vectors for v in versions):
        log.info("score thresholds: top-%d pairs not scored (needs cache.enabled=true)", k)
        return results
    if any("catalog_parts" in r.extra for r in results) or any(
        v.streams("document") for v in versions
    ):
        log.info(
            "score thresholds: top-%d pairs not scored (a precomputed Parquet catalog: judged "
            "pairs only, under every engine)",
            k,
        )
        return results
    pairs = retrieved_pairs([r.ranking for r in results if r.ranking is not None], qrels, k)
    first = len(results) - len(versions)
    rows = located(data, pairs)
    for i, version in enumerate(versions, start=first):
        results[i] = replace(
            results[i],
            retrieved_pair_ids=pairs,
            retrieved_similarity=score_pairs(version, data, rows, cache),
            retrieved_k=int(k),
        )
    log.info("score thresholds: %d unjudged top-%d pairs scored by every version", len(pairs), k)
    return results
