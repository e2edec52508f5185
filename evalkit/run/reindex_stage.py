"""The re-index analysis (:mod:`evalkit.compare.reindex_analysis`) as a stage of the evaluation:
while an engine holds a version's catalog, :meth:`ReindexPass.on_resident` searches its partners'
sampled queries through it; :func:`analyse_candidate` then scores the states, the mixed ones merged
from the pass's rankings where exact, the rest searched on the half-migrated catalog.
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
from evalkit.engine.resident import ResidentCatalog
from evalkit.index.faiss_index import IndexSpec
from evalkit.results import VersionResult
from evalkit.retrieve.merge import merge_disjoint
from evalkit.retrieve.ranking import Ranking
from evalkit.retrieve.replay import replay
from evalkit.retrieve.searcher import Searcher
from evalkit.run.run_settings import ReindexSettings, RunSettings

log = logging.getLogger(__name__)

#: catalog rows per block when the candidate's rows are copied into the mixed catalog
MIX_BLOCK = 65_536


@dataclass(frozen=True)
class ReindexSetup:
    """What the analysis runs on and decides with (``seed``: the sample, mixed rows and bootstrap)."""

    data: EvalData
    cache: CacheSettings
    spec: IndexSpec
    id_rank: np.ndarray
    metric: str
    k: int
    fraction: float = 0.5
    margin: float = 0.01
    n_resamples: int = 1000
    seed: int = 42
    confidence: float = 0.95

    @classmethod
    def of(cls, s: RunSettings, data: EvalData, id_rank: np.ndarray) -> ReindexSetup:
        return cls(
            data=data,
            cache=s.cache,
            spec=s.index,
            id_rank=id_rank,
            metric=s.gates.metric,
            k=int(s.k),
            fraction=s.reindex.fraction,
            margin=s.gates.primary_metric.margin,
            n_resamples=s.compare.bootstrap,
            seed=s.compare.seed,
            confidence=s.compare.confidence,
        )

    @property
    def boot(self) -> dict[str, Any]:
        return {"n_resamples": self.n_resamples, "seed": self.seed, "confidence": self.confidence}

    def search(self, index: Searcher, queries: np.ndarray, query_ids: list[str]) -> Ranking:
        ids, batch = self.data.catalog.ids, self.spec.search_batch
        return replay(index, queries, query_ids, ids, self.k, batch, id_rank=self.id_rank)


@dataclass
class ReindexPass:
    """The sampled queries of every version and the cross rankings searched in the main pass."""

    setup: ReindexSetup
    baseline: str
    candidates: tuple[str, ...]
    rows: np.ndarray  # sampled query rows (ascending)
    query_ids: list[str]  # their ids
    queries: dict[str, np.ndarray] = field(default_factory=dict)  # sampled query vectors
    # (queries of, catalog of) -> the sampled queries' top-k (scored after the pass)
    rankings: dict[tuple[str, str], Ranking] = field(default_factory=dict)
    seconds: float = 0.0

    def partners(self, name: str) -> list[str]:
        if name == self.baseline:
            return list(self.candidates)
        return [self.baseline] if name in self.candidates else []

    def add_queries(self, name: str, vectors: np.ndarray) -> None:
        if name not in self.queries:
            self.queries[name] = np.ascontiguousarray(vectors[self.rows], dtype=np.float32)

    def candidate_queries(self, versions: Sequence[ModelVersion]) -> dict[str, EmbeddingResult]:
        """The candidates' query vectors, read before the baseline's catalog is resident."""
        out = {}
        for version in versions:
            if version.name in self.candidates:
                out[version.name] = query_vectors(version, self.setup.data, self.setup.cache)
                self.add_queries(version.name, out[version.name].vectors)
        return out

    def on_resident(self, resident: ResidentCatalog) -> None:
        """Search the partners' sampled queries of the resident catalog's dimension through it."""
        name = resident.version
        self.add_queries(name, resident.queries)
        t0 = time.perf_counter()
        for other in self.partners(name):
            q = self.queries.get(other)
            if q is None or q.shape[1] != resident.dim or (other, name) in self.rankings:
                continue
            self.rankings[other, name] = self.setup.search(resident.index, q, self.query_ids)
        self.seconds += time.perf_counter() - t0


def start_pass(setup: ReindexSetup, names: Sequence[str], size: int | None) -> ReindexPass:
    """The pass for baseline ``names[0]`` and candidates ``names[1:]`` on ``size`` sampled queries
    (None: all)."""
    data = setup.data
    qrels = data.judgments.qrels if data.judgments is not None else {}
    rows = sample_rows(data.queries.ids, qrels, size, setup.seed)
    query_ids = [data.queries.ids[i] for i in rows]
    return ReindexPass(setup, names[0], tuple(names[1:]), rows, query_ids)


def plan_pass(
    setup: ReindexSetup,
    versions: Sequence[ModelVersion],
    reindex: ReindexSettings,
    logged_baseline: bool,
) -> ReindexPass | None:
    """The re-index analysis's share of the main pass, or None when it does not run."""
    if len(versions) < 2 or logged_baseline or not reindex.enabled:
        return None
    if not setup.cache.enabled and not all(v.brings_vectors for v in versions):
        log.warning("compare.reindex needs the embedding cache (cache.enabled=true): skipped")
        return None
    return start_pass(setup, [v.name for v in versions], reindex.queries)


