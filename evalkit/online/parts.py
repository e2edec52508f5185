"""The part-by-part fast path of :func:`evalkit.online.read.aggregate_log` (local Parquet logs).

:func:`reduce_part` (a path and a picklable :class:`PartSpec`: an engine can map it over the
parts) reduces one part to per-request rows; :mod:`evalkit.online.combine` sums the parts.  It
returns ``None`` (the reader then takes its global path) unless the log is clean and common:
types it reads, no value the global path refuses or treats specially, each request contiguous in
one part with one query, user and slice value, score statistics in the footers.  Latency arrays
are in file order (parts by name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.online import scan as S
from evalkit.online.gateway_log import GRID_CELLS, MISSING_LEVEL

NULL_ARM = "(null)"


@dataclass(frozen=True)
class PartSpec:
    """What :func:`reduce_part` reads: contract key -> column (present ones), the unit's key,
    slice columns, the two arm values, the cut-offs, the score grid ``(low, high)`` and the
    columns that hold strings (read as the file's dictionaries: no string per row)."""

    cols: dict[str, str]
    unit: str
    slices: tuple[str, ...]
    control: str
    treatment: str
    cutoffs: tuple[float, float] | None
    grid: tuple[float, float] | None
    strings: tuple[str, ...] = ()


def _is_str(t) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def plan(files: list[str], c: dict[str, str], slices: tuple[str, ...]) -> tuple | None:
    """Whether the fast path can read these Parquet parts: the score's ``(low, high)`` from the
    footers (None without a score column) and the columns read that hold strings; None when
    it cannot."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {f.name: f.type for f in pq.read_schema(files[0])}
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
    names = dict.fromkeys([*c.values(), *slices])
    strings = tuple(n for n in names if n in types and _is_str(types[n]))
    if "score" not in c:
        return (None, strings)
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
    return ((lo, hi), strings)


def _codes(col, null_value: str) -> tuple[np.ndarray, Any]:
    """A string column as int32 codes and its values (pyarrow; a null as ``null_value``)."""
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


def _ids(col, null: str) -> tuple[np.ndarray, Any]:
    """An id column (refused: a null) as int64 and None, or as string codes and their values."""
    import pyarrow as pa

    _need(not col.null_count)
    if pa.types.is_integer(col.type):
        return np.asarray(col.to_numpy(), dtype=np.int64), None
    return _codes(col, null)


def _numbers(col, dtype) -> np.ndarray | None:
    """A numeric column as numpy (None when it has nulls)."""
    if col.null_count:
        return None
    return np.asarray(col.to_numpy(), dtype=dtype)


def _constant(x: np.ndarray, change: np.ndarray) -> bool:
    """Whether ``x`` is the same on every row of each run."""
    return bool(np.all((x[1:] == x[:-1]) | change[1:]))


class _Refused(Exception):
    """The fast path cannot read this part (the reader takes its global path)."""


def _need(ok: bool) -> None:
    if not ok:
        raise _Refused


class _Part:
    """One Parquet part, read a column at a time, and its runs of equal request ids."""

    def __init__(self, path: str, strings: list[str] | None = None) -> None:
        import pyarrow.parquet as pq

        # string columns come as the file's dictionary pages and codes (no string per row)
        self.pf = pq.ParquetFile(path, read_dictionary=strings or None)
        self.n = self.pf.metadata.num_rows
        self._read: dict[str, Any] = {}

    def column(self, name: str):
        return self.pf.read(columns=[name], use_threads=False).column(0)

    def codes(self, name: str, null: str) -> tuple[np.ndarray, Any]:
        """A string column's codes and values (the column read once for several uses)."""
        if name not in self._read:
            self._read[name] = self.column(name)
        return _codes(self._read[name], null)

    def constant(self, per_row: np.ndarray) -> np.ndarray:
        """The per-request values of a column that must not change inside a request."""
        _need(_constant(per_row, self.change))
        return per_row[self.starts]

    def runs(self, request_column: str) -> np.ndarray:
        """Find the requests (runs of equal ids); their ids, in order."""
        r, values = _ids(self.column(request_column), "")
        self.change = np.empty(self.n, dtype=bool)
        self.change[0] = True
        np.not_equal(r[1:], r[:-1], out=self.change[1:])
        self.starts = np.flatnonzero(self.change)
        self.length = np.diff(np.append(self.starts, self.n))
        ids = r[self.starts]
        # a request's rows must be together
        _need(bool(np.all(ids[1:] > ids[:-1])) or np.unique(ids).size == ids.size)
        return ids if values is None else values.take(ids).to_numpy(zero_copy_only=False)


def reduce_part(path: str, spec: PartSpec) -> dict | None:
    """One part's per-request rows and impression counts (picklable); None: refused."""
    part = _Part(path, list(spec.strings))
    out: dict[str, Any] = {"path": path, "rows": part.n}
    if part.n == 0:
        return {**out, "empty": True}
    try:
        out["ids"] = part.runs(spec.cols["request"])
        arm = _arms(part, spec, out)
        _scanned(part, spec, _clicked(part, spec), out)
        _per_request(part, spec, arm, out)
    except _Refused:
        return None
    return out


def _arms(part: _Part, spec: PartSpec, out: dict[str, Any]) -> np.ndarray:
    """Each request's arm (2: another) and the rows per arm value; returns the arm per row."""
    acode, avals = _codes(part.column(spec.cols["arm"]), NULL_ARM)
    avals = avals.to_pylist()
    first = part.constant(acode)
    out["arm_values"] = avals
    rows = np.bincount(first, weights=part.length, minlength=len(avals))
    out["arm_rows"] = rows.astype(np.int64)
    amap = np.array(
        [0 if v == spec.control else 1 if v == spec.treatment else 2 for v in avals], np.int8
    )
    out["arm"] = amap[first]
    return amap[acode]


def _clicked(part: _Part, spec: PartSpec) -> np.ndarray:
    """The clicked column as int8 0 / 1 (refused: a null or another value)."""
    import pyarrow as pa

    col = part.column(spec.cols["clicked"])
    _need(not col.null_count)
    ck = np.asarray(col.to_numpy(), dtype=np.int64 if pa.types.is_integer(col.type) else bool)
    _need(ck.dtype == bool or bool(np.all((ck == 0) | (ck == 1))))
    return ck.view(np.int8) if ck.dtype == bool else ck.astype(np.int8)


def _scanned(part: _Part, spec: PartSpec, ck: np.ndarray, out: dict[str, Any]) -> None:
    """The numeric columns' per-request and per-arm sums, in one compiled pass."""
    import pyarrow as pa

    c = spec.cols
    p = None
    if "position" in c:
        p = _numbers(part.column(c["position"]), np.int32)
        _need(p is not None and p.min() >= 1 and p.max() <= 1 << 20)
    s, lo, scale = None, 0.0, 1.0
    if "score" in c:
        s = _numbers(part.column(c["score"]), np.float64)
        _need(s is not None)
        lo, hi = spec.grid
        scale = GRID_CELLS / (hi - lo if hi > lo else 1.0)
    lat = S.NONE_F
    if "latency" in c:
        lat = _numbers(part.column(c["latency"]), np.float64)
        _need(lat is not None)
    t, per_s = S.NONE_I, 1
    if "timestamp" in c:
        tcol = part.column(c["timestamp"])
        _need(not tcol.null_count)
        per_s = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[tcol.type.unit]
        t = np.asarray(tcol.cast(pa.int64()).to_numpy(), dtype=np.int64)
    cuts = S.CUTS_OFF if spec.cutoffs is None else np.asarray(spec.cutoffs, dtype=np.float64)
    scan = S.scan_requests(
        part.starts, part.length, out["arm"], ck, p, s, lat, t, lo, scale, GRID_CELLS, cuts
    )
    _need(scan.status == 0)
    out["imp"] = part.length.astype(np.int32)
    out["clicks"], out["first_p"], out["auc2"] = scan.clicks, scan.first_p, scan.auc2
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


def _per_request(part: _Part, spec: PartSpec, arm: np.ndarray, out: dict[str, Any]) -> None:
    """The query, user and slice codes per request, and the rows per model version and arm."""

    c = spec.cols
    if "query" in c:
        code, out["q_values"] = part.codes(c["query"], "")
        out["q"] = part.constant(code)
    if "version" in c:
        code, vals = part.codes(c["version"], NULL_ARM)
        nv = 2 * len(vals)
        if _constant(code, part.change):  # one version per request: count per request
            ok = out["arm"] < 2
            vk = out["arm"][ok].astype(np.int64) * len(vals) + code[part.starts][ok]
            rows_v = np.bincount(vk, weights=part.length[ok], minlength=nv)
        else:
            keep = arm < 2
            rows_v = np.bincount(arm[keep].astype(np.int64) * len(vals) + code[keep], minlength=nv)
        out["v_rows"] = rows_v.astype(np.int64).reshape(2, len(vals))
        out["v_values"] = vals.to_pylist()
    if spec.unit == "user":
        u, out["u_values"] = _ids(part.column(c["user"]), NULL_ARM)
        out["u"] = part.constant(u)
    out["x"] = []
    for name in spec.slices:
        code, vals = part.codes(name, MISSING_LEVEL)
        out["x"].append((part.constant(code), vals))


def release() -> None:
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
        release()
