"""The part-by-part fast path of :func:`evalkit.online.read.aggregate_log` (local Parquet logs).

A gateway writes a request's rows together, so each Parquet part reduces to per-request rows on
its own (:func:`reduce_part`: pyarrow reads the part's columns, one compiled pass,
:mod:`evalkit.online.scan`, reduces each run of equal request ids), and everything evalkit
keeps is additive over requests: :func:`combine` sums the parts' per-request rows into
per-unit, per-(day, unit) and per-(slice, unit) sums with ``numpy.bincount``, and adds the parts' position, version and score-grid counts.  No hash table
of every request, no spill, no second scan.  ``reduce_part`` is a plain function of a path and a
picklable :class:`PartSpec`, so an engine can map it over the parts (Ray Data:
:func:`evalkit.online.read.aggregate_log_ray`).

The fast path only handles a clean, common log; it returns ``None`` (and the reader takes its
global DuckDB path, which gives the same results, or the one-line error) when anything is not:

- a column type it does not read: request and user ids must be integers or strings; arm,
  version, query and slice columns strings; clicked boolean or integer; position integer; score
  and latency numbers; timestamp a timestamp type;
- a value the global path refuses or treats specially: a null or non-0/1 clicked, a null or
  non-positive position, a null, negative or non-finite latency, a null timestamp, a null or
  non-finite score, the same position twice in a request, a request under two arms;
- a request whose rows are not contiguous in its part, or whose query, user or slice value
  changes between its rows, or that appears in two parts; more than
  :data:`~evalkit.online.scan.MAX_RUN` rows in a request with a click and a non-click;
- no score statistics in the Parquet footers (the score grid spans the two arms' smallest to
  largest score, read from the footers, and checked against the scores read).

Per-request order: the latency arrays are in file order (parts sorted by name, rows as written),
not sorted by request id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.online import scan as S

GRID_CELLS = 1 << 16
MISSING_LEVEL = "(missing)"
NULL_ARM = "(null)"


@dataclass(frozen=True)
class PartSpec:
    """What :func:`reduce_part` reads: contract key -> column (present ones), the unit's key,
    slice columns, the two arm values, the cut-offs and the score grid ``(low, high)``."""

    cols: dict[str, str]
    unit: str
    slices: tuple[str, ...]
    control: str
    treatment: str
    cutoffs: tuple[float, float] | None
    grid: tuple[float, float] | None


def _is_str(t) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def plan(files: list[str], spec_cols: dict[str, str], slices: tuple[str, ...]) -> tuple | None:
    """Whether the fast path can read these Parquet parts: the score's ``(low, high)`` from the
    footers (None without a score column) and True; None when it cannot."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(files[0])
    types = {f.name: f.type for f in schema}
    c = spec_cols
    ok = {
        "request": lambda t: pa.types.is_integer(t) or _is_str(t),
        "user": lambda t: pa.types.is_integer(t) or _is_str(t),
        "arm": _is_str,
        "version": _is_str,
        "query": _is_str,
        "clicked": lambda t: pa.types.is_boolean(t) or pa.types.is_integer(t),
        "position": pa.types.is_integer,
        "score": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
        "latency": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
        "timestamp": pa.types.is_timestamp,
    }
    for key, col in c.items():
        if key in ok and (col not in types or not ok[key](types[col])):
            return None
    if any(name not in types or not _is_str(types[name]) for name in slices):
        return None
    if "score" not in c:
        return (None,)
    lo, hi = np.inf, -np.inf
    for f in files:
        meta = pq.ParquetFile(f).metadata
        idx = meta.schema.to_arrow_schema().get_field_index(c["score"])
        if idx < 0:
            return None
        for g in range(meta.num_row_groups):
            if meta.row_group(g).num_rows == 0:
                continue
            st = meta.row_group(g).column(idx).statistics
            if st is None or not st.has_min_max:
                return None
            lo, hi = min(lo, float(st.min)), max(hi, float(st.max))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return ((lo, hi),)


