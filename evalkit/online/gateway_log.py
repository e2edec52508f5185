"""The online A/B's contracts: the gateway log's columns (docs/how-to/online-ab.md, "The gateway
log"), and what one streamed pass over it keeps (:func:`evalkit.online.read.aggregate_log`): per
arm, per-unit sums, per-request latencies, per-(day, unit) sums, position counts and score bins.
Every online statistic is a ratio of per-unit sums, clustered by the unit.

>>> s = RequestSums(np.ones(2), np.array([1.0, 0.0]))
>>> len(s), s.total("clicked_requests"), UnitSums.FIELDS[:2]
(2, 1.0, ('requests', 'clicked_requests'))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The gateway's own column names (``online.columns.<key>`` maps each to the log's name).
DEFAULT_COLUMNS: dict[str, str] = {
    "request": "request_id",
    "arm": "ab_group",
    "version": "model_version",
    "query": "query",
    "item": "item_id",
    "position": "position",
    "score": "similarity_score",
    "clicked": "clicked",
    "latency": "latency_ms",
    "user": "user_id",
    "timestamp": "timestamp",
}
#: Columns without which nothing can be analysed.
REQUIRED = ("request", "arm", "clicked")
#: Query frequency bands (as offline, :mod:`evalkit.compare.slices`): a query is ``head`` when the
#: strictly more frequent queries carry < HEAD_SHARE of the requests, ``torso`` when < TORSO_SHARE.
HEAD_SHARE, TORSO_SHARE = 0.5, 0.8
#: The slice level of a null value.
MISSING_LEVEL = "(missing)"
#: Cells of the score grid (smallest to largest score) the score bins are cut on.
GRID_CELLS = 1 << 16


def frequency_band(n: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The band of the queries with ``n`` requests each (``n`` descending; ``queries[i]`` of
    them have ``n[i]`` requests)."""
    traffic = np.asarray(n, dtype=np.float64) * np.asarray(queries, dtype=np.float64)
    total = traffic.sum()
    greater = np.cumsum(traffic) - traffic  # traffic of strictly more frequent queries
    share = greater / total if total > 0 else np.ones_like(greater)
    return np.where(share < HEAD_SHARE, "head", np.where(share < TORSO_SHARE, "torso", "tail"))


class _Sums:
    FIELDS: tuple[str, ...] = ()  # the array fields, in order

    def __init_subclass__(cls) -> None:
        cls.FIELDS = tuple(cls.__annotations__)

    def __len__(self) -> int:
        return int(self.requests.shape[0])

    def total(self, name: str) -> float:
        return float(np.sum(getattr(self, name)))


@dataclass(frozen=True)
class UnitSums(_Sums):
    """Per-unit sums of one arm: one row per randomization unit, float64 arrays of equal length.

    - ``requests``: requests (distinct ``request_id``) of the unit;
    - ``clicked_requests``: requests with at least one click (request CTR's numerator);
    - ``impressions`` / ``clicks``: shown results and clicked ones (impression CTR);
    - ``first_click_rr``: sum over requests of 1 / position of the first click (0 without one):
      mean reciprocal rank of the first click = ``first_click_rr / requests``;
    - ``auc_u`` / ``auc_pairs``: sum over requests of the Mann-Whitney U of similarity score vs
      click within the request (ties count 1/2) and of clicked x not-clicked impressions: the
      within-request AUC = ``auc_u / auc_pairs`` (requests with no click or only clicks add 0 / 0).
    """

    requests: np.ndarray
    clicked_requests: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    first_click_rr: np.ndarray
    auc_u: np.ndarray
    auc_pairs: np.ndarray


@dataclass(frozen=True)
class RequestSums(_Sums):
    """Per-unit request counts of one arm in one day or slice: the two :class:`UnitSums` fields
    request CTR reads (the daily and slice analyses read only it)."""

    requests: np.ndarray
    clicked_requests: np.ndarray


def by_level(
    dim: str, levels: list, level: np.ndarray, sums: RequestSums
) -> dict[tuple[str, str], RequestSums]:
    """``{(dim, level): its rows}`` of ``sums`` (rows sorted by ``level``, codes in ``levels``)."""
    bounds = np.searchsorted(level, np.arange(len(levels) + 1), side="left")
    return {
        (dim, str(v)): RequestSums(sums.requests[lo:hi], sums.clicked_requests[lo:hi])
        for v, lo, hi in zip(levels, bounds[:-1], bounds[1:], strict=True)
        if hi > lo
    }


@dataclass(frozen=True)
class DailySums:
    """Per-(day, unit) request counts of one arm: ``day`` (int days since 1970-01-01 UTC, one per
    row) beside :class:`RequestSums` columns; a unit active on three days has three rows."""

    day: np.ndarray
    sums: RequestSums


@dataclass(frozen=True)
class PositionCounts:
    """Impressions and clicks per 1-based position (``position[i]``)."""

    position: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray


@dataclass(frozen=True)
class ScoreBins:
    """The click rate against the similarity score in equal-count bins of the arm's OWN scores
    (``edges``: ``n + 1`` quantiles; bin ``i`` holds ``edges[i] <= s < edges[i + 1]``, the last
    bin closed): impressions and clicks per bin, and the within-bin mean score."""

    edges: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    mean_score: np.ndarray


@dataclass(frozen=True)
class ArmAggregate:
    """Everything one arm of the log reduces to (what the analyses read)."""

    arm: str  # the arm column's value (online.control / online.treatment)
    versions: dict[str, int]  # model_version values seen in this arm -> rows
    units: UnitSums
    unit_ids: np.ndarray | None = None  # the units' ids (same order as ``units``), when kept
    latency_ms: np.ndarray | None = None  # one value per request (None: no latency column)
    daily: DailySums | None = None  # None: no timestamp column
    positions: PositionCounts | None = None  # None: no position column (read as position 1)
    score_bins: ScoreBins | None = None  # None: no score column
    #: clicked impressions at or above each given score cut-off: {cut-off: clicks above}
    clicks_above: dict[float, float] = field(default_factory=dict)
    #: slices: {(dimension, value): per-unit request counts of the requests in that slice}
    slices: dict[tuple[str, str], RequestSums] = field(default_factory=dict)

    @property
    def version(self) -> str | None:
        """The arm's most frequent ``model_version`` value (None without the column)."""
        return max(self.versions, key=self.versions.get) if self.versions else None


@dataclass(frozen=True)
class OnlineAggregate:
    """The log, reduced: both arms, and what was found while reading it."""

    control: ArmAggregate
    treatment: ArmAggregate
    unit: str  # the randomization unit column (its log name)
    rows: int  # impressions read
    files: list[str]
    columns: dict[str, str]  # contract key -> log column, for the columns present
    missing: dict[str, str] = field(default_factory=dict)  # contract key -> why its analysis is off
    units_in_both: int = 0  # units seen in both arms (refused: SRM block)
    units_in_both_examples: list[str] = field(default_factory=list)
    #: rows of the arm values neither control nor treatment
    other_arms: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the pass

    def arms(self) -> tuple[ArmAggregate, ArmAggregate]:
        return self.control, self.treatment
