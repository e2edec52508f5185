"""The re-index analysis (:mod:`evalkit.compare.reindex_analysis`) inside the evaluation's own pass.

Each catalog matrix is resident once.  While a version's catalog is indexed for the main search
(:meth:`evalkit.engine.local_engine.LocalEngine.search`), :meth:`ReindexPass.on_catalog` also searches
the *sampled* query vectors of its partners of equal dimension (small: ``compare.reindex_queries``
rows): the candidates' on the baseline's catalog (``candidate_queries_on_baseline_index``), the
baseline's on each candidate's (``baseline_queries_on_candidate_index``).  The candidates' query
vectors are therefore embedded (or read from the cache) before the baseline's stage, and handed
to their own stage unchanged (:func:`query_vectors`).

After the main pass, :func:`analyse_candidate` scores the states.  With exact search (flat
fp32, the default) the mixed states need no search at all: a query's top-k on the half-migrated
catalog is merged (:func:`evalkit.retrieve.merge.merge_disjoint`) from rankings the pass already
has - the main search on one catalog and the cross search on the other - and is exact as far as
both lists reach (``ndcg@10`` of a depth-100 ranking: always, in practice).  Only the queries the
merge cannot settle (a metric cut at k, an approximate index) are searched on the half-migrated
catalog, built once per candidate (:func:`mixed_catalog`: the baseline's rows read from the
vector store's memory-mapped shards, the candidate's re-embedded rows copied over them block by
block) and freed.  A state the pass could not score (``engine=ray`` searches on Ray tasks) is
scored there from a catalog re-read from the store, one at a time.

``seconds`` (the cross searches in the pass plus this stage) is the parent run's
``reindex_seconds``.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit.compare.reindex_analysis import (
    A_ON_B,
    B_ON_A,
    ReindexAnalysis,
    catalog_index,
    decide_states,
    dims_differ,
    mixed_rows,
    mixed_state,
    per_query_of,
    restrict,
    sample_rows,
)
from evalkit.compare.thresholds import metric_cutoff
from evalkit.data.schema import EvalData
from evalkit.embed.cache import CacheSettings, populated_empty
from evalkit.embed.embed_pass import vectors_of
from evalkit.embed.model_version import EmbeddingResult, ModelVersion
from evalkit.engine.local_engine import catalog_vectors
from evalkit.index.faiss_index import IndexSpec
from evalkit.results import VersionResult
from evalkit.retrieve.merge import merge_disjoint
from evalkit.retrieve.ranking import Ranking
from evalkit.retrieve.replay import replay
from evalkit.run.run_settings import ReindexSettings

log = logging.getLogger(__name__)

#: catalog rows per block when the candidate's rows are copied into the mixed catalog
MIX_BLOCK = 65_536


@dataclass
class ReindexPass:
    """What the main pass contributes to the re-index analysis (module docstring)."""

    baseline: str
    candidates: tuple[str, ...]
    rows: np.ndarray  # sampled query rows (ascending)
    query_ids: list[str]  # their ids
    qrels: Mapping[str, Mapping[str, int]]
    metric: str
    k: int
    batch: int
    queries: dict[str, np.ndarray] = field(default_factory=dict)  # sampled query vectors
    # (queries of, catalog of) -> the sampled queries' top-k (scored after the pass: k ids and
    # scores per sampled query, small)
    rankings: dict[tuple[str, str], Any] = field(default_factory=dict)
    seconds: float = 0.0

    def partners(self, name: str) -> list[str]:
        """The versions whose queries are searched on ``name``'s catalog."""
        if name == self.baseline:
            return list(self.candidates)
        return [self.baseline] if name in self.candidates else []

    def add_queries(self, name: str, vectors: np.ndarray) -> None:
        """Keep the sampled rows of ``name``'s query vectors (a copy: the rest can go)."""
        if name not in self.queries:
            self.queries[name] = np.ascontiguousarray(vectors[self.rows], dtype=np.float32)

    def on_catalog(
        self, name: str, index: Any, dim: int, item_ids: list[str], id_rank: np.ndarray
    ) -> None:
        """Search the partners' sampled queries of dimension ``dim`` on ``name``'s index (their
        rankings are scored after the pass, by :func:`analyse_candidate`)."""
        t0 = time.perf_counter()
        for other in self.partners(name):
            q = self.queries.get(other)
            if q is None or q.shape[1] != dim or (other, name) in self.rankings:
                continue
            self.rankings[other, name] = replay(
                index, q, self.query_ids, item_ids, self.k, self.batch, id_rank=id_rank
            )
        self.seconds += time.perf_counter() - t0


