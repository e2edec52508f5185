"""Re-index or not: can the catalog be re-embedded with B in place (a rolling backfill), or must
the switch from A to B be atomic?

:func:`analyse_reindex` scores the states a rolling re-index passes through (``deltas[state]``:
paired bootstrap CI of the state minus ``baseline``); ``rolling_safe``: True, False, or None when
the dimensions differ.  The states, plans and rule: docs/explanation/verdict.md ("Re-index or not").

>>> rng = np.random.default_rng(0)
>>> docs = rng.standard_normal((40, 8)).astype("float32")
>>> queries = docs[:10] + 0.1 * rng.standard_normal((10, 8)).astype("float32")
>>> qrels = {f"q{i}": {f"d{i}": 1} for i in range(10)}
>>> r = analyse_reindex(docs, queries, docs, queries, [f"q{i}" for i in range(10)],
...                     [f"d{i}" for i in range(40)], qrels, "ndcg@10", k=10, n_resamples=200)
>>> r.rolling_safe, r.scores["mixed_50_candidate_queries"] == r.scores["baseline"]
(True, True)
"""

from __future__ import annotations

import gc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from evalkit.compare.bootstrap import bootstrap_mean_ci
from evalkit.compare.status import jsonable
from evalkit.errors import ConfigError
from evalkit.index.faiss_index import ArrayFlatIP, IndexSpec, build_index
from evalkit.metrics.ir import scorable_qrels, score
from evalkit.retrieve.replay import id_ranks, replay

B_ON_A = "candidate_queries_on_baseline_index"
A_ON_B = "baseline_queries_on_candidate_index"


def mixed_state(fraction: float, queries: str) -> str:
    """``mixed_50_candidate_queries`` for ``fraction`` 0.5 and ``queries`` "candidate"."""
    return f"mixed_{round(fraction * 100)}_{queries}_queries"


@dataclass(frozen=True)
class ReindexAnalysis:
    """What an index goes through between A and B, scored, and what to do (module docstring)."""

    dims_match: bool
    baseline_dim: int
    candidate_dim: int
    metric: str
    scores: dict[str, float]
    deltas: dict[str, tuple[float, float, float]]
    rolling_safe: bool | None
    action: str
    detail: str
    fraction: float = 0.5
    margin: float = 0.01
    n_queries: int = 0
    query_encoder: str | None = None  # "candidate" | "baseline": served during a safe backfill

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (NaN -> None, tuples -> lists)."""
        return jsonable(self)


def mixed_rows(n: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the catalog rows re-embedded by B in the mixed state."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"compare.reindex_fraction={fraction} (expected between 0 and 1)")
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[: round(fraction * n)]] = True
    return mask


def sample_rows(
    query_ids: Sequence[str],
    qrels: Mapping[str, Mapping[str, int]],
    size: int | None,
    seed: int,
) -> np.ndarray:
    """Ascending rows of a seeded sample of ``size`` scorable queries (None: all of them)."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ConfigError(f"compare.reindex_queries={size!r} is invalid (expected an integer >= 1)")
    judged = scorable_qrels(dict(qrels), list(query_ids))
    pool = np.array([i for i, q in enumerate(query_ids) if q in judged], dtype=np.int64)
    if size is None or size >= len(pool):
        return pool
    return np.sort(pool[np.random.default_rng(seed).permutation(len(pool))[:size]])


def per_query_of(
    ranking: Any, qrels: Mapping[str, Mapping[str, int]], metric: str
) -> dict[str, float]:
    """Per-query ``metric`` of a :class:`~evalkit.retrieve.ranking.Ranking`."""
    return score(ranking, dict(qrels), [metric]).per_query[metric]


def catalog_index(docs: np.ndarray, spec: IndexSpec) -> Any:
    """``spec``'s index of ``docs``; exact flat fp32 searches ``docs`` itself (no copy)."""
    if spec.kind == "flat" and spec.precision == "fp32":
        return ArrayFlatIP(docs, spec.threads)
    return build_index(docs, spec)


def dims_differ(
    baseline_dim: int,
    candidate_dim: int,
    metric: str,
    known: Mapping[str, Mapping[str, float]] | None = None,
    *,
    n_resamples: int = 1000,
    seed: int = 42,
    confidence: float = 0.95,
) -> ReindexAnalysis:
    """The analysis when dimensions differ; ``known`` per-query values fill the scores."""
    scores: dict[str, float] = {}
    deltas: dict[str, tuple[float, float, float]] = {}
    n = 0
    if known and "baseline" in known and "candidate" in known:
        scores, deltas, n = _summaries(known, n_resamples, seed, confidence)
    return ReindexAnalysis(
        dims_match=False,
        baseline_dim=baseline_dim,
        candidate_dim=candidate_dim,
        metric=metric,
        scores=scores,
        deltas=deltas,
        rolling_safe=None,
        action=(
            f"re-index the whole catalog before switching (dimensions {baseline_dim} -> "
            f"{candidate_dim}: the two indexes cannot be mixed)"
        ),
        detail="A's index cannot answer B's queries, nor hold B's vectors: build B's index "
        "completely, then switch queries and index together.",
        n_queries=n,
    )


