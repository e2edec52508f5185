"""The judging worklist: which unjudged (query, item) pairs would decide the comparison.

An item in either version's top k (k = the primary metric's cut-off: ``ndcg@10`` -> 10) that no
judgment covers counts as non-relevant.  Whether that matters for the *difference* B - A depends
on where the two versions rank it: an item both rank 3rd moves both versions' nDCG alike and
cannot change the delta; an item B ranks 1st and A does not retrieve at all moves it most.
Minimal test collections (Carterette, Allan & Sitaraman, "Minimal test collections for
retrieval evaluation", SIGIR 2006) judge the documents in the order of that weight.

For the mean nDCG@k delta, the weight (``priority``) of unjudged item ``d`` of query ``q`` is ::

    priority(q, d) = | disc(rank_B(d)) - disc(rank_A(d)) | / (IDCG_q * n)

    disc(r) = 1 / log2(r + 1) for r <= k,   0 when d is not in that version's top k
    IDCG_q  = ideal DCG@k of q's known judgments (linear gains, as evalkit's nDCG);
              1 when q has no relevant judgment yet: judged grade 1, d would be q's only
              relevant item and IDCG_q would become 1 * disc(1) = 1
    n       = queries scored (with a judgment of grade >= 1); n + 1 for a query not yet
              scored, which would join the mean

i.e. how far the mean delta moves if ``d`` is judged grade 1 (grade g moves it g times as far,
up to the change of IDCG_q itself).  The other metric families use the same form with their own
discount and normaliser: ``ndcg_burges`` gains 2^g - 1; ``recall`` / ``r-precision``
disc = 1 in the top k, normaliser 1 / (R_q + 1) (R_q = known relevant items, the + 1 being d);
``precision`` disc = 1, 1 / k; ``hit_rate`` disc = 1, 1; ``mrr`` disc = 1 / r, 1; ``map``
disc = 1 / r, 1 / (R_q + 1).

Order: priority descending; ties (equal to 12 decimals) by the item's larger single-version
weight ``max(disc_A, disc_B) / (IDCG_q * n)`` descending (it moves each version's own metric
more), then query id, then item id.  Zero-priority items (ranked alike by both versions) come
last: they move both versions' metrics, not the delta.

>>> top_a = {"q1": ["d1", "d2", "d3"], "q2": ["d4", "d5"]}
>>> top_b = {"q1": ["d3", "d2", "d1"], "q2": ["d4", "d6"]}
>>> qrels = {"q1": {"d2": 1}, "q2": {"d4": 2}}
>>> for e in rank_unjudged(top_a, top_b, qrels, "ndcg@3"):
...     print(e.query_id, e.item_id, e.rank_a, e.rank_b, round(e.priority, 4))
q1 d1 1 3 0.25
q1 d3 3 1 0.25
q2 d5 2 None 0.1577
q2 d6 None 2 0.1577
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

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
    priority: float  # change of the mean delta if judged grade 1 (module docstring)
    reach: float = 0.0  # max single-version weight: the tie-break

    def sort_key(self) -> tuple[float, float, str, str]:
        return (-round(self.priority, 12), -round(self.reach, 12), self.query_id, self.item_id)


def metric_cutoff(metric: str, depth: int) -> tuple[str, int]:
    """``(family, k)`` of a ranx metric string; no cut-off means the ranking ``depth``.

    >>> metric_cutoff("ndcg@10", 100), metric_cutoff("mrr", 100)
    (('ndcg', 10), ('mrr', 100))
    """
    m = _METRIC.match(str(metric).strip())
    if m is None:
        raise ValueError(f"not a metric string: {metric!r} (expected e.g. ndcg@10)")
    return m.group(1), int(m.group(2)) if m.group(2) else int(depth)


def _disc(family: str, rank: int | None) -> float:
    if rank is None:
        return 0.0
    if family in _LOG_DISC:
        return 1.0 / math.log2(rank + 1)
    if family in _RECIPROCAL:
        return 1.0 / rank
    return 1.0


def _normaliser(family: str, grades: Sequence[int], k: int) -> float:
    """The per-query scale of a grade-1 judgment (``1 / IDCG_q`` for nDCG, ...)."""
    relevant = sorted((g for g in grades if g > 0), reverse=True)
    if family in _LOG_DISC:
        gains = [(2.0**g - 1.0) if family == "ndcg_burges" else float(g) for g in relevant[:k]]
        idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(gains))
        return 1.0 / idcg if idcg > 0 else 1.0
    if family in ("recall", "r-precision", "map"):
        return 1.0 / (len(relevant) + 1)
    if family == "precision":
        return 1.0 / k
    return 1.0


def rank_unjudged(
    top_a: Mapping[str, Sequence[str]],
    top_b: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    metric: str = "ndcg@10",
    depth: int | None = None,
) -> list[Unjudged]:
    """Every unjudged item of either version's top k, highest priority first.

    ``top_a`` / ``top_b``: ``{query_id: [item ids best first]}`` (longer lists are cut at k);
    ``qrels``: ``{query_id: {item_id: grade}}`` (grade 0 is a judgment too).  Queries are those
    of ``top_a`` (a query missing from ``top_b`` has an empty B ranking).  ``depth`` is the
    cut-off of a metric without one (default: the longest ranking).
    """
    if depth is None:
        depth = max((len(v) for v in (*top_a.values(), *top_b.values())), default=0)
    family, k = metric_cutoff(metric, depth)
    scored = sum(1 for q in top_a if any(g > 0 for g in qrels.get(q, {}).values()))
    out: list[Unjudged] = []
    for q, items_a in top_a.items():
        known = qrels.get(q, {})
        ra = {d: i + 1 for i, d in enumerate(items_a[:k])}
        rb = {d: i + 1 for i, d in enumerate(top_b.get(q, ())[:k])}
        fresh = [d for d in dict.fromkeys([*ra, *rb]) if d not in known]
        if not fresh:
            continue
        is_scored = any(g > 0 for g in known.values())
        scale = _normaliser(family, list(known.values()), k) / (scored if is_scored else scored + 1)
        for d in fresh:
            a, b = ra.get(d), rb.get(d)
            da, db = _disc(family, a), _disc(family, b)
            out.append(Unjudged(q, d, a, b, abs(db - da) * scale, max(da, db) * scale))
    out.sort(key=Unjudged.sort_key)
    return out


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
    """The rows to judge (every comparison's top ``size``), ordered by priority.

    ``unjudged`` counts, per candidate, every unjudged item of either version's top k (the rows
    are its ``size`` highest-priority ones).
    """

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
) -> Worklist:
    """Every comparison's ``size`` highest-priority unjudged items, in one list.

    ``tops``: ``{candidate: (top_a, top_b)}``.  Rows of all comparisons are merged and ordered
    by priority (the same tie-break), so judging from the top serves every comparison; a pair
    that matters in two comparisons appears once per comparison (its ``rank_b`` differs).

    >>> wl = build_worklist("A", {"B": ({"q": ["x", "y"]}, {"q": ["y", "x"]})}, {}, {"q": "hat"},
    ...                     {"x": "red hat", "y": "cap"}, "ndcg@2", size=1)
    >>> [(r.item_id, r.rank_a, r.rank_b) for r in wl.rows], wl.unjudged
    ([('x', 1, 2)], {'B': 2})
    """
    picked: list[tuple[Unjudged, str]] = []
    counts: dict[str, int] = {}
    for cand, (top_a, top_b) in tops.items():
        ranked = rank_unjudged(top_a, top_b, qrels, metric, depth)
        counts[cand] = len(ranked)
        picked.extend((u, cand) for u in ranked[: max(0, int(size))])
    picked.sort(key=lambda uc: (*uc[0].sort_key(), uc[1]))
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
        for u, cand in picked
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
) -> Worklist | None:
    """The worklist of an evaluation (baseline vs every candidate), or None when no version has
    a ranking.  Item text is the title and, when the catalog has one, the body (what a judge
    reads), whatever ``text_field`` embedded."""
    if baseline.ranking is None:
        return None
    depth = baseline.ranking.k
    k = metric_cutoff(metric, depth)[1]
    top_a = top_ids(baseline.ranking, k)
    tops = {c.name: (top_a, top_ids(c.ranking, k)) for c in candidates if c.ranking is not None}
    qrels = data.judgments.qrels if data.judgments is not None else {}
    probe = build_worklist(baseline.name, tops, qrels, {}, {}, metric, size, depth)
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
