"""Every version's scores of the pairs any version retrieved: the non-relevant half of the score
population a downstream cut-off is mapped on (:mod:`evalkit.compare.thresholds`).

Judgments such as Cranfield's or BEIR's qrels hold only relevant items, so their pairs alone say
nothing about the scores of what a cut should drop.  After every version is evaluated, the
pipeline collects the top-``k`` pairs (``k`` = the primary metric's cut-off) of each judged
query under every evaluated version, leaves out the judged pairs (scored already), and scores
the rest under *every* version: a pair retrieved only by A needs B's vectors of its query and
item, which are read again through the embedding cache (warm: no embedding calls) or from a
precomputed version's files, for those queries and items only.  The result lands in
``VersionResult.retrieved_pair_ids`` / ``retrieved_similarity`` / ``retrieved_k``.

Not scored (and the population is the judged pairs alone, said in the report) when the cache is
off, when a baseline comes from an earlier MLflow run (no vectors), or when a version is a
precomputed Parquet catalog (``engine=ray`` streams it part by part, never on the driver; it is
left out under every engine so that both engines give the same verdict).

>>> from evalkit.retrieve.ranking import Ranking
>>> r = Ranking(["q1", "q2"], np.array([[0, 1], [1, 2]]), np.zeros((2, 2), "f4"), ["a", "b", "c"])
>>> retrieved_pairs([r], {"q1": {"a": 1}}, k=2)
[('q1', 'b')]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from evalkit.data.schema import EvalData
from evalkit.embed.cache import CacheSettings
from evalkit.embed.embed_pass import vectors_of
from evalkit.embed.model_version import ModelVersion
from evalkit.engine.local_engine import catalog_vectors
from evalkit.pairs import pair_similarity
from evalkit.results import VersionResult
from evalkit.retrieve.ranking import Ranking

log = logging.getLogger(__name__)


def retrieved_pairs(
    rankings: Sequence[Ranking], qrels: Mapping[str, Mapping[str, int]], k: int
) -> list[tuple[str, str]]:
    """The sorted union of every ranking's top-``k`` pairs of judged queries, judged pairs left
    out (they are in ``VersionResult.pair_ids`` already)."""
    out: set[tuple[str, str]] = set()
    for ranking in rankings:
        present = set(ranking.query_ids)
        for q, judged in qrels.items():
            if not judged or q not in present:
                continue
            out.update((q, i) for i in ranking.top(q, k) if i not in judged)
    return sorted(out)


@dataclass(frozen=True)
class RetrievedRows:
    """Pairs as rows: the distinct queries' rows of ``data.queries`` (``q_at``) and the
    distinct items' rows of the catalog (``i_at``), and each pair's index into both (``q_of``,
    ``i_of``).  Computed once and scored by every version (:func:`score_pairs`)."""

    q_at: np.ndarray
    i_at: np.ndarray
    q_of: np.ndarray
    i_of: np.ndarray

    @classmethod
    def of(cls, data: EvalData, pairs: Sequence[tuple[str, str]]) -> RetrievedRows:
        """>>> from evalkit.data.schema import Catalog, Queries
        >>> d = EvalData("x", Catalog(["a", "b"], ["A", "B"]), Queries(["q"], ["Q"]), None)
        >>> r = RetrievedRows.of(d, [("q", "b"), ("q", "a")])
        >>> r.i_at.tolist(), r.i_of.tolist()
        ([0, 1], [1, 0])
        """
        if not pairs:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty)
        q_ids, i_ids = (np.asarray(x, dtype=object) for x in zip(*pairs))
        uq, q_of = np.unique(q_ids, return_inverse=True)
        ui, i_of = np.unique(i_ids, return_inverse=True)
        q_at = pd.Index(np.asarray(data.queries.ids, dtype=object)).get_indexer(uq)
        i_at = pd.Index(np.asarray(data.catalog.ids, dtype=object)).get_indexer(ui)
        return cls(q_at, i_at, q_of, i_of)


def score_pairs(
    version: ModelVersion, data: EvalData, rows: RetrievedRows, cache: CacheSettings
) -> np.ndarray:
    """``version``'s raw inner product (the score its index ranks by) of every pair of ``rows``."""
    if not len(rows.q_of):
        return np.zeros(0, dtype=np.float64)
    q_ids = [data.queries.ids[j] for j in rows.q_at]
    q_texts = [data.queries.texts[j] for j in rows.q_at]
    # check=False: checked when the version was evaluated
    qv = vectors_of(version, q_ids, q_texts, "query", cache, check=False).vectors
    iv = catalog_vectors(version, data, cache, rows=rows.i_at).vectors
    return pair_similarity(qv, iv, rows.q_of, rows.i_of, normalize=False)


def score_retrieved_pairs(
    results: Sequence[VersionResult],
    versions: Sequence[ModelVersion],
    data: EvalData,
    cache: CacheSettings,
    k: int,
) -> list[VersionResult]:
    """The results, with ``retrieved_*`` filled in where the version's vectors can be read again.

    ``versions`` are the evaluated versions, matching the last ``len(versions)`` results (a
    baseline from MLflow comes first and has no version: it gets no retrieved pairs).
    """
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
        # engine=ray reads a precomputed Parquet catalog part by part and never whole on the
        # driver; leaving its top-k pairs out under every engine keeps engine=local and
        # engine=ray verdicts identical on the same vectors.
        log.info(
            "score thresholds: top-%d pairs not scored (a precomputed Parquet catalog: judged "
            "pairs only, under every engine)",
            k,
        )
        return results
    pairs = retrieved_pairs([r.ranking for r in results if r.ranking is not None], qrels, k)
    first = len(results) - len(versions)
    rows = RetrievedRows.of(data, pairs)
    for i, version in enumerate(versions, start=first):
        results[i] = replace(
            results[i],
            retrieved_pair_ids=pairs,
            retrieved_similarity=score_pairs(version, data, rows, cache),
            retrieved_k=int(k),
        )
    log.info("score thresholds: %d unjudged top-%d pairs scored by every version", len(pairs), k)
    return results