def start_pass(
    data: EvalData,
    names: list[str],
    size: int | None,
    k: int,
    metric: str,
    spec: IndexSpec,
    seed: int,
) -> ReindexPass:
    """The pass for baseline ``names[0]`` and candidates ``names[1:]``: the query sample is
    :func:`~evalkit.compare.reindex_analysis.sample_rows` of ``size`` (``compare.reindex_queries``; None:
    every query) seeded by ``seed`` (``compare.seed``)."""
    qrels = data.judgments.qrels if data.judgments is not None else {}
    rows = sample_rows(data.queries.ids, qrels, size, seed)
    return ReindexPass(
        baseline=names[0],
        candidates=tuple(names[1:]),
        rows=rows,
        query_ids=[data.queries.ids[i] for i in rows],
        qrels=qrels,
        metric=metric,
        k=int(k),
        batch=spec.search_batch,
    )


def query_vectors(version: ModelVersion, data: EvalData, cache: CacheSettings) -> EmbeddingResult:
    """The queries' vectors of ``version`` as the main pass gets them (a precomputed version's
    files, or the cache), without a progress bar."""
    return vectors_of(version, data.queries.ids, data.queries.texts, "query", cache)


def mixed_catalog(
    baseline: ModelVersion,
    candidate: ModelVersion,
    data: EvalData,
    cache: CacheSettings,
    mask: np.ndarray,
    block: int = MIX_BLOCK,
) -> np.ndarray:
    """The half-migrated catalog: the baseline's rows, with the candidate's where ``mask``.

    Built once: the baseline's rows are gathered from the store's memory-mapped shards into one
    float32 matrix, then the candidate's masked rows are read and copied in, one block of
    ``block`` catalog rows at a time (a block's rows sit in a few shards), so memory stays at one
    catalog matrix plus one block."""
    base = catalog_vectors(baseline, data, cache).vectors
    if base.flags.writeable and base.flags.c_contiguous and base.dtype == np.float32:
        out = base
    else:  # a read-only view of one memory-mapped shard (small catalogs): one copy
        out = populated_empty(base.shape)
        out[:] = base
    del base
    n = len(mask)
    for s in range(0, n, block):
        r = s + np.flatnonzero(mask[s : s + block])
        if len(r):
            out[r] = catalog_vectors(candidate, data, cache, rows=r).vectors
    return out