def query_vectors(version: ModelVersion, data: EvalData, cache: CacheSettings) -> EmbeddingResult:
    return vectors_of(version, data.queries.ids, data.queries.texts, "query", cache)


def mixed_catalog(
    baseline: ModelVersion,
    candidate: ModelVersion,
    data: EvalData,
    cache: CacheSettings,
    mask: np.ndarray,
    block: int = MIX_BLOCK,
) -> np.ndarray:
    """The half-migrated catalog: the baseline's rows, the candidate's where ``mask`` (copied
    ``block`` rows at a time: memory stays at one catalog matrix plus one block)."""
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


@dataclass(frozen=True)
class CandidatePair:
    """The baseline and one candidate of equal dimension, with their main evaluations."""

    baseline: ModelVersion
    candidate: ModelVersion
    baseline_result: VersionResult
    candidate_result: VersionResult

    def known(self, metric: str) -> dict[str, Mapping[str, float]]:
        return {
            "baseline": self.baseline_result.per_query[metric],
            "candidate": self.candidate_result.per_query[metric],
        }


def analyse_candidate(rpass: ReindexPass, pair: CandidatePair) -> ReindexAnalysis:
    """Every state of ``pair.candidate`` vs the baseline on the sampled queries."""
    t0 = time.perf_counter()
    setup = rpass.setup
    a_q, b_q = sampled_queries(rpass, pair)
    b_on_a = cross_ranking(rpass, pair.candidate, pair.baseline, b_q)
    a_on_b = cross_ranking(rpass, pair.baseline, pair.candidate, a_q)
    mask = mixed_rows(len(setup.data.catalog), setup.fraction, setup.seed)
    main = (pair.baseline_result.ranking, pair.candidate_result.ranking)
    mixed_a, mixed_b = mixed_rankings(rpass, main, a_on_b, b_on_a, mask)
    n_searched = search_unsettled(rpass, pair, mask, ((mixed_a, a_q), (mixed_b, b_q)))
    log.info(
        "re-index %s: mixed states of %d sampled queries merged from the pass's rankings, "
        "%d searched on the mixed catalog",
        pair.candidate.name,
        len(rpass.query_ids),
        n_searched,
    )
    per = state_scores(rpass, pair.known(setup.metric), b_on_a, a_on_b, (mixed_a, mixed_b))
    rpass.seconds += time.perf_counter() - t0
    names, dim = (pair.baseline.name, pair.candidate.name), int(a_q.shape[1])
    return decide_states(per, setup.metric, dim, setup.fraction, setup.margin, names, **setup.boot)


def sampled_queries(rpass: ReindexPass, pair: CandidatePair) -> tuple[np.ndarray, np.ndarray]:
    setup = rpass.setup
    for v in (pair.baseline, pair.candidate):
        if v.name not in rpass.queries:
            rpass.add_queries(v.name, query_vectors(v, setup.data, setup.cache).vectors)
    return rpass.queries[pair.baseline.name], rpass.queries[pair.candidate.name]


def cross_ranking(
    rpass: ReindexPass, queries_of: ModelVersion, catalog_of: ModelVersion, q: np.ndarray
) -> Ranking:
    """The pass's ranking of ``q`` on ``catalog_of``'s catalog, else a search of it."""
    ranking = rpass.rankings.pop((queries_of.name, catalog_of.name), None)
    if ranking is not None:
        return ranking
    setup = rpass.setup
    docs = catalog_vectors(catalog_of, setup.data, setup.cache).vectors
    index = catalog_index(docs, setup.spec)
    got = setup.search(index, q, rpass.query_ids)
    del index, docs
    gc.collect()
    return got


def search_unsettled(
    rpass: ReindexPass,
    pair: CandidatePair,
    mask: np.ndarray,
    states: Sequence[tuple[MixedState, np.ndarray]],
) -> int:
    """Search the queries no merge settled on the mixed catalog; returns how many."""
    n_searched = int(sum((~state.settled).sum() for state, _ in states))
    if not n_searched:
        return 0
    setup, qids = rpass.setup, rpass.query_ids
    mixed = mixed_catalog(pair.baseline, pair.candidate, setup.data, setup.cache, mask)
    index = catalog_index(mixed, setup.spec)
    for state, q in states:
        todo = np.flatnonzero(~state.settled)
        if len(todo):
            state.fill(todo, setup.search(index, q[todo], [qids[i] for i in todo]))
    del index, mixed
    gc.collect()
    return n_searched


