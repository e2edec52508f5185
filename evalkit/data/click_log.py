"""A click log at (query, item) pair level: what users clicked, how often it was shown, and where.

One row per ``(query_id, item_id)`` pair, sorted by ids, counts as aligned float64 arrays.
``measure``: ``click_rate`` = clicks / impressions, or (a log without impressions)
``click_share`` = clicks / the query's clicks; every output showing a rate names it.
``positions`` keeps event-level logs' per-position counts (for COEC judgments).

>>> import numpy as np
>>> log = ClickLog(query_ids=["q1", "q1", "q2"], item_ids=["d1", "d2", "d1"],
...                clicks=np.array([3.0, 1.0, 0.0]), impressions=np.array([10.0, 10.0, 5.0]))
>>> log.rate().tolist(), log.measure_label
([0.3, 0.1, 0.0], 'click rate')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MEASURES = ("click_rate", "click_share")


@dataclass(frozen=True)
class PositionCounts:
    """Impressions and clicks of each pair at each 1-based position it was shown at (sparse)."""

    pair: np.ndarray  # int64 index into the ClickLog's pairs
    position: np.ndarray  # int64, >= 1
    impressions: np.ndarray  # float64
    clicks: np.ndarray  # float64


@dataclass(frozen=True)
class ClickLog:
    """Pair-level click log (module docstring); ``None`` for what the log does not carry;
    ``duplicate_pairs``: pairs an aggregated log gave on more than one row (summed)."""

    query_ids: list[str]
    item_ids: list[str]
    clicks: np.ndarray
    impressions: np.ndarray | None = None
    mean_position: np.ndarray | None = None
    positions: PositionCounts | None = None
    measure: str = ""
    simulated: bool = False
    source: str = ""
    skipped: dict[str, int] = field(default_factory=dict)
    duplicate_pairs: int = 0

    def __post_init__(self) -> None:
        if not self.measure:
            measure = "click_rate" if self.impressions is not None else "click_share"
            object.__setattr__(self, "measure", measure)
        if self.measure not in MEASURES:
            raise ValueError(f"measure must be one of {MEASURES}, got {self.measure!r}")
        if self.measure == "click_rate" and self.impressions is None:
            raise ValueError("measure 'click_rate' needs impressions")
        n = len(self.query_ids)
        for name in ("item_ids", "clicks", "impressions", "mean_position"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"ClickLog.{name} has {len(value)} rows, query_ids has {n}")

    def __len__(self) -> int:
        return len(self.query_ids)

    @property
    def measure_label(self) -> str:
        return self.measure.replace("_", " ")

    @property
    def n_clicks(self) -> float:
        return float(self.clicks.sum())

    def pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.query_ids, self.item_ids))

    def query_index(self) -> tuple[list[str], np.ndarray]:
        """Distinct query ids (sorted) and each pair's int64 index into them."""
        codes, uniques = pd.factorize(np.asarray(self.query_ids, dtype=object), sort=True)
        return [str(u) for u in uniques], codes.astype(np.int64)

    def rate(self) -> np.ndarray:
        """Per-pair click rate or click share (``measure``); NaN for a pair never shown or, for
        click share, of a query without clicks."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.measure == "click_rate":
                assert self.impressions is not None
                return np.where(self.impressions > 0, self.clicks / self.impressions, np.nan)
            _, qidx = self.query_index()
            totals = np.bincount(qidx, weights=self.clicks)[qidx]
            return np.where(totals > 0, self.clicks / totals, np.nan)

    def digest(self) -> str:
        """sha256 hex of the log's content (not ``source``), independent of row order."""
        q = pa.array(self.query_ids, pa.string())
        i = pa.array(self.item_ids, pa.string())
        order = pc.sort_indices(
            pa.table({"q": q, "i": i}), sort_keys=[("q", "ascending"), ("i", "ascending")]
        )
        order = np.asarray(order.to_numpy(), dtype=np.int64)
        h = hashlib.sha256(f"evalkit-clicks-1|{self.measure}|{int(self.simulated)}|".encode())
        for col in (q, i):
            col = col.take(pa.array(order))  # a fresh array: offsets start at 0
            offsets = np.frombuffer(col.buffers()[1], dtype=np.int32)[: len(col) + 1]
            h.update(np.diff(offsets).astype("<i8").tobytes())
            data = col.buffers()[2]
            h.update(b"" if data is None else data.to_pybytes()[: int(offsets[-1])])
        for name in ("clicks", "impressions", "mean_position"):
            values = getattr(self, name)
            h.update(
                name.encode()
                + (b"=none" if values is None else np.asarray(values, "<f8")[order].tobytes())
            )
        if self.positions is not None:
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            p = self.positions
            new_pair = rank[p.pair]
            o = np.lexsort((p.position, new_pair))
            for arr in (new_pair[o], p.position[o], p.impressions[o], p.clicks[o]):
                h.update(np.asarray(arr, "<f8").tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, float | str | bool]:
        """Summary for logs and MLflow params (``duplicate_pairs`` only when there are some)."""
        out: dict[str, float | str | bool] = {
            "pairs": len(self),
            "queries": len(set(self.query_ids)),
            "clicks": self.n_clicks,
            "measure": self.measure,
            "simulated": self.simulated,
            "source": self.source,
        }
        if self.impressions is not None:
            out["impressions"] = float(self.impressions.sum())
        if self.duplicate_pairs:
            out["duplicate_pairs"] = self.duplicate_pairs
        return out


def from_position_counts(
    query_ids: np.ndarray | list[str],
    item_ids: np.ndarray | list[str],
    position: np.ndarray,
    impressions: np.ndarray,
    clicks: np.ndarray,
    **kwargs,
) -> ClickLog:
    """A pair-level :class:`ClickLog` (``kwargs``: its other fields) from (query, item, position)
    count rows: a pair's rows summed, ``mean_position`` impression-weighted."""
    qcode, quniq = pd.factorize(np.asarray(query_ids, dtype=object), sort=True)
    icode, iuniq = pd.factorize(np.asarray(item_ids, dtype=object), sort=True)
    width = max(len(iuniq), 1)
    ukey, inv = np.unique(qcode.astype(np.int64) * width + icode, return_inverse=True)
    inv = inv.reshape(-1).astype(np.int64)
    n = len(ukey)
    position = np.asarray(position, dtype=np.int64)
    impressions = np.asarray(impressions, dtype=float)
    clicks = np.asarray(clicks, dtype=float)
    imps = np.bincount(inv, weights=impressions, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pos = np.bincount(inv, weights=impressions * position, minlength=n) / imps
    order = np.lexsort((position, inv))
    return ClickLog(
        query_ids=[str(x) for x in quniq[ukey // width]],
        item_ids=[str(x) for x in iuniq[ukey % width]],
        clicks=np.bincount(inv, weights=clicks, minlength=n),
        impressions=imps,
        mean_position=mean_pos,
        positions=PositionCounts(inv[order], position[order], impressions[order], clicks[order]),
        **kwargs,
    )