def analyse_candidate(
    rpass: ReindexPass,
    baseline: ModelVersion,
    candidate: ModelVersion,
    known: Mapping[str, Mapping[str, float]],
    data: EvalData,
    cache: CacheSettings,
    spec: IndexSpec,
    id_rank: np.ndarray,
    *,
    fraction: float,
    margin: float,
    n_resamples: int,
    seed: int,
    confidence: float,
    main: Mapping[str, Ranking | None] | None = None,
) -> ReindexAnalysis:
    """Every state of ``candidate`` vs the baseline (equal dimensions) on the sampled queries:
    the cross states from the pass (scored here when the pass could not), then the mixed states.

    ``main``: the main evaluation's rankings (``"baseline"``, ``"candidate"``).  With exact
    search they and the cross rankings give the mixed states (:func:`mixed_rankings`); only the
    queries they cannot settle are searched on the mixed catalog, built once and freed."""
    t0 = time.perf_counter()
    qids = rpass.query_ids
    item_ids = list(data.catalog.ids)
    for v in (baseline, candidate):
        if v.name not in rpass.queries:  # engine=ray: read back from the cache
            rpass.add_queries(v.name, query_vectors(v, data, cache).vectors)
    a_q, b_q = rpass.queries[baseline.name], rpass.queries[candidate.name]

    def cross(queries_of: Any, catalog_of: Any, q: np.ndarray) -> Ranking:
        ranking = rpass.rankings.pop((queries_of.name, catalog_of.name), None)
        if ranking is not None:
            return ranking
        # not searched in the pass (engine=ray): the catalog once more, alone
        docs = catalog_vectors(catalog_of, data, cache).vectors
        index = catalog_index(docs, spec)
        got = replay(index, q, qids, item_ids, rpass.k, spec.search_batch, id_rank=id_rank)
        del index, docs
        gc.collect()
        return got

    b_on_a = cross(candidate, baseline, b_q)
    a_on_b = cross(baseline, candidate, a_q)
    mask = mixed_rows(len(item_ids), fraction, seed)
    main = main or {}
    mixed_a, mixed_b = mixed_rankings(
        rpass, main.get("baseline"), main.get("candidate"), a_on_b, b_on_a, mask, id_rank, spec
    )
    n_searched = int((~mixed_a.settled).sum() + (~mixed_b.settled).sum())
    if n_searched:
        mixed = mixed_catalog(baseline, candidate, data, cache, mask)
        index = catalog_index(mixed, spec)
        for state, q in ((mixed_a, a_q), (mixed_b, b_q)):
            todo = np.flatnonzero(~state.settled)
            if len(todo):
                got = replay(
                    index, q[todo], [qids[i] for i in todo], item_ids, rpass.k,
                    spec.search_batch, id_rank=id_rank,
                )  # fmt: skip
                state.fill(todo, got)
        del index, mixed
        gc.collect()
    log.info(
        "re-index %s: mixed states of %d sampled queries merged from the pass's rankings, "
        "%d searched on the mixed catalog",
        candidate.name,
        len(qids),
        n_searched,
    )
    # the states in the order of the in-memory analysis (the report lists them so)
    score_of = lambda ranking: per_query_of(ranking, rpass.qrels, rpass.metric)  # noqa: E731
    per: dict[str, Mapping[str, float]] = {}
    per[B_ON_A] = score_of(b_on_a)
    per["baseline"] = restrict(known["baseline"], qids)
    per[A_ON_B] = score_of(a_on_b)
    per["candidate"] = restrict(known["candidate"], qids)
    per[mixed_state(fraction, "baseline")] = score_of(mixed_a.ranking(qids, item_ids))
    per[mixed_state(fraction, "candidate")] = score_of(mixed_b.ranking(qids, item_ids))
    rpass.seconds += time.perf_counter() - t0
    return decide_states(
        per,
        rpass.metric,
        int(a_q.shape[1]),
        fraction,
        margin,
        (baseline.name, candidate.name),
        n_resamples,
        seed,
        confidence,
    )


@dataclass
class MixedState:
    """One query set's top-k on the mixed catalog: ``settled`` rows are final (merged exactly,
    or searched on the mixed catalog); the others are still to be searched."""

    rows: np.ndarray
    scores: np.ndarray
    settled: np.ndarray

    @classmethod
    def unsettled(cls, n: int, k: int) -> MixedState:
        return cls(
            np.full((n, k), -1, dtype=np.int64),
            np.zeros((n, k), dtype=np.float32),
            np.zeros(n, dtype=bool),
        )

    def fill(self, todo: np.ndarray, ranking: Ranking) -> None:
        """Rows ``todo`` from a search of those queries on the mixed catalog."""
        width = min(ranking.k, self.rows.shape[1])
        self.rows[todo] = -1
        self.rows[todo, :width] = ranking.indices[:, :width]
        self.scores[todo, :width] = ranking.scores[:, :width]
        self.settled[todo] = True

    def ranking(self, query_ids: list[str], item_ids: list[str]) -> Ranking:
        return Ranking(query_ids=list(query_ids), indices=self.rows, scores=self.scores,
                       item_ids=item_ids)  # fmt: skip