def state_scores(
    rpass: ReindexPass,
    known: Mapping[str, Mapping[str, float]],
    b_on_a: Ranking,
    a_on_b: Ranking,
    mixed: tuple[MixedState, MixedState],
) -> dict[str, Mapping[str, float]]:
    """Per-query primary metric of every state, in the order the report lists them."""
    setup, qids = rpass.setup, rpass.query_ids
    item_ids = list(setup.data.catalog.ids)
    qrels = setup.data.judgments.qrels if setup.data.judgments is not None else {}

    def score_of(ranking: Ranking) -> dict[str, float]:
        return per_query_of(ranking, qrels, setup.metric)

    return {
        B_ON_A: score_of(b_on_a),
        "baseline": restrict(known["baseline"], qids),
        A_ON_B: score_of(a_on_b),
        "candidate": restrict(known["candidate"], qids),
        mixed_state(setup.fraction, "baseline"): score_of(mixed[0].ranking(qids, item_ids)),
        mixed_state(setup.fraction, "candidate"): score_of(mixed[1].ranking(qids, item_ids)),
    }


@dataclass
class MixedState:
    """One query set's top-k on the mixed catalog; rows not ``settled`` are still to be searched."""

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
    main: tuple[Ranking | None, Ranking | None],
    a_on_b: Ranking,
    b_on_a: Ranking,
    mask: np.ndarray,
) -> tuple[MixedState, MixedState]:
    """Both query sets' top-k on the mixed catalog merged from the pass's rankings: A's from A-on-A
    (``main[0]``) and A-on-B, B's from B-on-A and B-on-B (``main[1]``).  A query is settled when
    the merge is exact to the metric's cut-off; with approximate search none is."""
    setup = rpass.setup
    n, k = len(rpass.query_ids), setup.k
    baseline_main, candidate_main = main
    if not setup.spec.exact or baseline_main is None or candidate_main is None:
        return MixedState.unsettled(n, k), MixedState.unsettled(n, k)
    need = min(metric_cutoff(setup.metric, k), k)
    qids, id_rank, states = rpass.query_ids, setup.id_rank, []
    for first, second in ((baseline_main, a_on_b), (b_on_a, candidate_main)):
        state = MixedState.unsettled(n, k)
        (s1, r1), (s2, r2) = _rows_of(first, qids), _rows_of(second, qids)
        if r1.shape == r2.shape:  # else different depths: nothing to merge
            m = merge_disjoint(s1, r1, s2, r2, from_second=mask, id_rank=id_rank, n_items=len(mask))
            w = m.rows.shape[1]
            state.rows[:, :w], state.scores[:, :w] = m.rows, m.scores
            state.settled[:] = m.exact >= min(need, r1.shape[1])
        states.append(state)
    return states[0], states[1]


def _rows_of(ranking: Ranking, query_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if ranking.query_ids == list(query_ids):
        return ranking.scores, ranking.indices
    at = np.fromiter((ranking.row(q) for q in query_ids), dtype=np.int64, count=len(query_ids))
    return ranking.scores[at], ranking.indices[at]


def reindex_analyses(
    rpass: ReindexPass | None,
    versions: Sequence[ModelVersion],
    results: Sequence[VersionResult],
) -> dict[str, ReindexAnalysis]:
    """Re-index or not for every candidate (baseline first); ``{}`` when the pass did not run."""
    if rpass is None:
        return {}
    (base_v, *cand_v), (base_r, *cand_r) = versions, results
    setup, out = rpass.setup, {}
    for v, r in zip(cand_v, cand_r):
        pair = CandidatePair(base_v, v, base_r, r)
        da, db = int(base_r.extra.get("dim", 0)), int(r.extra.get("dim", 0))
        if da != db:  # the main evaluations' values, nothing to search
            out[v.name] = dims_differ(da, db, setup.metric, pair.known(setup.metric), **setup.boot)
        elif "catalog_parts" in base_r.extra or "catalog_parts" in r.extra:
            log.info(
                "re-index %s: not analysed (catalog streamed on Ray, never on the driver)", v.name
            )
        else:
            out[v.name] = analyse_candidate(rpass, pair)
            log.info("re-index %s: %s", v.name, out[v.name].action)
    log.info("re-index analysis on %d sampled queries: %.1f s", len(rpass.query_ids), rpass.seconds)
    return out