def _codes(col, null_value: str) -> tuple[np.ndarray, Any]:
    """A string column as int32 codes and its values, a pyarrow string array (a null as
    ``null_value``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.unify_dictionaries() if pa.types.is_dictionary(col.type) else col
        col = col.combine_chunks()
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    values = pc.fill_null(col.dictionary.cast(pa.large_string()), null_value)
    idx = col.indices
    if idx.null_count:
        idx = pc.fill_null(idx, len(values))
        values = pa.concat_arrays([values, pa.array([null_value], pa.large_string())])
    return np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int32), values


def _numbers(col, dtype) -> np.ndarray | None:
    """A numeric column as numpy (None when it has nulls)."""
    if col.null_count:
        return None
    return np.asarray(col.to_numpy(), dtype=dtype)


def _constant(x: np.ndarray, change: np.ndarray) -> bool:
    """Whether ``x`` is the same on every row of each run."""
    return bool(np.all((x[1:] == x[:-1]) | change[1:]))


def reduce_part(path: str, spec: PartSpec) -> dict | None:
    """One Parquet part reduced to its per-request rows and its impression counts (a dict of
    numpy arrays and small lists, picklable); None when the fast path cannot read it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = spec.cols
    pf = pq.ParquetFile(path)
    n = pf.metadata.num_rows

    def column(name: str):  # one column at a time: the part is never held whole
        return pf.read(columns=[name], use_threads=True).column(0)

    read: dict[str, Any] = {}

    def codes(name: str, null: str) -> tuple[np.ndarray, Any]:  # a column read once
        if name not in read:
            read[name] = column(name)
        return _codes(read[name], null)

    out: dict[str, Any] = {"path": path, "rows": n}
    if n == 0:
        return {**out, "empty": True}
    # runs of equal request ids
    rcol = column(c["request"])
    if pa.types.is_integer(rcol.type):
        r = _numbers(rcol, np.int64)
        if r is None:
            return None
        r_values = None
    else:
        if rcol.null_count:
            return None
        r, r_values = _codes(rcol, "")
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(r[1:], r[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    nreq = starts.size
    length = np.diff(np.append(starts, n))
    ids = r[starts]
    del r, rcol
    if not np.all(ids[1:] > ids[:-1]) and np.unique(ids).size < nreq:
        return None  # a request's rows are not together
    out["ids"] = ids if r_values is None else r_values.take(ids).to_numpy(zero_copy_only=False)
    # arm
    acode, avals = _codes(column(c["arm"]), NULL_ARM)
    avals = avals.to_pylist()
    if not _constant(acode, change):
        return None
    out["arm_values"] = avals
    out["arm_rows"] = np.bincount(acode[starts], weights=length, minlength=len(avals)).astype(
        np.int64
    )
    amap = np.array(
        [0 if v == spec.control else 1 if v == spec.treatment else 2 for v in avals], np.int8
    )
    arm = amap[acode]  # per row: 0 control, 1 treatment, 2 another arm
    del acode
    out["arm"] = arm[starts]
    # clicked
    ccol = column(c["clicked"])
    if ccol.null_count:
        return None
    ck = np.asarray(ccol.to_numpy(), dtype=np.int64 if pa.types.is_integer(ccol.type) else bool)
    if ck.dtype != bool and not np.all((ck == 0) | (ck == 1)):
        return None
    ck = ck.view(np.int8) if ck.dtype == bool else ck.astype(np.int8)
    del ccol
    # the numeric columns, then one compiled pass over the rows (evalkit.online.scan)
    p = None
    if "position" in c:
        p = _numbers(column(c["position"]), np.int32)
        if p is None or p.min() < 1 or p.max() > 1 << 20:
            return None
    s, lo, scale = None, 0.0, 1.0
    if "score" in c:
        s = _numbers(column(c["score"]), np.float64)
        if s is None:
            return None
        lo, hi = spec.grid
        scale = GRID_CELLS / (hi - lo if hi > lo else 1.0)
    lat = S.NONE_F
    if "latency" in c:
        lat = _numbers(column(c["latency"]), np.float64)
        if lat is None:
            return None
    t, per_s = S.NONE_I, 1
    if "timestamp" in c:
        tcol = column(c["timestamp"])
        if tcol.null_count:
            return None
        per_s = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[tcol.type.unit]
        t = np.asarray(tcol.cast(pa.int64()).to_numpy(), dtype=np.int64)
        del tcol
    cuts = S.CUTS_OFF if spec.cutoffs is None else np.asarray(spec.cutoffs, dtype=np.float64)
    scan = S.scan_requests(
        starts, length, out["arm"], ck, p, s, lat, t, lo, scale, GRID_CELLS, cuts
    )
    del ck, p, s, lat, t
    if scan.status:
        return None
    out["imp"] = length.astype(np.int32)
    out["clicks"] = scan.clicks
    out["first_p"] = scan.first_p
    out["auc2"] = scan.auc2
    if "position" in c:
        out["pos_n"], out["pos_k"] = scan.pos[0], scan.pos[1]
    if "score" in c:
        if spec.cutoffs is not None:
            out["above"] = scan.above
        out["s_min"] = scan.s_range[:, 0].tolist()
        out["s_max"] = scan.s_range[:, 1].tolist()
        g = scan.grid.reshape(4, -1)  # arm 0's cells, then arm 1's
        out["grid"] = {"n": g[0], "k": g[1], "ss": g[2], "lo": g[3]}
    if "latency" in c:
        out["lat"] = scan.lat_max
    if "timestamp" in c:
        out["day"] = (scan.t_min // (86400 * per_s)).astype(np.int32)
    for key, null in (("query", ""), ("version", NULL_ARM)):
        if key in c:
            code, vals = codes(c[key], null)
            if key == "query":
                if not _constant(code, change):
                    return None
                out["q"], out["q_values"] = code[starts], vals
            else:
                nv = 2 * len(vals)
                if _constant(code, change):  # one version per request: count per request
                    ok = out["arm"] < 2
                    vk = out["arm"][ok].astype(np.int64) * len(vals) + code[starts][ok]
                    rows_v = np.bincount(vk, weights=length[ok], minlength=nv)
                else:
                    keep = arm < 2
                    vk = arm[keep].astype(np.int64) * len(vals) + code[keep]
                    rows_v = np.bincount(vk, minlength=nv)
                out["v_rows"] = rows_v.astype(np.int64).reshape(2, len(vals))
                out["v_values"] = vals.to_pylist()
    if spec.unit == "user":
        ucol = column(c["user"])
        if pa.types.is_integer(ucol.type):
            u = _numbers(ucol, np.int64)
            if u is None:
                return None
            u_values = None
        else:
            u, u_values = _codes(ucol, NULL_ARM)
            if ucol.null_count:
                return None
        if not _constant(u, change):
            return None
        out["u"] = u[starts]
        out["u_values"] = u_values
    out["x"] = []
    for name in spec.slices:
        code, vals = codes(name, MISSING_LEVEL)
        if not _constant(code, change):
            return None
        out["x"].append((code[starts], vals))
    return out


def _release() -> None:
    """Give the memory freed by a part back to the system (pyarrow's pool, glibc's heap): the
    next part's arrays would not reuse all of it, and the peak RSS is the reader's budget."""
    import contextlib
    import ctypes

    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reduce_part_released(path: str, spec: PartSpec) -> dict | None:
    """:func:`reduce_part`, then the freed memory returned to the system."""
    try:
        return reduce_part(path, spec)
    finally:
        _release()


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


def _unique_ids(parts: list[dict]) -> bool:
    """Whether no request id appears in two parts."""
    ids = [p["ids"] for p in parts]
    if all(i.dtype.kind in "iu" for i in ids):
        ranges = sorted((int(i.min()), int(i.max())) for i in ids)
        if all(a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False)):
            return True
    import pandas as pd

    return bool(pd.Index(np.concatenate(ids)).is_unique)


def combine(
    parts: list[dict | None], spec: PartSpec, settings: Any, *, threads: int = 2
) -> dict | None:
    """The parts' partials summed into both arms' aggregates (keyword arguments of
    :class:`~evalkit.online.schema.ArmAggregate`) and the log's totals; None when the fast path
    does not hold (a part refused, a request in two parts, an empty arm, scores off the grid).
    ``threads`` > 1 sums the two arms side by side."""
    from concurrent.futures import ThreadPoolExecutor

    from evalkit.online.schema import DailySums, PositionCounts, RequestSums, UnitSums

    if any(p is None for p in parts):
        return None
    rows = sum(p["rows"] for p in parts)
    parts = [p for p in parts if not p.get("empty")]
    if not parts or not _unique_ids(parts):
        return None
    if spec.unit == "user":
        for p in parts:
            p.pop("ids")
    arm_rows: dict[str, int] = {}
    for p in parts:
        for v, k in zip(p["arm_values"], p["arm_rows"], strict=True):
            arm_rows[v] = arm_rows.get(v, 0) + int(k)
    if not arm_rows.get(spec.control) or not arm_rows.get(spec.treatment):
        return None  # the global path names the missing arm
    other = {
        v: k for v, k in sorted(arm_rows.items()) if v not in (spec.control, spec.treatment) and k
    }
    c = spec.cols
    has_s = "score" in c
    if has_s:
        smin = min(min(p["s_min"]) for p in parts)
        smax = max(max(p["s_max"]) for p in parts)
        if (smin, smax) != tuple(spec.grid):
            return None  # the footers' range is not the two arms' (another arm's scores)
    result: dict[str, Any] = {"rows": rows, "other_arms": other}
    result["cells"] = [None, None]
    result["above"] = [0.0, 0.0]
    if has_s:
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
        result["cells"] = cells
        if spec.cutoffs is not None:
            above = np.zeros(2)
            for p in parts:
                above += p["above"]
            result["above"] = [float(above[0]), float(above[1])]
    arm = np.concatenate([p.pop("arm") for p in parts])
    order = np.argsort(arm, kind="stable")  # requests by arm (file order within an arm)
    n0, n1 = int(np.count_nonzero(arm == 0)), int(np.count_nonzero(arm == 1))
    order = order[: n0 + n1]  # another arm's requests last, dropped
    del arm
    arm_rows = [slice(0, n0), slice(n0, n0 + n1)]

    def cat(key: str) -> np.ndarray:  # the parts' arrays are dropped as they are joined
        return np.concatenate([p.pop(key) for p in parts])[order]

    imp, clicks = cat("imp"), cat("clicks")
    first_p, auc2 = cat("first_p"), cat("auc2")
    first_p[first_p == np.iinfo(np.int32).max] = 0  # no click
    pmax = int(first_p.max()) if first_p.size else 0
    rr_of = np.zeros(pmax + 1)
    rr_of[1:] = 1.0 / np.arange(1, pmax + 1)
    lat = cat("lat") if "latency" in c else None
    day = cat("day") if "timestamp" in c else None
    if spec.unit == "user":
        if parts[0]["u_values"] is None:
            u = cat("u")
        else:
            u_values, u_codes = _global_codes(parts, "u", "u_values")
            u = u_codes[order]
    else:
        u = cat("ids")
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
    order = None
    _release()  # the parts' per-request arrays, now joined
    uniq, code = _dense(u)
    if spec.unit == "user" and parts[0]["u_values"] is not None:
        uniq = np.asarray(u_values, dtype=object)[uniq]
    del u
    nu = len(uniq)

    def weights(name: str, sl: slice) -> np.ndarray | None:
        """One :class:`UnitSums` field per request of the rows ``sl``."""
        ni, nc = imp[sl], clicks[sl]
        if name == "requests":
            return None
        if name == "clicked_requests":
            return (nc > 0).astype(np.float64)
        if name in ("impressions", "clicks"):
            return (ni if name == "impressions" else nc).astype(np.float64)
        if name == "first_click_rr":
            return rr_of[first_p[sl]]
        if not has_s:
            return np.zeros(len(ni))
        if name == "auc_u":
            return auc2[sl] * 0.5
        return (nc * (ni - nc)).astype(np.float64)  # 0 without a click or a non-click

    def sums(k: int, group: np.ndarray | None, ngroups: int, kind: type = UnitSums):
        """Arm ``k``'s per (group, unit) sums: the cells ``group * units + unit`` (sorted) and
        the ``kind`` (:class:`UnitSums` or :class:`RequestSums`) of those cells."""
        sl = arm_rows[k]
        key = code[sl].astype(np.int64)
        if group is not None:
            key += group[sl].astype(np.int64) * nu
        size = ngroups * nu
        if size <= 1 << 28:
            present = np.zeros(size, dtype=bool)
            present[key] = True
            cells = np.flatnonzero(present)
            rank = np.cumsum(present, dtype=np.int32)
            del present
            inv = rank[key].astype(np.intp)
            inv -= 1
            del rank
        else:
            cells, inv = np.unique(key, return_inverse=True)
            inv = inv.reshape(-1).astype(np.intp)
        del key
        out = []
        for f in kind.FIELDS:
            w = weights(f, sl)
            out.append(np.bincount(inv, weights=w, minlength=cells.size).astype(float, copy=False))
            del w
        return cells, kind(*out)

    # the two arms side by side: bincount and the other passes release the GIL
    pool = ThreadPoolExecutor(max_workers=2 if threads > 1 else 1)

    def both_arms(group: np.ndarray | None, ngroups: int, kind: type = UnitSums) -> list:
        return list(pool.map(lambda k: sums(k, group, ngroups, kind), (0, 1)))

    result["units"], result["unit_ids"] = [], []
    present = np.zeros(nu, dtype=np.int8)
    for k, (cells, total) in enumerate(both_arms(None, 1)):
        result["units"].append(total)
        result["unit_ids"].append(uniq[cells])
        present[cells] |= 1 << k
    if spec.unit == "user":
        which = np.flatnonzero(present == 3)
        result["units_in_both"] = int(which.size)
        result["units_in_both_examples"] = [str(x) for x in uniq[which[:5]]]
    else:
        result["units_in_both"], result["units_in_both_examples"] = 0, []
    del present
    result["latency"] = [None, None]
    if lat is not None:
        result["latency"] = [lat[sl] for sl in arm_rows]
        del lat
    result["daily"] = [None, None]
    if day is not None:
        d0 = int(day.min())
        nd = int(day.max()) - d0 + 1
        day -= d0
        for k, (cells, s) in enumerate(both_arms(day, nd, RequestSums)):
            result["daily"][k] = DailySums(day=(cells // nu + d0).astype(np.int64), sums=s)
        del day
    slices: list[dict] = [{}, {}]
    while dims:
        dim, levels, level = dims.pop(0)
        nl = len(levels)
        for k, (cells, s) in enumerate(both_arms(level, nl, RequestSums)):
            bounds = np.searchsorted(cells // nu, np.arange(nl + 1), side="left")
            for i, value in enumerate(levels):
                if bounds[i + 1] > bounds[i]:
                    sel = slice(bounds[i], bounds[i + 1])
                    slices[k][(dim, str(value))] = RequestSums(
                        s.requests[sel], s.clicked_requests[sel]
                    )
        del level
    pool.shutdown()
    result["slices"] = slices
    result["positions"] = [None, None]
    if "position" in c:
        width = max(p["pos_n"].shape[1] for p in parts)
        n = np.zeros((2, width))
        k = np.zeros((2, width))
        for p in parts:
            n[:, : p["pos_n"].shape[1]] += p["pos_n"]
            k[:, : p["pos_k"].shape[1]] += p["pos_k"]
        result["positions"] = [
            PositionCounts(
                position=np.flatnonzero(n[a]).astype(np.int64),
                impressions=n[a][n[a] > 0],
                clicks=k[a][n[a] > 0],
            )
            for a in (0, 1)
        ]
    result["versions"] = [{}, {}]
    if "version" in c:
        counts: list[dict[str, int]] = [{}, {}]
        for p in parts:
            for a in (0, 1):
                for v, m in zip(p["v_values"], p["v_rows"][a], strict=True):
                    if m:
                        counts[a][v] = counts[a].get(v, 0) + int(m)
        result["versions"] = [dict(sorted(x.items())) for x in counts]
    return result


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