def _per_query(
    docs: np.ndarray,
    queries: np.ndarray,
    query_ids: list[str],
    item_ids: list[str],
    qrels: Mapping[str, Mapping[str, int]],
    metric: str,
    k: int,
    spec: IndexSpec,
    id_rank: np.ndarray,
    both: np.ndarray | None = None,
) -> list[dict[str, float]]:
    """Per-query ``metric`` of ``queries`` (and ``both``, a second query set) on ``docs``."""
    index = catalog_index(docs, spec)
    out = [
        per_query_of(
            replay(index, q, query_ids, item_ids, k, spec.search_batch, id_rank=id_rank),
            qrels,
            metric,
        )
        for q in ((queries,) if both is None else (queries, both))
    ]
    del index
    gc.collect()
    return out


def analyse_reindex(
    baseline_docs: np.ndarray,
    baseline_queries: np.ndarray,
    candidate_docs: np.ndarray,
    candidate_queries: np.ndarray,
    query_ids: Sequence[str],
    item_ids: Sequence[str],
    qrels: Mapping[str, Mapping[str, int]],
    metric: str,
    *,
    k: int = 100,
    fraction: float = 0.5,
    margin: float = 0.01,
    seed: int = 42,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    spec: IndexSpec | None = None,
    known: Mapping[str, Mapping[str, float]] | None = None,
    names: tuple[str, str] = ("A", "B"),
    sample: int | None = None,
) -> ReindexAnalysis:
    """Score every state and decide, all in memory (``sample``: on :func:`sample_rows` only)."""
    spec = spec or IndexSpec()
    known = dict(known or {})
    da, db = int(baseline_docs.shape[1]), int(candidate_docs.shape[1])
    qids, iids = list(query_ids), list(item_ids)
    if sample is not None and da == db:
        rows = sample_rows(qids, qrels, sample, seed)
        baseline_queries, candidate_queries = baseline_queries[rows], candidate_queries[rows]
        qids = [qids[i] for i in rows]
        known = {s: restrict(v, qids) for s, v in known.items()}
    id_rank = id_ranks(iids)
    args = (qids, iids, qrels, metric, k, spec, id_rank)
    per: dict[str, Mapping[str, float]] = {}
    if da != db:
        if "baseline" not in known:
            (known["baseline"],) = _per_query(baseline_docs, baseline_queries, *args)
        if "candidate" not in known:
            (known["candidate"],) = _per_query(candidate_docs, candidate_queries, *args)
        return dims_differ(
            da, db, metric, known, n_resamples=n_resamples, seed=seed, confidence=confidence
        )

    # each version's catalog: the other's queries (and its own, unless known)
    for own, cross, docs, own_q, cross_q in (
        ("baseline", B_ON_A, baseline_docs, baseline_queries, candidate_queries),
        ("candidate", A_ON_B, candidate_docs, candidate_queries, baseline_queries),
    ):
        if own in known:
            (per[cross],) = _per_query(docs, cross_q, *args)
            per[own] = known[own]
        else:
            per[cross], per[own] = _per_query(docs, cross_q, *args, both=own_q)
    # The mixed catalog: one float32 copy, freed once its index is built and searched.
    mask = mixed_rows(len(iids), fraction, seed)
    mixed = np.array(baseline_docs, dtype=np.float32, copy=True)
    mixed[mask] = candidate_docs[mask]
    m_a, m_b = mixed_state(fraction, "baseline"), mixed_state(fraction, "candidate")
    per[m_a], per[m_b] = _per_query(mixed, baseline_queries, *args, both=candidate_queries)
    del mixed
    return decide_states(per, metric, da, fraction, margin, names, n_resamples, seed, confidence)


def restrict(per_query: Mapping[str, float], query_ids: Sequence[str]) -> dict[str, float]:
    """``per_query`` of ``query_ids`` only (those it has)."""
    return {q: per_query[q] for q in query_ids if q in per_query}


def decide_states(
    per: Mapping[str, Mapping[str, float]],
    metric: str,
    dim: int,
    fraction: float,
    margin: float,
    names: tuple[str, str],
    n_resamples: int = 1000,
    seed: int = 42,
    confidence: float = 0.95,
) -> ReindexAnalysis:
    """Summarise the per-query values of every state (paired bootstrap) and :func:`decide`."""
    scores, deltas, n = _summaries(per, n_resamples, seed, confidence)
    return decide(scores, deltas, metric, dim, fraction, margin, n, names)


