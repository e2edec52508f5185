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
from typing import Any

import numpy as np
import pandas as pd

from evalkit.clicks.correlation import pair_similarity
from evalkit.data.schema import EvalData
from evalkit.embed import embed_texts
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


def _vectors(version: Any, ids: list[str], texts: list[str], role: str, cfg: Any) -> np.ndarray:
    if hasattr(version, "vectors_for"):  # precomputed: the team's vectors, by id
        return version.vectors_for(ids, role).vectors
    return embed_texts(
        version,
        texts,
        role,
        cache_dir=str(cfg.cache.dir),
        progress=False,
        check=False,  # checked when the version was evaluated
    ).vectors


def _parted(version: Any) -> bool:
    """A precomputed version whose catalog is Parquet (``engine=ray`` streams it part by part)."""
    streams = getattr(version, "streams", None)
    return bool(streams("document")) if callable(streams) else False


def score_pairs(
    version: Any, data: EvalData, pairs: Sequence[tuple[str, str]], cfg: Any
) -> np.ndarray:
    """``version``'s raw inner product (the score its index ranks by) of every pair."""
    if not pairs:
        return np.zeros(0, dtype=np.float64)
    q_ids, i_ids = (np.asarray(x, dtype=object) for x in zip(*pairs))
    uq, q_rows = np.unique(q_ids, return_inverse=True)
    ui, i_rows = np.unique(i_ids, return_inverse=True)
    q_at = pd.Index(np.asarray(data.queries.ids, dtype=object)).get_indexer(uq)
    i_at = pd.Index(np.asarray(data.catalog.ids, dtype=object)).get_indexer(ui)
    q_texts = [data.queries.texts[j] for j in q_at]
    doc_texts = data.embedded_texts()
    i_texts = [doc_texts[j] for j in i_at]
    qv = _vectors(version, uq.tolist(), q_texts, "query", cfg)
    iv = _vectors(version, ui.tolist(), i_texts, "document", cfg)
    return pair_similarity(qv, iv, q_rows, i_rows, normalize=False)


def score_retrieved_pairs(
    results: Sequence[VersionResult], versions: Sequence[Any], data: EvalData, cfg: Any, k: int
) -> None:
    """Fill ``retrieved_*`` of every result whose version's vectors can be read again.

    ``versions`` are the evaluated versions, matching the last ``len(versions)`` results (a
    baseline from MLflow comes first and has no version: it gets no retrieved pairs).
    """
    qrels = data.judgments.qrels if data.judgments is not None else {}
    if not qrels or len(results) < 2:
        return
    if not cfg.cache.enabled and not all(hasattr(v, "vectors_for") for v in versions):
        log.info("score thresholds: top-%d pairs not scored (needs cache.enabled=true)", k)
        return
    if any("catalog_parts" in r.extra for r in results) or any(_parted(v) for v in versions):
        # engine=ray reads a precomputed Parquet catalog part by part and never whole on the
        # driver; leaving its top-k pairs out under every engine keeps engine=local and
        # engine=ray verdicts identical on the same vectors.
        log.info(
            "score thresholds: top-%d pairs not scored (a precomputed Parquet catalog: judged "
            "pairs only, under every engine)",
            k,
        )
        return
    pairs = retrieved_pairs([r.ranking for r in results if r.ranking is not None], qrels, k)
    evaluated = results[len(results) - len(versions) :]
    for version, result in zip(versions, evaluated):
        result.retrieved_pair_ids = pairs
        result.retrieved_similarity = score_pairs(version, data, pairs, cfg)
        result.retrieved_k = int(k)
    log.info("score thresholds: %d unjudged top-%d pairs scored by every version", len(pairs), k)
