"""The judging worklist: which unjudged (query, item) pairs to judge first.

:func:`rank_unjudged` lists the unjudged items of either version's top k with ``priority =
P(relevant) * |change of the mean delta if judged grade 1|``; :func:`order_unjudged` orders them
by :data:`ORDERS`.  The method, columns and orders: docs/how-to/judgments.md.

>>> top_a = {"q1": ["d1", "d2", "d3"], "q2": ["d4", "d5"]}
>>> top_b = {"q1": ["d3", "d2", "d1"], "q2": ["d4", "d6"]}
>>> qrels = {"q1": {"d2": 1}, "q2": {"d4": 2}}
>>> for e in rank_unjudged(top_a, top_b, qrels, "ndcg@3"):
...     print(e.query_id, e.item_id, e.rank_a, e.rank_b, f"{e.p_relevant:.2f} {e.priority:.4f}")
q1 d1 1 3 0.33 0.0511
q1 d3 3 1 0.33 0.0511
q2 d5 2 None 0.33 0.0400
q2 d6 None 2 0.33 0.0400
"""

from __future__ import annotations

import csv
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.data.schema import EvalData
    from evalkit.results import VersionResult
    from evalkit.retrieve.ranking import Ranking

#: The file name is a contract (run folder and parent-run artifact).
WORKLIST_FILE = "judging_worklist.csv"
#: Header of the worklist CSV, in order (a contract: ``dataset.extra_judgments`` reads it back).
COLUMNS = (
    "query_id",
    "query",
    "item_id",
    "item",
    "rank_a",
    "rank_b",
    "priority",
    "grade",
    "candidate",
)
DEFAULT_SIZE = 200
#: Judging orders (``compare.worklist_order``); the first is the default.
ORDERS = ("worklist", "rank_pooling", "query_pooling")
DEFAULT_ORDER = ORDERS[0]
_METRIC = re.compile(r"^([a-z_-]+)(?:@(\d+))?$")
_LOG_DISC = ("ndcg", "ndcg_burges")
_RECIPROCAL = ("mrr", "map")


@dataclass(frozen=True)
class Unjudged:
    """One unjudged item in either version's top k, with its weight for the delta."""

    query_id: str
    item_id: str
    rank_a: int | None  # 1-based rank in A's top k, None when absent
    rank_b: int | None
    priority: float  # P(relevant) x change of the mean delta if relevant (module docstring)
    reach: float = 0.0  # max single-version weight: the tie-break
    p_relevant: float = 1.0  # the estimate of P(relevant) in ``priority``

    def sort_key(self) -> tuple[float, float, str, str]:
        return (-round(self.priority, 12), -round(self.reach, 12), self.query_id, self.item_id)


def metric_cutoff(metric: str, depth: int) -> tuple[str, int]:
    """``(family, k)`` of a ranx metric string; no cut-off means the ranking ``depth``."""
    m = _METRIC.match(str(metric).strip())
    if m is None:
        raise ValueError(f"not a metric string: {metric!r} (expected e.g. ndcg@10)")
    return m.group(1), int(m.group(2)) if m.group(2) else int(depth)


def check_order(order: str) -> str:
    if order not in ORDERS:
        raise ValueError(f"unknown worklist order {order!r} (expected one of {', '.join(ORDERS)})")
    return order


def _disc(family: str, rank: int | None) -> float:
    if rank is None:
        return 0.0
    if family in _LOG_DISC:
        return 1.0 / math.log2(rank + 1)
    if family in _RECIPROCAL:
        return 1.0 / rank
    return 1.0


def _gain(family: str, grade: float) -> float:
    return (2.0**grade - 1.0) if family == "ndcg_burges" else float(grade)


def _normaliser(family: str, grades: Sequence[int], k: int) -> float:
    relevant = sorted((g for g in grades if g > 0), reverse=True)
    if family in _LOG_DISC:
        gains = [_gain(family, g) for g in relevant[:k]]
        idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(gains))
        return 1.0 / idcg if idcg > 0 else 1.0
    if family in ("recall", "r-precision", "map"):
        return 1.0 / (len(relevant) + 1)
    if family == "precision":
        return 1.0 / k
    return 1.0


def _ndcg_delta(family: str, ra: Mapping[str, int], rb: Mapping[str, int], known, k) -> float:
    """nDCG@k of B minus A for one query under the grades ``known`` (0 without a relevant one)."""
    ideal = sorted((g for g in known.values() if g > 0), reverse=True)[:k]
    idcg = sum(_gain(family, g) / math.log2(i + 2) for i, g in enumerate(ideal))
    if idcg <= 0:
        return 0.0
    dcg = [
        sum(_gain(family, known.get(d, 0)) * _disc(family, r) for d, r in ranks.items())
        for ranks in (ra, rb)
    ]
    return (dcg[1] - dcg[0]) / idcg