def _summaries(
    per: Mapping[str, Mapping[str, float]], n_resamples: int, seed: int, confidence: float
) -> tuple[dict[str, float], dict[str, tuple[float, float, float]], int]:
    """Mean per state; paired bootstrap (mean, low, high) of state - baseline per query."""
    qids = sorted(per["baseline"])
    states = list(per)
    values = np.array([[per[s].get(q, math.nan) for s in states] for q in qids], dtype=np.float64)
    scores = {
        s: float(values[:, j].mean()) if len(qids) else math.nan for j, s in enumerate(states)
    }
    others = [s for s in states if s != "baseline"]
    diff = values[:, [states.index(s) for s in others]] - values[:, [states.index("baseline")]]
    ci = bootstrap_mean_ci(diff, n_resamples, seed, confidence)
    deltas = {
        s: (float(ci.mean[j]), float(ci.low[j]), float(ci.high[j])) for j, s in enumerate(others)
    }
    return scores, deltas, len(qids)


def _fmt(delta: tuple[float, float, float]) -> str:
    return f"{delta[0]:+.3f} [{delta[1]:+.3f}, {delta[2]:+.3f}]"


def decide(
    scores: Mapping[str, float],
    deltas: Mapping[str, tuple[float, float, float]],
    metric: str,
    dim: int,
    fraction: float,
    margin: float,
    n_queries: int = 0,
    names: tuple[str, str] = ("A", "B"),
) -> ReindexAnalysis:
    """The decision: of the safe plans, the one whose worst state has the higher ``ci_low``."""
    ok = safe_plans(deltas, fraction, margin)
    detail = states_text(deltas, metric, fraction, margin, names)
    analysis = ReindexAnalysis(
        dims_match=True,
        baseline_dim=dim,
        candidate_dim=dim,
        metric=metric,
        scores=dict(scores),
        deltas=dict(deltas),
        rolling_safe=False,
        action=(
            f"switch atomically: build {names[1]}'s index beside {names[0]}'s and flip queries "
            f"and index together (a rolling re-index loses {metric}: {detail})"
        ),
        detail=detail,
        fraction=fraction,
        margin=margin,
        n_queries=n_queries,
    )
    if not ok:
        return analysis
    encoder = max(ok, key=lambda e: ok[e][0])
    _, state = ok[encoder]
    action = rolling_action(encoder, state, deltas[state], names)
    return replace(analysis, rolling_safe=True, action=action, query_encoder=encoder)


def safe_plans(
    deltas: Mapping[str, tuple[float, float, float]], fraction: float, margin: float
) -> dict[str, tuple[float, str]]:
    """The rolling plans (by the query encoder served during the backfill) whose every state is
    non-inferior (``ci_low > -margin``): encoder -> (the worst state's ``ci_low``, that state)."""
    plans = {
        "candidate": (B_ON_A, mixed_state(fraction, "candidate")),
        "baseline": (mixed_state(fraction, "baseline"), A_ON_B),
    }
    return {
        encoder: min((deltas[s][1], s) for s in states)
        for encoder, states in plans.items()
        if all(deltas[s][1] > -margin for s in states)
    }


def states_text(
    deltas: Mapping[str, tuple[float, float, float]],
    metric: str,
    fraction: float,
    margin: float,
    names: tuple[str, str],
) -> str:
    """The four intermediate states' deltas in words (the analysis' ``detail``)."""
    a, b = names
    pct = round(fraction * 100)
    return (
        f"{metric} delta on the {pct}% mixed index: {_fmt(deltas[mixed_state(fraction, 'baseline')])} "
        f"with {a}'s queries, {_fmt(deltas[mixed_state(fraction, 'candidate')])} with {b}'s; "
        f"{b}'s queries on {a}'s index {_fmt(deltas[B_ON_A])}; {a}'s queries on {b}'s index "
        f"{_fmt(deltas[A_ON_B])} (non-inferior: 95% CI low > -{margin:g})"
    )


def rolling_action(
    encoder: str, state: str, delta: tuple[float, float, float], names: tuple[str, str]
) -> str:
    """What to do when the plan serving ``encoder``'s queries is safe (``state``: its worst)."""
    a, b = names
    if encoder == "candidate":
        return (
            f"rolling re-index is safe: serve {b}'s query encoder from the start and re-embed "
            f"the catalog with {b} in place (worst state {state}: {_fmt(delta)})"
        )
    return (
        f"rolling re-index is safe: keep serving {a}'s query encoder while the catalog is "
        f"re-embedded with {b}, switch queries to {b} when the backfill is complete "
        f"(worst state {state}: {_fmt(delta)})"
    )
