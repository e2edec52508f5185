"""The parts' partials (:func:`evalkit.online.parts.reduce_part`) summed into both arms'
aggregates: the second half of the part-by-part path of :func:`evalkit.online.read.aggregate_log`.

Every output is additive over requests, so :func:`combine` joins the parts' per-request rows
once (sorted by arm, :func:`join_requests`) and sums them per (group, unit) cell with
``numpy.bincount`` (:class:`CellSums`; the two arms side by side on two threads: ``bincount``
releases the GIL): per unit all of :class:`~evalkit.online.schema.UnitSums`, per (day, unit) and
per (slice, unit) the request counts (:class:`~evalkit.online.schema.RequestSums`).  The score
grid, position and version counts are summed part by part.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.online.parts import GRID_CELLS, PartSpec, release
from evalkit.online.schema import DailySums, PositionCounts, RequestSums, UnitSums

NO_CLICK = np.iinfo(np.int32).max


def combine(
    parts: list[dict | None], spec: PartSpec, settings: Any, *, threads: int = 2
) -> dict | None:
    """The parts' partials summed into both arms' aggregates (keyword arguments of
    :class:`~evalkit.online.schema.ArmAggregate`) and the log's totals; None when the fast path
    does not hold (a part refused, a request in two parts, an empty arm, scores off the grid).
    ``threads`` > 1 sums the two arms side by side."""
    if any(p is None for p in parts):
        return None
    rows = sum(p["rows"] for p in parts)
    parts = [p for p in parts if not p.get("empty")]
    if not parts or not _unique_ids(parts):
        return None
    other = other_arms(parts, spec)
    if other is None:
        return None  # an arm is empty: the global path names it
    grid = score_grid(parts, spec)
    if grid is None:
        return None
    result: dict[str, Any] = {"rows": rows, "other_arms": other, **grid}
    req = join_requests(parts, spec)
    with ThreadPoolExecutor(max_workers=2 if threads > 1 else 1) as pool:
        result.update(req.outputs(pool, spec.unit == "user"))
    result["positions"] = positions(parts) if "position" in spec.cols else [None, None]
    result["versions"] = versions(parts) if "version" in spec.cols else [{}, {}]
    return result


def _unique_ids(parts: list[dict]) -> bool:
    """Whether no request id appears in two parts."""
    ids = [p["ids"] for p in parts]
    if all(i.dtype.kind in "iu" for i in ids):
        ranges = sorted((int(i.min()), int(i.max())) for i in ids)
        if all(a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False)):
            return True
    import pandas as pd

    return bool(pd.Index(np.concatenate(ids)).is_unique)


def other_arms(parts: list[dict], spec: PartSpec) -> dict[str, int] | None:
    """Rows of the arm values that are neither control nor treatment; None when control or
    treatment has no row."""
    rows: dict[str, int] = {}
    for p in parts:
        for v, k in zip(p["arm_values"], p["arm_rows"], strict=True):
            rows[v] = rows.get(v, 0) + int(k)
    if not rows.get(spec.control) or not rows.get(spec.treatment):
        return None
    return {v: k for v, k in sorted(rows.items()) if v not in (spec.control, spec.treatment) and k}


def score_grid(parts: list[dict], spec: PartSpec) -> dict[str, Any] | None:
    """Each arm's non-empty score-grid cells (``cells``: impressions, clicks, score sum,
    smallest score per cell, and the arm's largest score) and clicked rows above its cut-off
    (``above``); None when the footers' score range is not the two arms' (another arm's)."""
    if "score" not in spec.cols:
        return {"cells": [None, None], "above": [0.0, 0.0]}
    smin = min(min(p["s_min"]) for p in parts)
    smax = max(max(p["s_max"]) for p in parts)
    if (smin, smax) != tuple(spec.grid):
        return None
    size = GRID_CELLS + 1
    grid = {key: np.zeros(2 * size) for key in ("n", "k", "ss")}
    grid["lo"] = np.full(2 * size, np.inf)
    for p in parts:
        part_grid = p.pop("grid")
        for key in ("n", "k", "ss"):
            grid[key] += part_grid[key]
        np.minimum(grid["lo"], part_grid["lo"], out=grid["lo"])
    cells = []
    for a in (0, 1):
        sl = slice(a * size, (a + 1) * size)
        ok = grid["n"][sl] > 0
        arm_cells = {key: grid[key][sl][ok] for key in grid}
        arm_cells["hi"] = np.array([max(p["s_max"][a] for p in parts)])  # the arm's largest
        cells.append(arm_cells)
    above = np.zeros(2)
    if spec.cutoffs is not None:
        for p in parts:
            above += p["above"]
    return {"cells": cells, "above": [float(above[0]), float(above[1])]}


@dataclass
class Requests:
    """Every request of both arms, joined from the parts (control's, then treatment's, each in
    file order): per-request columns, the unit's code (``code`` into ``units``), and the
    grouping dimensions (name, levels, per-request level)."""

    arm_rows: list[slice]
    imp: np.ndarray
    clicks: np.ndarray
    first_p: np.ndarray  # 0 without a click
    auc2: np.ndarray
    has_score: bool
    lat: np.ndarray | None
    day: np.ndarray | None
    code: np.ndarray
    units: np.ndarray
    dims: list[tuple[str, list[str], np.ndarray]]

    def weights(self, name: str, sl: slice) -> np.ndarray | None:
        """One :class:`UnitSums` field per request of the rows ``sl`` (None: a count)."""
        ni, nc = self.imp[sl], self.clicks[sl]
        if name == "requests":
            return None
        if name == "clicked_requests":
            return (nc > 0).astype(np.float64)
        if name in ("impressions", "clicks"):
            return (ni if name == "impressions" else nc).astype(np.float64)
        if name == "first_click_rr":
            pmax = int(self.first_p.max()) if self.first_p.size else 0
            rr_of = np.zeros(pmax + 1)
            rr_of[1:] = 1.0 / np.arange(1, pmax + 1)
            return rr_of[self.first_p[sl]]
        if not self.has_score:
            return np.zeros(len(ni))
        if name == "auc_u":
            return self.auc2[sl] * 0.5
        return (nc * (ni - nc)).astype(np.float64)  # 0 without a click or a non-click

    def sums(self, k: int, group: np.ndarray | None, ngroups: int, kind: type = UnitSums):
        """Arm ``k``'s per (group, unit) sums: the cells ``group * units + unit`` (sorted) and
        the ``kind`` (:class:`UnitSums` or :class:`RequestSums`) of those cells."""
        sl, nu = self.arm_rows[k], len(self.units)
        key = self.code[sl].astype(np.int64)
        if group is not None:
            key += group[sl].astype(np.int64) * nu
        cells, inv = _cells(key, ngroups * nu)
        del key
        out = []
        for f in kind.FIELDS:
            w = self.weights(f, sl)
            out.append(np.bincount(inv, weights=w, minlength=cells.size).astype(float, copy=False))
            del w
        return cells, kind(*out)

    def outputs(self, pool: ThreadPoolExecutor, by_user: bool) -> dict[str, Any]:
        """Per unit, per (day, unit) and per (slice, unit) sums of both arms, the latencies,
        and the units seen in both arms."""

        def both_arms(group: np.ndarray | None, ngroups: int, kind: type = UnitSums) -> list:
            return list(pool.map(lambda k: self.sums(k, group, ngroups, kind), (0, 1)))

        nu = len(self.units)
        out: dict[str, Any] = {"units": [], "unit_ids": []}
        seen = np.zeros(nu, dtype=np.int8)
        for k, (cells, total) in enumerate(both_arms(None, 1)):
            out["units"].append(total)
            out["unit_ids"].append(self.units[cells])
            seen[cells] |= 1 << k
        which = np.flatnonzero(seen == 3) if by_user else np.zeros(0, np.int64)
        out["units_in_both"] = int(which.size)
        out["units_in_both_examples"] = [str(x) for x in self.units[which[:5]]]
        out["latency"] = [None, None]
        if self.lat is not None:
            out["latency"] = [self.lat[sl] for sl in self.arm_rows]
            self.lat = None
        out["daily"] = [None, None]
        if self.day is not None:
            d0 = int(self.day.min())
            nd = int(self.day.max()) - d0 + 1
            self.day -= d0
            for k, (cells, s) in enumerate(both_arms(self.day, nd, RequestSums)):
                out["daily"][k] = DailySums(day=(cells // nu + d0).astype(np.int64), sums=s)
            self.day = None
        out["slices"] = [{}, {}]
        while self.dims:
            dim, levels, level = self.dims.pop(0)
            for k, (cells, s) in enumerate(both_arms(level, len(levels), RequestSums)):
                bounds = np.searchsorted(cells // nu, np.arange(len(levels) + 1), side="left")
                for i, value in enumerate(levels):
                    if bounds[i + 1] > bounds[i]:
                        sel = slice(bounds[i], bounds[i + 1])
                        out["slices"][k][(dim, str(value))] = RequestSums(
                            s.requests[sel], s.clicked_requests[sel]
                        )
            del level
        return out


def _cells(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys (sorted) and each key's index in them, without a sort when the key
    space is small enough for a presence array."""
    if size <= 1 << 28:
        present = np.zeros(size, dtype=bool)
        present[key] = True
        cells = np.flatnonzero(present)
        rank = np.cumsum(present, dtype=np.int32)
        del present
        inv = rank[key].astype(np.intp)
        inv -= 1
        return cells, inv
    cells, inv = np.unique(key, return_inverse=True)
    return cells, inv.reshape(-1).astype(np.intp)


def join_requests(parts: list[dict], spec: PartSpec) -> Requests:
    """The parts' per-request arrays joined (control's requests, then treatment's; another
    arm's dropped), the unit codes, and the query-band and slice dimensions; the parts'
    arrays are dropped as they are joined."""
    arm = np.concatenate([p.pop("arm") for p in parts])
    order = np.argsort(arm, kind="stable")  # requests by arm (file order within an arm)
    n0, n1 = int(np.count_nonzero(arm == 0)), int(np.count_nonzero(arm == 1))
    order = order[: n0 + n1]  # another arm's requests last, dropped
    del arm

    def cat(key: str) -> np.ndarray:
        return np.concatenate([p.pop(key) for p in parts])[order]

    c = spec.cols
    imp, clicks, first_p, auc2 = cat("imp"), cat("clicks"), cat("first_p"), cat("auc2")
    first_p[first_p == NO_CLICK] = 0
    lat = cat("lat") if "latency" in c else None
    day = cat("day") if "timestamp" in c else None
    if spec.unit != "user":
        u, u_values = cat("ids"), None
    elif parts[0]["u_values"] is None:
        u, u_values = cat("u"), None
    else:
        u_values, u_codes = _global_codes(parts, "u", "u_values")
        u = u_codes[order]
    dims: list[tuple[str, list[str], np.ndarray]] = []
    if "query" in c:
        q_values, q = _global_codes(parts, "q", "q_values")
        dims += _query_dims(q_values, q[order])
        del q
    for i, name in enumerate(spec.slices):
        vals, xc = _global_codes([{"x": p["x"][i][0], "v": p["x"][i][1]} for p in parts], "x", "v")
        for p in parts:
            p["x"][i] = None
        dims.append((name, vals, _small(xc[order], len(vals))))
    order = None  # noqa: F841 - the join's index, freed before the sums
    release()  # the parts' per-request arrays, now joined
    units, code = _dense(u)
    if u_values is not None:
        units = np.asarray(u_values, dtype=object)[units]
    return Requests(
        arm_rows=[slice(0, n0), slice(n0, n0 + n1)],
        imp=imp,
        clicks=clicks,
        first_p=first_p,
        auc2=auc2,
        has_score="score" in c,
        lat=lat,
        day=day,
        code=code,
        units=units,
        dims=dims,
    )


def positions(parts: list[dict]) -> list[PositionCounts]:
    """Both arms' impressions and clicks per position, summed over the parts."""
    width = max(p["pos_n"].shape[1] for p in parts)
    n = np.zeros((2, width))
    k = np.zeros((2, width))
    for p in parts:
        n[:, : p["pos_n"].shape[1]] += p["pos_n"]
        k[:, : p["pos_k"].shape[1]] += p["pos_k"]
    return [
        PositionCounts(
            position=np.flatnonzero(n[a]).astype(np.int64),
            impressions=n[a][n[a] > 0],
            clicks=k[a][n[a] > 0],
        )
        for a in (0, 1)
    ]


def versions(parts: list[dict]) -> list[dict[str, int]]:
    """Both arms' rows per ``model_version`` value, summed over the parts."""
    counts: list[dict[str, int]] = [{}, {}]
    for p in parts:
        for a in (0, 1):
            for v, m in zip(p["v_values"], p["v_rows"][a], strict=True):
                if m:
                    counts[a][v] = counts[a].get(v, 0) + int(m)
    return [dict(sorted(x.items())) for x in counts]


def _dense(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's index in them (``np.unique``, without a sort
    when the values are integers in a range not much wider than their count)."""
    if values.dtype.kind in "iu" and values.size:
        lo, hi = int(values.min()), int(values.max())
        span = hi - lo + 1
        if span <= max(4 * values.size, 1 << 16) and span < 1 << 30:
            present = np.zeros(span, dtype=bool)
            present[values - lo] = True
            rank = np.cumsum(present, dtype=np.int64 if span >= 1 << 31 else np.int32) - 1
            return np.flatnonzero(present) + lo, rank[values - lo]
    uniq, inv = np.unique(values, return_inverse=True)
    return uniq, inv.reshape(-1)


def _global_codes(parts: list[dict], code_key: str, values_key: str) -> tuple[list, np.ndarray]:
    """Per-part codes of a string column mapped to one sorted list of values (codes in order);
    the parts' codes are dropped."""
    import pyarrow as pa
    import pyarrow.compute as pc

    allv = pc.unique(pa.chunked_array([p[values_key] for p in parts], pa.large_string()))
    allv = allv.take(pc.sort_indices(allv))
    codes = []
    for p in parts:
        m = pc.index_in(p[values_key], value_set=allv).to_numpy(zero_copy_only=False)
        codes.append(m.astype(np.int32)[p.pop(code_key)])
    return allv.to_pylist(), np.concatenate(codes) if codes else np.zeros(0, np.int32)


def _small(codes: np.ndarray, n: int) -> np.ndarray:
    """Codes ``0 .. n - 1`` in the smallest integer type that holds them."""
    return codes.astype(np.int8 if n < 1 << 7 else np.int16 if n < 1 << 15 else np.int32)


def _query_dims(values: list[str], q: np.ndarray) -> list[tuple[str, list[str], np.ndarray]]:
    """The length and frequency band of each request's query (as :mod:`evalkit.online.read`)."""
    import re

    from evalkit.online.schema import HEAD_SHARE, TORSO_SHARE

    per_query = np.bincount(q, minlength=len(values))
    n_of = per_query.astype(np.int64)
    seen = np.flatnonzero(per_query)
    ns, queries = np.unique(n_of[seen], return_counts=True)
    ns, queries = ns[::-1], queries[::-1]  # most frequent first
    traffic = ns.astype(np.float64) * queries
    total = traffic.sum()
    greater = np.cumsum(traffic) - traffic
    share = greater / total if total > 0 else np.ones_like(greater)
    band_of_n = dict(
        zip(
            ns.tolist(),
            np.where(share < HEAD_SHARE, "head", np.where(share < TORSO_SHARE, "torso", "tail")),
            strict=True,
        )
    )
    space = re.compile(r"[\t\n\f\r ]+")
    lengths, freqs = ["1", "2-3", "4+"], ["head", "tail", "torso"]
    lcode = np.zeros(len(values), dtype=np.int8)
    fcode = np.zeros(len(values), dtype=np.int8)
    for i in seen.tolist():
        tokens = len(space.split(values[i].strip(" ")))
        lcode[i] = 0 if tokens <= 1 else 1 if tokens <= 3 else 2
        fcode[i] = freqs.index(str(band_of_n[int(n_of[i])]))
    return [("length", lengths, lcode[q]), ("frequency", freqs, fcode[q])]