def relevance_curve(
    ranked: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> np.ndarray:
    """P(relevant) at ranks 1..depth (index ``r - 1``): isotonic regression of "judged relevant"
    on the rank over judged queries (unjudged counts as not relevant)."""
    from scipy.optimize import isotonic_regression

    depth = max((len(v) for v in ranked.values()), default=0)
    hits, seen = np.zeros(max(depth, 1)), np.zeros(max(depth, 1))
    for q, items in ranked.items():
        known = qrels.get(q)
        if not known:
            continue
        seen[: len(items)] += 1
        for d, g in known.items():
            i = _position(items, d) if g > 0 else None
            if i is not None:
                hits[i] += 1
    if not seen.any():
        return np.ones(max(depth, 1))
    keep = seen > 0
    fit = isotonic_regression(hits[keep] / seen[keep], weights=seen[keep], increasing=False).x
    out = np.full(max(depth, 1), fit[-1])
    out[: fit.size] = fit
    return out


def _position(items: Sequence[str], item: str) -> int | None:
    try:
        return items.index(item)
    except ValueError:
        return None


def _at(curve: np.ndarray, position: int | None) -> float:
    """The curve at a 0-based rank; past its end or not retrieved: its last value."""
    last = len(curve) - 1
    return float(curve[last if position is None else min(position, last)])


def rank_unjudged(
    top_a: Mapping[str, Sequence[str]],
    top_b: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    metric: str = "ndcg@10",
    depth: int | None = None,
    *,
    prior: bool = True,
) -> list[Unjudged]:
    """Every unjudged item of either version's top k, highest priority first; ``top_a`` /
    ``top_b``: ``{query_id: [item ids]}``, whole rankings (items past k feed P(relevant))."""
    if depth is None:
        depth = max((len(v) for v in (*top_a.values(), *top_b.values())), default=0)
    family, k = metric_cutoff(metric, depth)
    curve_a, curve_b = relevance_curve(top_a, qrels), relevance_curve(top_b, qrels)
    scored_q = [q for q in top_a if any(g > 0 for g in qrels.get(q, {}).values())]
    scored = len(scored_q)
    exact = family in _LOG_DISC
    q_delta: dict[str, float] = {}
    if exact:
        for q in scored_q:
            ra = {d: i + 1 for i, d in enumerate(top_a[q][:k])}
            rb = {d: i + 1 for i, d in enumerate(top_b.get(q, ())[:k])}
            q_delta[q] = _ndcg_delta(family, ra, rb, qrels[q], k)
    mean = sum(q_delta.values()) / len(q_delta) if q_delta else 0.0
    out: list[Unjudged] = []
    for q, items_a in top_a.items():
        known = qrels.get(q, {})
        items_b = top_b.get(q, ())
        ra = {d: i + 1 for i, d in enumerate(items_a[:k])}
        rb = {d: i + 1 for i, d in enumerate(items_b[:k])}
        fresh = [d for d in dict.fromkeys([*ra, *rb]) if d not in known]
        if not fresh:
            continue
        p_rank = {
            d: (_at(curve_a, _position(items_a, d)) + _at(curve_b, _position(items_b, d))) / 2.0
            for d in (*fresh, *known)
        }
        found = sum(1 for g in known.values() if g > 0)
        factor = (found + 1.0) / (sum(p_rank[d] for d in known) + 1.0)
        is_scored = found > 0
        scale = _normaliser(family, list(known.values()), k) / (scored if is_scored else scored + 1)
        for d in fresh:
            a, b = ra.get(d), rb.get(d)
            da, db = _disc(family, a), _disc(family, b)
            if exact and is_scored:
                moved = _ndcg_delta(family, ra, rb, {**known, d: 1}, k) - q_delta[q]
                weight = abs(moved) / scored
            elif exact:  # d alone relevant: q joins the mean with delta (db - da) / disc(1)
                weight = abs((db - da) - mean) / (scored + 1)
            else:
                weight = abs(db - da) * scale
            p = min(1.0, p_rank[d] * factor) if prior else 1.0
            out.append(Unjudged(q, d, a, b, p * weight, max(da, db) * scale, p))
    out.sort(key=Unjudged.sort_key)
    return out


def order_unjudged(
    top_a: Mapping[str, Sequence[str]],
    top_b: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    metric: str = "ndcg@10",
    depth: int | None = None,
    order: str = DEFAULT_ORDER,
    seed: int = 0,
) -> list[Unjudged]:
    """The unjudged items of either version's top k in the judging ``order`` (:data:`ORDERS`)."""
    check_order(order)
    if depth is None:
        depth = max((len(v) for v in (*top_a.values(), *top_b.values())), default=0)
    ranked = rank_unjudged(top_a, top_b, qrels, metric, depth)
    if order == "worklist":
        return ranked
    by_pair = {(u.query_id, u.item_id): u for u in ranked}
    k = metric_cutoff(metric, depth)[1]
    queries = list(top_a)
    if order == "query_pooling":
        random.Random(seed).shuffle(queries)
    slots = {
        q: [
            (r, v, d)
            for v, top in enumerate((top_a[q], top_b.get(q, ())))
            for r, d in enumerate(top[:k])
        ]
        for q in queries
    }
    if order == "rank_pooling":
        key = {q: i for i, q in enumerate(queries)}
        flat = sorted(((r, key[q], v, q, d) for q in queries for r, v, d in slots[q]))
        pairs = [(q, d) for *_, q, d in flat]
    else:
        pairs = [(q, d) for q in queries for _, _, d in sorted(slots[q])]
    return [by_pair.pop(p) for p in pairs if p in by_pair]


@dataclass(frozen=True)
class WorklistRow:
    """One line of ``judging_worklist.csv``."""

    candidate: str
    query_id: str
    query: str
    item_id: str
    item: str
    rank_a: int | None
    rank_b: int | None
    priority: float

    def cells(self) -> list[str]:
        return [
            self.query_id,
            self.query,
            self.item_id,
            self.item,
            "" if self.rank_a is None else str(self.rank_a),
            "" if self.rank_b is None else str(self.rank_b),
            f"{self.priority:.6g}",
            "",
            self.candidate,
        ]


@dataclass(frozen=True)
class Worklist:
    """The rows to judge; ``unjudged``: per candidate, every unjudged item of either top k."""

    metric: str
    k: int
    baseline: str
    rows: list[WorklistRow]
    unjudged: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def write_csv(self, path: str | Path) -> Path:
        """Write the worklist as CSV (UTF-8, header :data:`COLUMNS`, empty ``grade``)."""
        path = Path(path)
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            w.writerows(r.cells() for r in self.rows)
        return path


def build_worklist(
    baseline: str,
    tops: Mapping[str, tuple[Mapping[str, Sequence[str]], Mapping[str, Sequence[str]]]],
    qrels: Mapping[str, Mapping[str, int]],
    query_text: Mapping[str, str],
    item_text: Mapping[str, str],
    metric: str = "ndcg@10",
    size: int = DEFAULT_SIZE,
    depth: int | None = None,
    order: str = DEFAULT_ORDER,
    seed: int = 0,
) -> Worklist:
    """The first ``size`` unjudged items of every comparison (``{candidate: (top_a, top_b)}``)
    in the judging ``order``, merged by priority or interleaved by position."""
    check_order(order)
    picked: list[tuple[tuple, Unjudged, str]] = []
    counts: dict[str, int] = {}
    for c, (cand, (top_a, top_b)) in enumerate(tops.items()):
        ranked = order_unjudged(top_a, top_b, qrels, metric, depth, order, seed)
        counts[cand] = len(ranked)
        for i, u in enumerate(ranked[: max(0, int(size))]):
            key = (*u.sort_key(), cand) if order == "worklist" else (i, c)
            picked.append((key, u, cand))
    picked.sort(key=lambda kuc: kuc[0])
    rows = [
        WorklistRow(
            cand,
            u.query_id,
            query_text.get(u.query_id, ""),
            u.item_id,
            item_text.get(u.item_id, ""),
            u.rank_a,
            u.rank_b,
            u.priority,
        )
        for _, u, cand in picked
    ]
    k = metric_cutoff(metric, depth or 0)[1]
    return Worklist(str(metric), k, baseline, rows, counts)


def top_ids(ranking: Ranking, k: int) -> dict[str, list[str]]:
    """``{query_id: top-k item ids}`` of a :class:`~evalkit.retrieve.ranking.Ranking`."""
    idx = ranking.indices[:, :k]
    ids = ranking.item_ids
    return {q: [ids[i] for i in row if i >= 0] for q, row in zip(ranking.query_ids, idx.tolist())}


def evaluation_worklist(
    baseline: VersionResult,
    candidates: Sequence[VersionResult],
    data: EvalData,
    metric: str,
    size: int = DEFAULT_SIZE,
    order: str = DEFAULT_ORDER,
    seed: int = 0,
) -> Worklist | None:
    """The worklist of an evaluation, or None when the baseline has no ranking."""
    if baseline.ranking is None:
        return None
    depth = baseline.ranking.k
    top_a = top_ids(baseline.ranking, depth)
    tops = {
        c.name: (top_a, top_ids(c.ranking, c.ranking.k))
        for c in candidates
        if c.ranking is not None
    }
    qrels = data.judgments.qrels if data.judgments is not None else {}
    probe = build_worklist(baseline.name, tops, qrels, {}, {}, metric, size, depth, order, seed)
    wanted_q = {r.query_id for r in probe.rows}
    wanted_d = {r.item_id for r in probe.rows}
    query_text = {q: t for q, t in zip(data.queries.ids, data.queries.texts) if q in wanted_q}
    cat, sep = data.catalog, data.title_separator
    bodies = cat.texts if cat.texts is not None else [""] * len(cat)
    item_text = {
        d: f"{t}{sep}{b}" if t and b else (t or b)
        for d, t, b in zip(cat.ids, cat.titles, bodies)
        if d in wanted_d
    }
    rows = [
        replace(r, query=query_text.get(r.query_id, ""), item=item_text.get(r.item_id, ""))
        for r in probe.rows
    ]
    return replace(probe, rows=rows)