def mixed_rankings(
    rpass: ReindexPass,
    baseline_main: Ranking | None,
    candidate_main: Ranking | None,
    a_on_b: Ranking,
    b_on_a: Ranking,
    mask: np.ndarray,
    id_rank: np.ndarray,
    spec: IndexSpec,
) -> tuple[MixedState, MixedState]:
    """Both query sets' top-k on the mixed catalog (baseline's rows, the candidate's where
    ``mask``), merged (:func:`~evalkit.retrieve.merge.merge_disjoint`) from rankings the pass
    has: A's queries from A-on-A (the main search) and A-on-B, B's from B-on-A and B-on-B.  A
    query is settled when the merge is exact to the metric's cut-off; with approximate search
    (or no main ranking) none is."""
    n, k = len(rpass.query_ids), rpass.k
    if not spec.exact or baseline_main is None or candidate_main is None:
        return MixedState.unsettled(n, k), MixedState.unsettled(n, k)
    need = min(metric_cutoff(rpass.metric, k), k)
    n_items = len(mask)
    out = []
    for first, second in ((baseline_main, a_on_b), (b_on_a, candidate_main)):
        s1, r1 = _rows_of(first, rpass.query_ids)
        s2, r2 = _rows_of(second, rpass.query_ids)
        if r1.shape != r2.shape:  # different depths: nothing to merge
            out.append(MixedState.unsettled(n, k))
            continue
        m = merge_disjoint(s1, r1, s2, r2, from_second=mask, id_rank=id_rank, n_items=n_items)
        settled = m.exact >= min(need, r1.shape[1])
        rows = np.full((n, k), -1, dtype=np.int64)
        scores = np.zeros((n, k), dtype=np.float32)
        rows[:, : m.rows.shape[1]], scores[:, : m.rows.shape[1]] = m.rows, m.scores
        out.append(MixedState(rows, scores, settled))
    return out[0], out[1]


def _rows_of(ranking: Ranking, query_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of ``query_ids`` in ``ranking`` (in that order)."""
    if ranking.query_ids == list(query_ids):
        return ranking.scores, ranking.indices
    at = np.fromiter((ranking.row(q) for q in query_ids), dtype=np.int64, count=len(query_ids))
    return ranking.scores[at], ranking.indices[at]


def plan_pass(
    data: EvalData,
    versions: Sequence[ModelVersion],
    reindex: ReindexSettings,
    cache: CacheSettings,
    k: int,
    metric: str,
    spec: IndexSpec,
    seed: int,
    logged_baseline: bool,
) -> ReindexPass | None:
    """The re-index analysis's share of the main pass, or None when it does not run
    (``compare.reindex=false``, one version, a logged baseline, no cache)."""
    if len(versions) < 2 or logged_baseline or not reindex.enabled:
        return None
    if not cache.enabled and not all(v.brings_vectors for v in versions):
        log.warning("compare.reindex needs the embedding cache (cache.enabled=true): skipped")
        return None
    return start_pass(data, [v.name for v in versions], reindex.queries, k, metric, spec, seed)


def reindex_analyses(
    rpass: ReindexPass | None,
    versions: Sequence[ModelVersion],
    results: Sequence[VersionResult],
    data: EvalData,
    cache: CacheSettings,
    spec: IndexSpec,
    id_rank: np.ndarray,
    *,
    fraction: float,
    margin: float,
    n_resamples: int,
    seed: int,
    confidence: float,
) -> dict[str, ReindexAnalysis]:
    """Re-index or not (:mod:`evalkit.compare.reindex_analysis`) for every candidate, on the pass's query
    sample (``compare.reindex_queries``): the cross states were scored in the main pass; the
    half-migrated catalog is built here once per candidate and freed (:func:`analyse_candidate`)."""
    if rpass is None:
        return {}
    (base_v, *cand_v), (base_r, *cand_r) = versions, results
    metric = rpass.metric
    boot = {"n_resamples": n_resamples, "seed": seed, "confidence": confidence}
    out = {}
    for v, r in zip(cand_v, cand_r):
        known = {"baseline": base_r.per_query[metric], "candidate": r.per_query[metric]}
        da, db = int(base_r.extra.get("dim", 0)), int(r.extra.get("dim", 0))
        if da != db:  # the two main evaluations' values: every query, nothing to search
            out[v.name] = dims_differ(da, db, metric, known, **boot)
            continue
        if "catalog_parts" in base_r.extra or "catalog_parts" in r.extra:
            # engine=ray streamed a precomputed catalog: it is never loaded on the driver whole
            log.info(
                "re-index %s: not analysed (catalog streamed on Ray, never on the driver)", v.name
            )
            continue
        out[v.name] = analyse_candidate(
            rpass,
            base_v,
            v,
            known,
            data,
            cache,
            spec,
            id_rank,
            fraction=fraction,
            margin=margin,
            main={"baseline": base_r.ranking, "candidate": r.ranking},
            **boot,
        )
        log.info("re-index %s: %s", v.name, out[v.name].action)
    log.info("re-index analysis on %d sampled queries: %.1f s", len(rpass.query_ids), rpass.seconds)
    return out
