"""Graded judgments derived from a click log, usable wherever human judgments are.

Each (query, item) pair is scored by ``coec``, ``ctr`` or ``click_share`` and cut into integer
grades by ascending thresholds (grade = thresholds <= value).  Methods and defaults:
docs/how-to/click-logs.md.

>>> import numpy as np
>>> from evalkit.data.click_log import ClickLog, PositionCounts
>>> pos = PositionCounts(pair=np.array([0, 0, 1, 1, 2]), position=np.array([1, 2, 1, 2, 1]),
...                      impressions=np.array([3., 1., 1., 3., 4.]),
...                      clicks=np.array([2., 0., 1., 1., 1.]))
>>> log = ClickLog(["q1", "q1", "q2"], ["d1", "d2", "d1"], clicks=np.array([2., 2., 1.]),
...                impressions=np.array([4., 4., 4.]), positions=pos)
>>> j = judgments_from_clicks(log, method="coec", thresholds=[0.5, 1.0, 1.5])
>>> j.qrels, j.grade_counts, j.thresholds_from
({'q1': {'d1': 2, 'd2': 3}, 'q2': {'d1': 1}}, (0, 1, 1, 1), 'config')
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.data.click_log import ClickLog
from evalkit.data.schema import Judgments
from evalkit.errors import ConfigError

log_ = logging.getLogger(__name__)

METHODS = ("coec", "ctr", "click_share")

#: Default grade cut-offs (grades 0-3); ``click_share``'s only when the log has no clicked pair.
DEFAULT_THRESHOLDS: dict[str, tuple[float, ...]] = {
    "coec": (0.5, 1.0, 2.0),
    "ctr": (0.05, 0.15, 0.3),
    "click_share": (0.05, 0.2, 0.4),
}

#: Methods whose default cut-offs come from the log itself (:func:`derived_thresholds`).
DERIVED_DEFAULTS = ("click_share",)

#: Warn when the cut-offs grade more than this share of the judged clicked pairs 0.
CLICKED_GRADE_0_WARN = 0.5


@dataclass(frozen=True)
class ClickJudgments(Judgments):
    """Click-derived :class:`Judgments` plus how the grades were cut (``thresholds_from``:
    ``config``, ``derived`` or ``default``; ``clicked``: judged pairs with a click,
    ``clicked_grade_0`` of them graded 0; ``unjudged``: pairs below the minimum filters)."""

    thresholds: tuple[float, ...] = ()
    thresholds_from: str = "config"
    grade_counts: tuple[int, ...] = ()
    clicked: int = 0
    clicked_grade_0: int = 0
    unjudged: int = 0

    def histogram(self) -> str:
        """``grade 0: 663, 1: 2,065, 2: 2,064, 3: 2,064``."""
        return "grade " + ", ".join(f"{g}: {n:,}" for g, n in enumerate(self.grade_counts))

    def cutoffs(self) -> str:
        """The cut-offs as text, ``0.0042, 0.031, 0.2`` (6 significant digits)."""
        return ", ".join(f"{t:.6g}" for t in self.thresholds)

    def params(self) -> dict[str, Any]:
        """MLflow params ``clicks_judgment_*`` (docs/reference/mlflow.md)."""
        out: dict[str, Any] = {
            "clicks_judgment_thresholds": self.cutoffs(),
            "clicks_judgment_thresholds_from": self.thresholds_from,
            "clicks_judgment_clicked": self.clicked,
            "clicks_judgment_clicked_grade_0": self.clicked_grade_0,
            "clicks_judgment_unjudged": self.unjudged,
        }
        out.update({f"clicks_judgment_grade_{g}": n for g, n in enumerate(self.grade_counts)})
        return out


@dataclass(frozen=True)
class CoecScores:
    """Per-pair COEC values, expected clicks and the CTR per position (index 0 = position 1)."""

    values: np.ndarray
    expected: np.ndarray
    position_ctr: np.ndarray


def position_ctr(log: ClickLog, max_rank: int | None = None) -> np.ndarray:
    """Expected CTR per 1-based position over the whole log (index 0 = position 1; 0 where never
    shown).  Aggregated logs use ``round(mean position)``."""
    pos, imps, clicks, _ = _position_rows(log, max_rank)
    if len(pos) == 0:
        return np.zeros(0)
    size = int(pos.max())
    shown = np.bincount(pos - 1, weights=imps, minlength=size)
    clicked = np.bincount(pos - 1, weights=clicks, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(shown > 0, clicked / shown, 0.0)


def coec_scores(log: ClickLog, max_rank: int | None = None) -> CoecScores:
    """Clicks over expected clicks for every pair of ``log``::

        ctr[r]     = sum of clicks at r / sum of impressions at r        (all pairs, r <= max_rank)
        expected   = sum over r of impressions(q, d, r) * ctr[r]
        coec(q, d) = clicks(q, d) / expected                              (0 when expected == 0)

    (OpenSearch's, summed over every position the pair was shown at.)
    """
    pos, imps, clicks, pair = _position_rows(log, max_rank)
    ctr = position_ctr(log, max_rank)
    expected = np.bincount(pair, weights=imps * ctr[pos - 1], minlength=len(log))
    observed = np.bincount(pair, weights=clicks, minlength=len(log))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(expected > 0, observed / expected, 0.0)
    return CoecScores(values=values, expected=expected, position_ctr=ctr)


def grades_from_values(values: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Integer grades: how many of the ascending ``thresholds`` each value reaches."""
    t = np.asarray(list(thresholds), dtype=float)
    if t.ndim != 1 or len(t) == 0 or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
        raise ConfigError(
            f"clicks.judgments.thresholds={list(thresholds)} must be a non-empty list of finite "
            "numbers in strictly ascending order"
        )
    return np.searchsorted(t, values, side="right").astype(np.int64)


def derived_thresholds(values: np.ndarray, grades: int = 3) -> tuple[float, ...]:
    """Cut-offs spreading the clicked pairs (``values > 0``) over grades ``1..grades``: the
    smallest positive value, then the clicked values' ``(g - 1) / grades`` order statistics,
    moved up past ties (fewer grades when too few distinct values); ``()`` when nothing was clicked.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) == 0:
        return ()
    n = len(v)
    kth = [min(int(np.ceil(n * (g - 1) / grades)), n - 1) for g in range(2, grades + 1)]
    part = np.partition(v, kth) if kth else v
    cuts = [float(v.min())]
    for k in kth:
        at = float(part[k])
        if at <= cuts[-1]:
            above = v[v > cuts[-1]]
            if len(above) == 0:
                break
            at = float(above.min())
        cuts.append(at)
    return tuple(cuts)


def judgment_values(
    log: ClickLog,
    method: str = "coec",
    *,
    min_impressions: float = 1,
    min_query_clicks: float = 1,
    max_rank: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair value of ``method`` and the mask of pairs that pass the minimum filters."""
    if method not in METHODS:
        raise ConfigError(
            f"clicks.judgments.method={method!r} is unknown (expected one of {METHODS})"
        )
    if method in ("coec", "ctr") and log.impressions is None:
        raise ConfigError(
            f"clicks.judgments.method={method!r} needs impressions, but click log "
            f"{log.source or '(in memory)'} has none (its measure is click share); "
            "use method=click_share"
        )
    if method == "coec" and log.positions is None and log.mean_position is None:
        raise ConfigError(
            f"clicks.judgments.method=coec needs positions, but click log {log.source or '(in memory)'}"
            " has neither event positions nor an average-position column; use method=ctr"
        )
    if method == "click_share":
        _, qidx = log.query_index()
        totals = np.bincount(qidx, weights=log.clicks)[qidx] if len(qidx) else np.zeros(0)
        keep = totals >= max(min_query_clicks, np.finfo(float).tiny)
        return np.nan_to_num(log.rate(), nan=0.0), keep
    keep = (log.impressions >= min_impressions) & (log.impressions > 0)
    if method == "ctr":
        return np.nan_to_num(log.rate(), nan=0.0), keep
    return coec_scores(log, max_rank).values, keep


def judgments_from_clicks(
    log: ClickLog,
    method: str = "coec",
    *,
    thresholds: Sequence[float] | None = None,
    min_impressions: float = 1,
    min_query_clicks: float = 1,
    max_rank: int | None = None,
) -> ClickJudgments:
    """Graded :class:`ClickJudgments` from ``log`` by ``method``; ``thresholds`` unset:
    ``click_share`` derives them from the judged pairs, ``coec`` / ``ctr`` use the defaults.
    """
    values, keep = judgment_values(
        log,
        method,
        min_impressions=min_impressions,
        min_query_clicks=min_query_clicks,
        max_rank=max_rank,
    )
    if thresholds:
        cuts, source = tuple(float(t) for t in thresholds), "config"
    elif method in DERIVED_DEFAULTS and (derived := derived_thresholds(values[keep])):
        cuts, source = derived, "derived"
    else:
        cuts, source = DEFAULT_THRESHOLDS[method], "default"
    grades = grades_from_values(values, cuts)
    dropped = int((~keep).sum())
    if dropped:
        log_.info(
            "click judgments (%s): %d pairs below the minimum filters left unjudged",
            method,
            dropped,
        )
    judged = grades[keep]
    clicked = np.asarray(log.clicks, dtype=float)[keep] > 0
    counts = np.bincount(judged, minlength=len(cuts) + 1)
    stats = {
        "thresholds": tuple(float(t) for t in cuts),
        "thresholds_from": source,
        "grade_counts": tuple(int(c) for c in counts),
        "clicked": int(clicked.sum()),
        "clicked_grade_0": int((clicked & (judged == 0)).sum()),
        "unjudged": dropped,
    }
    rows = np.flatnonzero(keep)
    qrels: dict[str, dict[str, int]] = {}
    if len(rows):
        q = np.asarray(log.query_ids, dtype=object)[rows]
        rows = rows[np.argsort(q, kind="stable")]  # group each query's pairs together
        q = np.asarray(log.query_ids, dtype=object)[rows]
        items = np.asarray(log.item_ids, dtype=object)[rows]
        g = grades[rows].tolist()
        bounds = np.flatnonzero(np.r_[True, q[1:] != q[:-1], True])
        for s, e in zip(bounds[:-1], bounds[1:]):
            qrels[str(q[s])] = dict(zip(items[s:e].tolist(), g[s:e]))
    out = ClickJudgments(qrels=qrels, method=method, source=log.source, **stats)
    _log_grades(out, log)
    return out


_FROM = {
    "config": "set by clicks.judgments.thresholds",
    "derived": "derived from the log: the smallest clicked pair's value, then the clicked "
    "pairs' tertiles",
    "default": "the method's defaults",
}


def _log_grades(j: ClickJudgments, log: ClickLog) -> None:
    """The cut-offs and grade histogram at INFO; a WARNING when most clicked pairs got grade 0."""
    where = log.source or "(in memory)"
    log_.info(
        "click judgments (%s) from %s: %s pairs judged with cut-offs %s (%s): %s",
        j.method,
        where,
        f"{sum(j.grade_counts):,}",
        j.cutoffs(),
        _FROM[j.thresholds_from],
        j.histogram(),
    )
    if j.clicked and j.clicked_grade_0 > CLICKED_GRADE_0_WARN * j.clicked:
        if j.method in DERIVED_DEFAULTS:
            hint = "unset clicks.judgments.thresholds to derive them from the log"
        elif j.method == "ctr":
            hint = (
                "a click is evidence of relevance: set clicks.judgments.thresholds to the log's "
                "click rates, or use method=coec (relative to the log's own position CTR)"
            )
        else:
            hint = "a click is evidence of relevance: check clicks.judgments.thresholds"
        log_.warning(
            "click judgments (%s) from %s: cut-offs %s (%s) grade %s of %s clicked pairs 0 "
            "(not relevant); %s",
            j.method,
            where,
            j.cutoffs(),
            _FROM[j.thresholds_from],
            f"{j.clicked_grade_0:,}",
            f"{j.clicked:,}",
            hint,
        )


def _position_rows(
    log: ClickLog, max_rank: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if log.positions is not None:
        p = log.positions
        pos, imps, clicks, pair = p.position, p.impressions, p.clicks, p.pair
    elif log.mean_position is not None and log.impressions is not None:
        pos = np.maximum(np.rint(log.mean_position), 1).astype(np.int64)
        imps, clicks, pair = log.impressions, log.clicks, np.arange(len(log))
    else:
        raise ConfigError("COEC needs a click log with impressions and positions")
    pos = np.asarray(pos, dtype=np.int64)
    if max_rank is not None:
        sel = pos <= max_rank
        pos, imps, clicks, pair = pos[sel], imps[sel], clicks[sel], pair[sel]
    return pos, np.asarray(imps, float), np.asarray(clicks, float), np.asarray(pair, np.int64)
