"""The parts' partials (:func:`evalkit.online.parts.reduce_part`) summed into both arms'
outputs: :func:`combine` joins the per-request rows once, in file order, and sums them per
(group, unit) cell (:mod:`evalkit.online.cell_sums`); grid, position, version counts part by part.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.online.cell_sums import cell_sums
from evalkit.online.gateway_log import (
    GRID_CELLS,
    DailySums,
    PositionCounts,
    RequestSums,
    UnitSums,
    by_level,
    frequency_band,
)
from evalkit.online.parts import PartSpec, release
from evalkit.online.scan import NO_CLICK


def combine(parts: list[dict | None], spec: PartSpec, *, threads: int = 2) -> dict | None:
    """Both arms' outputs and the log's totals; None when the fast path does not hold (a part
    refused, a request in two parts, an empty arm, scores off the grid)."""
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
    # the slice dimensions (the query bands: a pass over the query strings) are built on a third
    # thread while the two arms' unit sums run
    with (
        ThreadPoolExecutor(max_workers=2 if threads > 1 else 1) as pool,
        ThreadPoolExecutor(max_workers=1) as side,
    ):
        if threads > 1:
            dims: Any = side.submit(slice_dims, parts, spec, req.arm)
        else:
            dims = lambda: slice_dims(parts, spec, req.arm)  # noqa: E731
        result.update(req.outputs(pool, spec.unit == "user", dims))
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
    """Rows of the other arm values; None when control or treatment has no row."""
    rows: dict[str, int] = {}
    for p in parts:
        for v, k in zip(p["arm_values"], p["arm_rows"], strict=True):
            rows[v] = rows.get(v, 0) + int(k)
    if not rows.get(spec.control) or not rows.get(spec.treatment):
        return None
    return {v: k for v, k in sorted(rows.items()) if v not in (spec.control, spec.treatment) and k}


def score_grid(parts: list[dict], spec: PartSpec) -> dict[str, Any] | None:
    """Each arm's non-empty score-grid cells and clicked rows above its cut-off; None when the
    footers' score range is not the two arms' (another arm's)."""
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
    """Every request in file order: arm (2: another), per-request columns, unit code."""

    arm: np.ndarray
    imp: np.ndarray
    clicks: np.ndarray
    first_p: np.ndarray  # 0 without a click
    auc2: np.ndarray
    has_score: bool
    lat: np.ndarray | None
    day: np.ndarray | None
    code: np.ndarray
    units: np.ndarray

    def sums(self, k: int, group: np.ndarray | None, ngroups: int, kind: type = UnitSums):
        """Arm ``k``'s sorted cells ``group * units + unit`` and their ``kind`` sums
        (:class:`UnitSums` or :class:`RequestSums`)."""
        cells, out = cell_sums(
            self.arm,
            k,
            self.code,
            group,
            len(self.units),
            ngroups,
            self.imp,
            self.clicks,
            self.first_p,
            self.auc2,
            self.has_score,
            kind is UnitSums,
        )
        return cells, kind(*(np.ascontiguousarray(out[:, i]) for i in range(len(kind.FIELDS))))

    def slice_sums(
        self, pool: ThreadPoolExecutor, level: np.ndarray, levels: int, units: list, cells: list
    ) -> list[tuple[np.ndarray, RequestSums]]:
        """Both arms' per (slice level, unit) request counts; an arm all in one level takes its
        unit sums' counts (the same cells and additions)."""
        # each (arm, level)'s requests in one pass (arm 2: another arm's, not counted)
        cell = np.multiply(self.arm, levels, dtype=np.int64) + level
        per_arm = np.bincount(cell, minlength=3 * levels)
        present = [per_arm[k * levels : (k + 1) * levels] > 0 for k in (0, 1)]
        single = [int(np.flatnonzero(p)[0]) if p.sum() == 1 else None for p in present]
        nu = len(self.units)

        def one(k: int) -> tuple[np.ndarray, RequestSums]:
            if single[k] is None:
                return self.sums(k, level, levels, RequestSums)
            sums = RequestSums(units[k].requests.copy(), units[k].clicked_requests.copy())
            return cells[k] + single[k] * nu, sums

        return list(pool.map(one, (0, 1)))

    def outputs(self, pool: ThreadPoolExecutor, by_user: bool, dims: Any) -> dict[str, Any]:
        """Both arms' per unit, (day, unit) and (slice, unit) sums, latencies and the units in
        both; ``dims`` (:func:`slice_dims`): a future or a function, asked for last."""

        def both_arms(group: np.ndarray | None, ngroups: int, kind: type = UnitSums) -> list:
            return list(pool.map(lambda k: self.sums(k, group, ngroups, kind), (0, 1)))

        nu = len(self.units)
        out: dict[str, Any] = {"units": [], "unit_ids": []}
        seen = np.zeros(nu, dtype=np.int8)
        unit_cells = []
        for k, (cells, total) in enumerate(both_arms(None, 1)):
            unit_cells.append(cells)
            out["units"].append(total)
            out["unit_ids"].append(self.units[cells])
            seen[cells] |= 1 << k
        which = np.flatnonzero(seen == 3) if by_user else np.zeros(0, np.int64)
        out["units_in_both"] = int(which.size)
        out["units_in_both_examples"] = [str(x) for x in self.units[which[:5]]]
        out["latency"] = [None, None]
        if self.lat is not None:
            out["latency"] = [self.lat[self.arm == k] for k in (0, 1)]
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
        dims = dims.result() if hasattr(dims, "result") else dims()
        release()  # the parts' query and slice codes, now joined
        while dims:
            dim, levels, level = dims.pop(0)
            for k, (cells, s) in enumerate(
                self.slice_sums(pool, level, len(levels), out["units"], unit_cells)
            ):
                out["slices"][k].update(by_level(dim, levels, cells // nu, s))
            del level
        return out


def join_requests(parts: list[dict], spec: PartSpec) -> Requests:
    """The parts' per-request arrays joined in file order (and dropped from the parts; the query
    and slice codes stay for :func:`slice_dims`) and the unit codes."""
    # the requests stay in file order (no sort, no gather): the sums pick each arm's
    arm = np.concatenate([p.pop("arm") for p in parts])

    def cat(key: str) -> np.ndarray:
        return np.concatenate([p.pop(key) for p in parts])

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
        u_values, u = _global_codes(parts, "u", "u_values")
    release()  # the parts' per-request arrays, now joined
    units, code = _dense(u)
    if u_values is not None:
        units = np.asarray(u_values, dtype=object)[units]
    return Requests(arm, imp, clicks, first_p, auc2, "score" in c, lat, day, code, units)


def slice_dims(
    parts: list[dict], spec: PartSpec, arm: np.ndarray
) -> list[tuple[str, list[str], np.ndarray]]:
    """The slices' dimensions (name, levels, each request's level): the query's length and
    frequency bands, then the ``online.slices`` columns; the parts' codes are dropped."""
    dims: list[tuple[str, list[str], np.ndarray]] = []
    if "query" in spec.cols:
        q_values, q = _global_codes(parts, "q", "q_values")
        dims += _query_dims(q_values, q, arm < 2)
        del q
    for i, name in enumerate(spec.slices):
        vals, xc = _global_codes([{"x": p["x"][i][0], "v": p["x"][i][1]} for p in parts], "x", "v")
        for p in parts:
            p["x"][i] = None
        n = len(vals)  # the codes in the smallest integer type that holds them
        dims.append(
            (name, vals, xc.astype(np.int8 if n < 128 else np.int16 if n < 32768 else np.int32))
        )
    return dims


def positions(parts: list[dict]) -> list[PositionCounts]:
    """Both arms' impressions and clicks per position, summed over the parts."""
    width = max(p["pos_n"].shape[1] for p in parts)
    n, k = np.zeros((2, 2, width))
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
    """``np.unique(values, return_inverse=True)``, without a sort for dense integers."""
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
    """The parts' string codes mapped to one sorted list of values (the parts' codes dropped)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pa.chunked_array([p[values_key] for p in parts], pa.large_string())
    allv = pc.unique(values)
    allv = allv.take(pc.sort_indices(allv))
    # every part's values looked up at once (one hash table of the sorted values, not one per part)
    where = pc.index_in(values, value_set=allv).to_numpy(zero_copy_only=False).astype(np.int32)
    ends = np.cumsum([len(p[values_key]) for p in parts])
    codes = [
        where[end - len(p[values_key]) : end][p.pop(code_key)]
        for p, end in zip(parts, ends, strict=True)
    ]
    return allv.to_pylist(), np.concatenate(codes) if codes else np.zeros(0, np.int32)


def _query_dims(
    values: list[str], q: np.ndarray, counted: np.ndarray
) -> list[tuple[str, list[str], np.ndarray]]:
    """Each request's query length and frequency band (of the ``counted`` requests), as read's."""
    import re

    per_query = np.bincount(q[counted], minlength=len(values))
    n_of = per_query.astype(np.int64)
    seen = np.flatnonzero(per_query)
    ns, queries = np.unique(n_of[seen], return_counts=True)
    ns, queries = ns[::-1], queries[::-1]  # most frequent first
    band_of_n = dict(zip(ns.tolist(), frequency_band(ns, queries), strict=True))
    space = re.compile(r"[\t\n\f\r ]+")
    lengths, freqs = ["1", "2-3", "4+"], ["head", "tail", "torso"]
    lcode = np.zeros(len(values), dtype=np.int8)
    fcode = np.zeros(len(values), dtype=np.int8)
    for i in seen.tolist():
        tokens = len(space.split(values[i].strip(" ")))
        lcode[i] = 0 if tokens <= 1 else 1 if tokens <= 3 else 2
        fcode[i] = freqs.index(str(band_of_n[int(n_of[i])]))
    return [("length", lengths, lcode[q]), ("frequency", freqs, fcode[q])]
