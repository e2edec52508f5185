"""Read a canary's gateway log in streamed, columnar scans and reduce it to per-unit sums (the
log is never held): a local Parquet log part by part (:mod:`evalkit.online.parts`), anything
else by three global DuckDB scans; a bad row stops with a ``DataError`` naming it.  Details:
docs/how-to/online-ab.md ("Reading a large log").

>>> import tempfile, pathlib, pandas as pd
>>> from evalkit.online.online_settings import OnlineSettings
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> pd.DataFrame({"request_id": [1, 1, 2, 2], "ab_group": ["control"] * 2 + ["treatment"] * 2,
...               "position": [1, 2, 1, 2], "clicked": [0, 1, 1, 0],
...               "similarity_score": [0.9, 0.8, 0.7, 0.6]}).to_parquet(d / "log.parquet")
>>> agg = aggregate_log(OnlineSettings(path=str(d / "log.parquet")))
>>> agg.unit, agg.rows, agg.control.units.first_click_rr.tolist(), sorted(agg.missing)[:2]
('request_id', 4, [0.5], ['latency', 'query'])
>>> import shutil; shutil.rmtree(d)
"""

from __future__ import annotations

import glob as globmod
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import DataError
from evalkit.online.gateway_log import (
    DEFAULT_COLUMNS,
    GRID_CELLS,
    MISSING_LEVEL,
    REQUIRED,
    ArmAggregate,
    DailySums,
    OnlineAggregate,
    PositionCounts,
    RequestSums,
    ScoreBins,
    UnitSums,
    by_level,
    frequency_band,
)
from evalkit.online.online_settings import OnlineSettings

EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
}
WHY_MISSING = {
    "version": "no model_version column: the versions come from models=[A,B]",
    "query": "no query column: query length and frequency slices are off",
    "position": "no position column: every row is read as position 1 (one row per request)",
    "score": "no similarity score column: score bins, the score-click AUC and cut-offs are off",
    "latency": "no latency column: the latency gate is not measured",
    "user": "no user column: the randomization unit is the request",
    "timestamp": "no timestamp column: daily CTR is off",
}


def _ext_format(name: str) -> str | None:
    name = name.lower()
    for suffix in (".gz", ".zst", ".bz2"):
        name = name.removesuffix(suffix)
    return EXTENSIONS.get(os.path.splitext(name)[1])


def _resolve(settings: OnlineSettings) -> tuple[list[str], str, Any]:
    """The log's files (sorted), their format, and an fsspec filesystem (None: local)."""
    path = settings.path
    fs = None
    if "://" in path and not path.startswith("file://"):
        import fsspec

        fs, root = fsspec.core.url_to_fs(path)
        proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if any(ch in root for ch in "*?["):
            found = fs.glob(root)
        elif fs.isdir(root):
            found = fs.find(root)
        else:
            found = [root] if fs.exists(root) else []
        found = [f"{proto}://{f.removeprefix(proto + '://')}" for f in found]
    else:
        local = path.removeprefix("file://")
        if any(ch in local for ch in "*?["):
            found = globmod.glob(local, recursive=True)
        elif os.path.isdir(local):
            found = [str(p) for p in Path(local).rglob("*") if p.is_file()]
        else:
            found = [local] if os.path.isfile(local) else []
    found = sorted(
        f
        for f in found
        if not os.path.basename(f).startswith(("_", "."))
        and (settings.format or _ext_format(f)) is not None
    )
    if not found:
        raise DataError(
            "no log file found",
            file=path,
            expected="a Parquet / JSON lines / CSV / TSV file, a folder of parts, a glob or a URL "
            "(or set online.format when the extension says nothing)",
        )
    fmt = settings.format or _ext_format(found[0])
    if not settings.format:
        odd = [f for f in found if _ext_format(f) != _ext_format(found[0])]
        if odd:
            raise DataError(
                f"this part is not {fmt} like {found[0]}",
                file=odd[0],
                expected="every part of the log in one format (move the odd part out)",
            )
    return found, fmt, fs


def _reader(files: list[str], fmt: str, *, row_numbers: bool = False) -> str:
    lst = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    if fmt == "parquet":
        extra = ", file_row_number=true" if row_numbers else ""
        return f"read_parquet({lst}{extra})"
    if fmt == "json":
        return f"read_json({lst}, format='newline_delimited', union_by_name=true)"
    delim = "\\t" if fmt == "tsv" else ","
    return f"read_csv({lst}, header=true, delim=E'{delim}', union_by_name=true)"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(float(value))


@dataclass
class _Log:
    """The resolved log: log column -> DuckDB type, contract key -> log column (present ones)."""

    con: Any
    files: list[str]
    fmt: str
    types: dict[str, str]
    cols: dict[str, str]
    unit: str = "request"
    slices: tuple[str, ...] = ()

    def source(self, files: list[str] | None = None, *, row_numbers: bool = False) -> str:
        return _reader(files or self.files, self.fmt, row_numbers=row_numbers)


def _connect(fs: Any, tmp: str) -> Any:
    import duckdb

    con = duckdb.connect(
        config={
            "threads": _threads(),
            "memory_limit": os.environ.get("EVALKIT_ONLINE_MEMORY", "900MB"),
            "temp_directory": tmp,
            "preserve_insertion_order": False,
        }
    )
    con.execute("SET TimeZone = 'UTC'").fetchall()
    if fs is not None:
        con.register_filesystem(fs)
    return con


def _schemas(con: Any, files: list[str], fmt: str) -> None:
    """Every part must have the first part's columns (and, for Parquet, types)."""
    first: dict[str, str] | None = None
    for f in files:
        try:
            rows = con.execute(f"DESCRIBE SELECT * FROM {_reader([f], fmt)}").fetchall()
        except Exception as exc:  # duckdb.Error: unreadable part
            raise DataError(
                f"cannot read this part: {str(exc).splitlines()[0]}",
                file=f,
                expected=f"a readable {fmt} file",
            ) from None
        schema = {r[0]: r[1] for r in rows}
        if first is None:
            first = schema
            continue
        this, that = (set(x.items()) if fmt == "parquet" else set(x) for x in (schema, first))
        if this != that:
            raise DataError(
                f"this part's schema differs from {files[0]}'s (differences: "
                f"{', '.join(map(str, sorted(this ^ that)))})",
                file=f,
                expected="the same columns and types in every part (rewrite the odd part)",
            )


def _expressions(log: _Log) -> dict[str, str]:
    """Named SQL expressions over one raw row (the ``base`` select)."""
    c, t = log.cols, log.types
    ex = {"r": _q(c["request"]), "a": f"coalesce(CAST({_q(c['arm'])} AS VARCHAR), '(null)')"}
    ck, ct = _q(c["clicked"]), t[c["clicked"]].upper()
    if ct == "BOOLEAN":
        ex["c"] = f"CAST({ck} AS INTEGER)"
    elif ct == "VARCHAR":
        ex["c"] = (
            f"CASE lower(trim({ck})) WHEN '1' THEN 1 WHEN 'true' THEN 1 WHEN '0' THEN 0 "
            "WHEN 'false' THEN 0 END"
        )
    else:
        ex["c"] = f"CASE WHEN {ck} = 1 THEN 1 WHEN {ck} = 0 THEN 0 END"
    ex["p"] = f"TRY_CAST({_q(c['position'])} AS BIGINT)" if "position" in c else "1"
    if "score" in c:
        ex["s"] = f"TRY_CAST({_q(c['score'])} AS DOUBLE)"
    if "latency" in c:
        ex["l"] = f"TRY_CAST({_q(c['latency'])} AS DOUBLE)"
        ex["l_raw"] = _q(c["latency"])
    if "timestamp" in c:
        tk, tt = _q(c["timestamp"]), t[c["timestamp"]].upper()
        if tt.startswith(("TIMESTAMP", "DATE")):
            ex["t"] = f"epoch(CAST({tk} AS TIMESTAMPTZ))"
        elif tt == "VARCHAR":
            ex["t"] = f"epoch(TRY_CAST({tk} AS TIMESTAMPTZ))"
        else:
            ex["t"] = f"TRY_CAST({tk} AS DOUBLE)"
    if "query" in c:
        ex["q"] = f"coalesce(CAST({_q(c['query'])} AS VARCHAR), '')"
    if log.unit != "request":
        ex["u"] = _q(c[log.unit])
    if "version" in c:
        ex["v"] = f"coalesce(CAST({_q(c['version'])} AS VARCHAR), '(null)')"
    for i, name in enumerate(log.slices):
        ex[f"x{i}"] = f"coalesce(CAST({_q(name)} AS VARCHAR), '{MISSING_LEVEL}')"
    return ex


#: The SQL condition of a row whose value of an expression key is invalid.
BAD = {
    "c": "c IS NULL",
    "l": "(l_raw IS NOT NULL AND (l IS NULL OR NOT isfinite(l) OR l < 0))",
    "p": "(p IS NULL OR p < 1)",
    "t": "t IS NULL OR NOT isfinite(t)",
}


def _locate(
    log: _Log, ex: dict[str, str], cond: str, show: str, params=(), nth: int = 1
) -> tuple[str, int | None, Any]:
    """The file, 1-based row and ``show`` value of the ``nth`` row matching ``cond`` (file order)."""
    log.con.execute("SET threads = 1").fetchall()
    select = ", ".join(f"{v} AS {k}" for k, v in ex.items()) + f", {show} AS shown"
    seen = 0
    for f in log.files:
        if log.fmt == "parquet":
            src = log.source([f], row_numbers=True)
            inner = f"SELECT file_row_number + 1 AS rn, {select} FROM {src}"
        else:
            inner = f"SELECT row_number() OVER () AS rn, {select} FROM {log.source([f])}"
        sql = f"SELECT rn, shown FROM ({inner}) WHERE {cond} ORDER BY rn LIMIT {nth - seen}"
        rows = log.con.execute(sql, list(params)).fetchall()
        if len(rows) + seen >= nth:
            rn, value = rows[nth - seen - 1]
            return f, int(rn), value
        seen += len(rows)
    return log.files[0], None, None


def aggregate_log_ray(
    settings: OnlineSettings, cutoffs: tuple[float, float] | None = None
) -> OnlineAggregate:
    """:func:`aggregate_log` with the parts reduced by Ray Data (``engine=ray``)."""
    return aggregate_log(settings, cutoffs, mapper=_ray_mapper)


def _ray_mapper(function, files: list[str], spec) -> list:
    import pickle

    import ray.data

    def one(row: dict) -> dict:
        return {"path": row["path"], "partial": pickle.dumps(function(row["path"], spec))}

    ds = ray.data.from_items([{"path": f} for f in files], override_num_blocks=len(files))
    found = {r["path"]: pickle.loads(r["partial"]) for r in ds.map(one).take_all()}
    return [found[f] for f in files]


def aggregate_log(
    settings: OnlineSettings, cutoffs: tuple[float, float] | None = None, *, mapper=None
) -> OnlineAggregate:
    """Reduce the gateway log at ``settings.path`` to per-arm, per-unit sums (see the module).

    ``cutoffs`` (default ``settings.cutoffs``): ``(control cut-off, treatment cut-off)``; each
    arm's ``clicks_above`` counts its clicked impressions scored at or above its own cut-off.
    ``mapper(function, files, spec)`` maps the part-by-part reduction over the parts (default: a
    thread per core).  Bad input: a one-line :class:`~evalkit.errors.DataError`.
    """
    import duckdb

    t0 = time.perf_counter()
    cutoffs = cutoffs if cutoffs is not None else settings.cutoffs
    files, fmt, fs = _resolve(settings)
    tmp = tempfile.mkdtemp(prefix="evalkit-online-")
    con = _connect(fs, tmp)
    try:
        _schemas(con, files, fmt)
        try:  # the types of all parts read together (CSV / JSON: inferred over every part)
            described = con.execute(f"DESCRIBE SELECT * FROM {_reader(files, fmt)}").fetchall()
        except duckdb.Error as exc:
            raise DataError(
                f"cannot read the log: {str(exc).splitlines()[0]}",
                file=settings.path,
                expected="parts that read as one table",
            ) from None
        log, missing = _columns(con, settings, files, fmt, {r[0]: r[1] for r in described})
        found = None
        if fmt == "parquet" and fs is None and os.environ.get("EVALKIT_ONLINE_PARTS", "1") != "0":
            found = _aggregate_parts(log, settings, cutoffs, mapper)
        return OnlineAggregate(
            **(found or _aggregate_global(log, settings, cutoffs)),
            unit=log.cols[log.unit],
            files=list(files),
            columns=dict(log.cols),
            missing=missing,
            seconds=time.perf_counter() - t0,
        )
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _columns(con, settings, files, fmt, types) -> tuple[_Log, dict[str, str]]:
    """The resolved log (every required column and the unit's, or a DataError) and why each
    missing optional column or slice matters."""
    cols = {k: settings.column(k) for k in DEFAULT_COLUMNS if settings.column(k) in types}
    for key in REQUIRED:
        if key not in cols:
            name = settings.column(key)
            raise DataError(
                f"no {key} column {name!r}; columns found: {', '.join(types)}",
                file=files[0],
                field=name,
                expected=f"the {key} column (rename it, or set online.columns.{key}=<its name>)",
            )
    missing = {k: WHY_MISSING[k] for k in DEFAULT_COLUMNS if k not in cols and k in WHY_MISSING}
    unit = settings.unit or ("user" if "user" in cols else "request")
    if unit not in cols:
        raise DataError(
            f"online.unit=user but there is no user column {settings.column('user')!r}; "
            f"columns found: {', '.join(types)}",
            file=files[0],
            expected="a user column, or online.unit=request",
        )
    for name in settings.slices:
        if name not in types:
            missing[f"slice:{name}"] = f"no column {name!r}: its slices are off"
    slices = tuple(name for name in settings.slices if name in types)
    return _Log(con, files, fmt, types, cols, unit, slices), missing


def _aggregate_global(log: _Log, settings, cutoffs) -> dict:
    """The global DuckDB path: the three scans, the checks, then the outputs from ``req``."""
    con = log.con
    ex = _expressions(log)
    arms_sql = f"({_lit(settings.control)}, {_lit(settings.treatment)})"
    hist = _run_scans(log, ex, settings, cutoffs, arms_sql)
    other = dict(
        con.execute(
            f"SELECT a, sum(imp)::BIGINT FROM req WHERE a NOT IN {arms_sql} GROUP BY a ORDER BY a"
        ).fetchall()
    )
    rows = int(con.execute("SELECT coalesce(sum(imp), 0) FROM req").fetchall()[0][0])
    res = _outputs(log, set(ex), hist, settings, cutoffs)
    control, treatment = _arm_aggregates(res, settings, cutoffs, "s" in ex)
    both, examples = 0, []
    if log.unit == "user":
        in_both = con.execute(
            "SELECT unit FROM rq GROUP BY unit HAVING min(arm) <> max(arm) ORDER BY unit"
        ).fetchnumpy()["unit"]
        both, examples = int(len(in_both)), [str(x) for x in np.asarray(in_both)[:5]]
    return {
        "control": control,
        "treatment": treatment,
        "rows": rows,
        "units_in_both": both,
        "units_in_both_examples": examples,
        "other_arms": other,
    }


def _run_scans(log: _Log, ex: dict[str, str], settings, cutoffs, arms_sql: str) -> dict:
    """Scans 1 to 3, the bad-input checks and the query bands; scan 2's grouping sets."""
    import duckdb

    base = _base(log, ex)
    has = set(ex)
    try:
        _scan_requests(log, ex, base, cutoffs, settings.control)
        _check_values(log, ex)
        _check_one_arm_per_request(log, ex)
        _check_positions_once(log, ex)
        _check_arms_present(log, settings)
        if "s" in has:
            _scan_auc(log, base, arms_sql)
        hist = _scan_impressions(log, base, has, arms_sql)
        if "q" in has:
            _query_bands(log, arms_sql)
    except duckdb.Error as exc:
        raise DataError(
            f"cannot read the log: {str(exc).splitlines()[0]}",
            file=settings.path,
            expected="a readable log (see the DuckDB message)",
        ) from None
    return hist


def _threads() -> int:
    return int(os.environ.get("EVALKIT_ONLINE_THREADS", 0)) or os.cpu_count() or 1


def _aggregate_parts(log: _Log, settings, cutoffs, mapper=None) -> dict | None:
    """The part-by-part path, as :func:`_aggregate_global`; None when it does not hold."""
    from concurrent.futures import ThreadPoolExecutor

    from evalkit.online import combine as C
    from evalkit.online import parts as P

    files = log.files
    planned = P.plan(files, log.cols, log.slices)
    if planned is None:
        return None
    spec = P.PartSpec(
        cols=dict(log.cols),
        unit=log.unit,
        slices=log.slices,
        control=settings.control,
        treatment=settings.treatment,
        cutoffs=None if cutoffs is None else (float(cutoffs[0]), float(cutoffs[1])),
        grid=planned[0],
        strings=planned[1],
    )
    if mapper is None:  # each part in flight holds ~100 bytes per row: at most 4 at a time
        with ThreadPoolExecutor(max_workers=min(_threads(), len(files), 4)) as pool:
            partials = list(pool.map(lambda f: P.reduce_part_released(f, spec), files))
    else:
        partials = mapper(P.reduce_part_released, files, spec)
    res = C.combine(partials, spec, threads=_threads())
    del partials
    if res is None:
        return None
    arms = _arm_aggregates(res, settings, cutoffs, "score" in log.cols)
    keys = ("rows", "units_in_both", "units_in_both_examples", "other_arms")
    return {"control": arms[0], "treatment": arms[1], **{key: res[key] for key in keys}}


def _clicks_above(cutoffs, k: int, clicks: float, has_score: bool) -> dict[float, float]:
    return {float(cutoffs[k]): float(clicks)} if has_score and cutoffs is not None else {}


def _scan_requests(log, ex, base, cutoffs, ctl) -> None:
    """Scan 1: the per-request table ``req``."""
    has = set(ex)
    aggs = [
        "min(a) AS a",
        "max(a) AS a2",
        "count(*) AS imp",
        "count(*) FILTER (c = 1) AS clicks",
        "min(p) FILTER (c = 1) AS first_p",
        "bit_count(bit_or(CASE WHEN p BETWEEN 1 AND 64 THEN (1::UBIGINT << (p - 1)::UBIGINT) END))"
        " AS n_pos",
        "count(*) FILTER (p > 64) AS big_p",
    ]
    if "u" in has:
        aggs.append("min(u) AS u")
    bad = [BAD["c"], BAD["p"]]  # one count of bad values: the state stays small
    if "l" in has:
        aggs.append("max(l) AS lat")
        bad.append(BAD["l"])
    if "t" in has:
        aggs.append("min(t) AS t")
        bad.append(BAD["t"])
    aggs.append(f"count(*) FILTER ({' OR '.join(f'({b})' for b in bad)}) AS bad")
    if "q" in has:
        aggs.append("min(q) AS q")
    aggs += [f"min(x{i}) AS x{i}" for i in range(len(log.slices))]
    if "s" in has:
        aggs += ["min(s) FILTER (isfinite(s)) AS smin", "max(s) FILTER (isfinite(s)) AS smax"]
    if "s" in has and cutoffs is not None:
        cut = f"CASE a WHEN {_lit(ctl)} THEN {_lit(cutoffs[0])} ELSE {_lit(cutoffs[1])} END"
        aggs.append(f"count(*) FILTER (c = 1 AND s >= {cut}) AS above")
    log.con.execute(
        f"CREATE TEMP TABLE req AS SELECT r, {', '.join(aggs)} FROM ({base}) GROUP BY r"
    ).fetchall()


def _count(log: _Log, cond: str) -> int:
    """Requests of the per-request table matching ``cond``."""
    return int(log.con.execute(f"SELECT count(*) FROM req WHERE {cond}").fetchall()[0][0])


def _check_values(log: _Log, ex) -> None:
    """The first row of the first kind of bad clicked, latency, position or timestamp value."""
    if not _count(log, "bad > 0"):
        return
    c = log.cols
    kinds = {  # the expression key is the name's first letter
        "clicked": ("clicked is {value!r}", "0 / 1 / true / false (fix or drop the row)"),
        "latency": ("latency is {value}", "a finite latency >= 0 in ms (fix or drop it)"),
        "position": ("position is {value}", "a 1-based position (the top result is 1)"),
        "timestamp": (
            "timestamp {value!r} cannot be parsed",
            "an ISO-8601 timestamp (UTC unless it has an offset) or Unix seconds",
        ),
    }
    for name, (message, expected) in kinds.items():
        if name[0] in ex and name in c:
            raw = c[name]
            f, row, value = _locate(log, ex, BAD[name[0]], f"CAST({_q(raw)} AS VARCHAR)")
            if row is not None:
                raise DataError(
                    message.format(value=value), file=f, row=row, field=raw, expected=expected
                )


def _check_one_arm_per_request(log: _Log, ex) -> None:
    """A request whose rows are under two arms: the first row off its first row's arm."""
    two = log.con.execute("SELECT r, a, a2 FROM req WHERE a <> a2 LIMIT 1").fetchall()
    if not two:
        return
    r, a1, a2 = two[0]
    _, _, first = _locate(log, ex, "r = ?", "a", (r,))  # the arm of its first row
    f, row, _ = _locate(log, ex, "r = ? AND a <> ?", "a", (r, first))
    raise DataError(
        f"request {r!r} is under two arms ({a1!r} and {a2!r}): this row is not under "
        f"its first row's arm {first!r}",
        file=f,
        row=row,
        field=log.cols["arm"],
        expected="each request under one arm (fix the gateway's assignment or drop it)",
    )


def _check_positions_once(log: _Log, ex) -> None:
    """A request with the same position twice: the second row of the smallest such position."""
    con, c = log.con, log.cols
    dup = con.execute("SELECT r FROM req WHERE n_pos + big_p < imp LIMIT 1").fetchall()
    if not dup and _count(log, "big_p > 0"):  # positions > 64: checked exactly
        dup = con.execute(
            f"SELECT r FROM ({_base(log, ex)}) WHERE r IN (SELECT r FROM req WHERE big_p > 0) "
            "GROUP BY r, p HAVING count(*) > 1 LIMIT 1"
        ).fetchall()
    if not dup:
        return
    r = dup[0][0]
    p = con.execute(
        f"SELECT p FROM ({_base(log, ex)}) WHERE r = ? GROUP BY p HAVING count(*) > 1 "
        "ORDER BY p LIMIT 1",
        [r],
    ).fetchall()[0][0]
    f, row, _ = _locate(log, ex, "r = ? AND p = ?", "p", (r, p), nth=2)
    what = "position" if "position" in c else "row (no position column: position 1)"
    raise DataError(
        f"request {r!r} has {what} {p} twice",
        file=f,
        row=row,
        field=c.get("position", c["request"]),
        expected="one row per (request, position): drop the duplicate"
        + ("" if "position" in c else ", or add the position column"),
    )


def _check_arms_present(log: _Log, settings: OnlineSettings) -> None:
    """Both configured arm values have rows; else the values found, with their rows."""
    c = log.cols
    found = log.con.execute(
        "SELECT a, sum(imp)::BIGINT AS n FROM req GROUP BY a ORDER BY n DESC, a"
    ).fetchall()
    counts = dict(found)
    listing = ", ".join(f"{a!r} ({n} rows)" for a, n in found)
    ctl, trt = settings.control, settings.treatment
    if ctl not in counts and trt not in counts:
        raise DataError(
            f"arm values {ctl!r} / {trt!r} not found in column {c['arm']!r}; found: {listing}",
            file=settings.path,
            field=c["arm"],
            expected="online.control / online.treatment set to two of the values found",
        )
    for name, key in ((ctl, "control"), (trt, "treatment")):
        if name not in counts:
            raise DataError(
                f"the {key} arm {name!r} is empty (no rows); found: {listing}",
                file=settings.path,
                field=c["arm"],
                expected=f"rows of both arms (or online.{key} set to one of the values found)",
            )


def _base(log: _Log, ex: dict[str, str]) -> str:
    return f"SELECT {', '.join(f'{v} AS {k}' for k, v in ex.items())} FROM {log.source()}"


def _scan_auc(log: _Log, base: str, arms_sql: str) -> None:
    """Scan 3: the Mann-Whitney U's rank sums of requests with a click and a non-click."""
    log.con.execute(
        "CREATE TEMP TABLE auc AS SELECT r, sum(rk) AS srk, sum(cd) AS scd FROM ("
        "SELECT r, c, rank() OVER w AS rk, cume_dist() OVER w AS cd FROM ("
        f"SELECT r, c, s FROM ({base}) WHERE r IN (SELECT r FROM req WHERE clicks > 0 "
        f"AND clicks < imp AND a IN {arms_sql})) WINDOW w AS (PARTITION BY r ORDER BY s)"
        ") WHERE c = 1 GROUP BY r"
    ).fetchall()


def _scan_impressions(log: _Log, base: str, has, arms_sql: str) -> dict:
    """Scan 2: per arm and position, model version and score-grid cell."""
    v = ", v" if "v" in has else ""
    s = cell = extra = scored = finite = ""
    if "s" in has:
        smin, smax = log.con.execute(
            f"SELECT min(smin), max(smax) FROM req WHERE a IN {arms_sql}"
        ).fetchall()[0]
        smin = 0.0 if smin is None else smin
        width = smax - smin if smax is not None and smax > smin else 1.0
        s, cell, scored = ", s", ", cell", ", sum(s) AS ss, min(s) AS lo, max(s) AS hi"
        extra = f", floor((s - {_lit(smin)}) * {_lit(GRID_CELLS / width)})::BIGINT AS cell"
        finite = " AND (s IS NULL OR isfinite(s))"
    sets = ", ".join(["(a, p)"] + [f"(a{x})" for x in (v, cell) if x])
    return log.con.execute(
        f"SELECT GROUPING(a, p{v}{cell}) AS g, a, p{v}, count(*) AS n, sum(c) AS k{scored} FROM "
        f"(SELECT a, p{v}{s}, c{extra} FROM ({base}) WHERE a IN {arms_sql}{finite}) "
        f"GROUP BY GROUPING SETS ({sets})"
    ).fetchnumpy()


def _query_bands(log: _Log, arms_sql: str) -> None:
    """The table ``qband``: each query's frequency band (its requests in both arms) and length."""
    con = log.con
    freq = con.execute(
        f"SELECT n, count(*) AS queries FROM (SELECT q, count(*) AS n FROM req "
        f"WHERE a IN {arms_sql} GROUP BY q) GROUP BY n ORDER BY n DESC"
    ).fetchnumpy()
    band = frequency_band(freq["n"], freq["queries"])
    import pandas as pd

    con.register("bands_df", pd.DataFrame({"n": freq["n"], "band": band}))
    con.execute("CREATE TEMP TABLE bands AS SELECT * FROM bands_df").fetchall()
    con.unregister("bands_df")
    con.execute(
        "CREATE TEMP TABLE qband AS SELECT q, band, CASE WHEN tokens <= 1 THEN '1' "
        "WHEN tokens <= 3 THEN '2-3' ELSE '4+' END AS lband FROM (SELECT q, count(*) AS n, "
        "len(regexp_split_to_array(trim(q), '\\s+')) AS tokens FROM req "
        f"WHERE a IN {arms_sql} GROUP BY q) JOIN bands USING (n)"
    ).fetchall()


def _request_table(log: _Log, has, settings: OnlineSettings) -> list[tuple[str, str]]:
    """The table ``rq`` (the two arms' requests: keys, sums); its slices (name, column)."""
    ctl, trt = settings.control, settings.treatment
    keys = [f"CASE req.a WHEN {_lit(ctl)} THEN 0 ELSE 1 END::TINYINT AS arm"]
    keys.append(("req.u" if "u" in has else "req.r") + " AS unit")
    if "t" in has:
        keys.append("floor(req.t / 86400)::BIGINT AS day")
    joins, dims = "", []
    if "s" in has:
        joins += " LEFT JOIN auc ON req.r = auc.r"
        auc = (
            "coalesce(round(2 * ((auc.srk + auc.scd * imp) / 2 - clicks * (clicks + 1) / 2)) / 2"
            ", 0)::DOUBLE AS auc_u, (CASE WHEN auc.r IS NOT NULL THEN clicks * (imp - clicks) "
            "ELSE 0 END)::DOUBLE AS auc_pairs"
        )
    else:
        auc = "0.0::DOUBLE AS auc_u, 0.0::DOUBLE AS auc_pairs"
    if "q" in has:
        joins += " LEFT JOIN qband ON req.q = qband.q"
        keys += ["qband.lband AS length", "qband.band AS frequency"]
        dims += [("length", "length"), ("frequency", "frequency")]
    for i, name in enumerate(log.slices):
        keys.append(f"req.x{i} AS x{i}")
        dims.append((name, f"x{i}"))
    sums = (
        "(clicks > 0)::DOUBLE AS clicked_requests, imp::DOUBLE AS impressions, "
        "clicks::DOUBLE AS clicks, (CASE WHEN clicks > 0 THEN 1.0 / first_p ELSE 0 END)::DOUBLE "
        "AS first_click_rr, " + auc
    )
    arms_sql = f"({_lit(ctl)}, {_lit(trt)})"
    log.con.execute(
        f"CREATE TEMP TABLE rq AS SELECT {', '.join(keys)}, {sums} FROM req{joins} "
        f"WHERE req.a IN {arms_sql}"
    ).fetchall()
    return dims


SUMS = (
    "count(*)::DOUBLE AS requests, sum(clicked_requests) AS clicked_requests, "
    "sum(impressions) AS impressions, sum(clicks) AS clicks, "
    "sum(first_click_rr) AS first_click_rr, sum(auc_u) AS auc_u, sum(auc_pairs) AS auc_pairs"
)


def _fetch(con: Any, sql: str) -> dict[str, np.ndarray]:
    """A query's columns as numpy arrays, streamed in Arrow batches (DuckDB never holds the whole
    result beside the arrays); numeric columns float64 or int64, others object."""
    rel = con.sql(sql)
    # duckdb 2 calls it to_arrow_reader, duckdb 1.x fetch_arrow_reader
    reader = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader
    reader = reader(1 << 20)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in reader.schema.names}
    for batch in reader:
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            parts[name].append(column.to_numpy(zero_copy_only=False))
    out = {}
    for name in list(parts):
        chunks = parts.pop(name)
        out[name] = np.concatenate(chunks) if chunks else np.zeros(0)
    return out


#: The request counts the daily and slice outputs keep (:class:`RequestSums`).
REQUEST_SUMS = "count(*)::DOUBLE AS requests, sum(clicked_requests) AS clicked_requests"


def _unit_sums(data: dict, sel=slice(None), kind: type = UnitSums):
    return kind(*(np.asarray(data[f][sel], dtype=np.float64) for f in kind.FIELDS))


def _by_arm(data: dict) -> list[slice]:
    """Rows of arm 0 and of arm 1 in a result ordered by ``arm`` first."""
    cut = int(np.searchsorted(np.asarray(data["arm"]), 1, side="left"))
    return [slice(0, cut), slice(cut, None)]


def _outputs(log: _Log, has, hist: dict, settings: OnlineSettings, cutoffs) -> dict:
    """Both arms' outputs from ``req`` (and ``auc``, ``qband``), one query per output."""
    con = log.con
    arm_names = [settings.control, settings.treatment]
    above = {}
    if "s" in has and cutoffs is not None:
        above = dict(
            con.execute("SELECT a, coalesce(sum(above), 0) FROM req GROUP BY a").fetchall()
        )
    latency = _latency_outputs(con, arm_names) if "l" in has else [None, None]
    dims = _request_table(log, has, settings)
    con.execute("DROP TABLE req").fetchall()
    con.execute("DROP TABLE IF EXISTS auc").fetchall()
    limit = os.environ.get("EVALKIT_ONLINE_OUTPUT_MEMORY", "384MB")
    con.execute(f"SET memory_limit = '{limit}'").fetchall()
    units, unit_ids = _unit_outputs(con)
    daily = _daily_outputs(con) if "t" in has else [None, None]
    hists = [_hist_outputs(log, has, hist, arm) for arm in arm_names]
    return {
        "units": units,
        "unit_ids": unit_ids,
        "latency": latency,
        "daily": daily,
        "slices": _slice_outputs(con, dims),
        "above": [above.get(arm, 0) for arm in arm_names],
        **{key: [h[key] for h in hists] for key in ("versions", "positions", "cells")},
    }


def _arm_aggregates(res: dict, settings, cutoffs, has_score: bool) -> list[ArmAggregate]:
    """Both arms' aggregates from either path's per-arm outputs (``res[key][arm]``)."""
    return [
        ArmAggregate(
            arm=name,
            versions=res["versions"][k],
            units=res["units"][k],
            unit_ids=res["unit_ids"][k],
            latency_ms=res["latency"][k],
            daily=res["daily"][k],
            positions=res["positions"][k],
            score_bins=None if cells is None else _score_bins(cells, settings.score_bins),
            clicks_above=_clicks_above(cutoffs, k, res["above"][k], has_score),
            slices=res["slices"][k],
        )
        for k, (name, cells) in enumerate(zip((settings.control, settings.treatment), res["cells"]))
    ]


def _latency_outputs(con: Any, arm_names: list[str]) -> list[np.ndarray]:
    """Each arm's request latencies from ``req`` (request order)."""
    lat = _fetch(
        con,
        f"SELECT CASE a WHEN {_lit(arm_names[0])} THEN 0 ELSE 1 END AS arm, lat FROM req "
        f"WHERE a IN ({_lit(arm_names[0])}, {_lit(arm_names[1])}) AND lat IS NOT NULL "
        "ORDER BY arm, r",
    )
    return [np.asarray(lat["lat"][sel], dtype=np.float64) for sel in _by_arm(lat)]


def _unit_outputs(con: Any) -> tuple[list[UnitSums], list[np.ndarray]]:
    """Each arm's per-unit sums from ``rq`` and its unit ids (unit order)."""
    data = _fetch(con, f"SELECT arm, unit, {SUMS} FROM rq GROUP BY arm, unit ORDER BY arm, unit")
    arms = _by_arm(data)
    return [_unit_sums(data, sel) for sel in arms], [np.asarray(data["unit"][sel]) for sel in arms]


def _daily_outputs(con: Any) -> list[DailySums | None]:
    """Each arm's per-(day, unit) request counts from ``rq``."""
    d = _fetch(
        con,
        f"SELECT arm, day, {REQUEST_SUMS} FROM rq GROUP BY arm, day, unit ORDER BY arm, day, unit",
    )
    return [
        DailySums(np.asarray(d["day"][sel], dtype=np.int64), _unit_sums(d, sel, RequestSums))
        for sel in _by_arm(d)
    ]


def _slice_outputs(con: Any, dims: list[tuple[str, str]]) -> list[dict]:
    """Each arm's per-unit request counts per slice level, one query per dimension."""
    slices: list[dict[tuple[str, str], RequestSums]] = [{}, {}]
    for dim, col in dims:
        levels = [r[0] for r in con.execute(f"SELECT DISTINCT {col} FROM rq ORDER BY 1").fetchall()]
        code = " ".join(f"WHEN {_lit(str(v))} THEN {i}" for i, v in enumerate(levels))
        res = _fetch(
            con,
            f"SELECT arm, CASE {col} {code} END AS level, {REQUEST_SUMS} FROM rq "
            f"GROUP BY arm, level, unit ORDER BY arm, level, unit",
        )
        level = np.asarray(res["level"])
        for k, sel in enumerate(_by_arm(res)):
            slices[k].update(by_level(dim, levels, level[sel], _unit_sums(res, sel, RequestSums)))
        del res
    return slices


def _hist_outputs(log: _Log, has, hist: dict, arm: str) -> dict:
    """One arm's versions, position counts and score-grid cells from scan 2's grouping sets."""
    g, a = np.asarray(hist["g"]), np.asarray(hist["a"], dtype=object)
    grouped = ["a", "p"] + (["v"] if "v" in has else []) + (["cell"] if "s" in has else [])
    nbits = len(grouped)

    def rows_of(keep: tuple[str, ...]) -> np.ndarray:  # GROUPING(): 1 bit = column not grouped
        mask = sum(1 << (nbits - 1 - i) for i, k in enumerate(grouped) if k not in keep)
        return (g == mask) & (a == arm)

    out: dict = {"versions": {}, "positions": None, "cells": None}
    if "position" in log.cols:
        sel = rows_of(("a", "p"))
        p = np.asarray(hist["p"])[sel].astype(np.int64)
        o = np.argsort(p)
        out["positions"] = PositionCounts(
            position=p[o],
            impressions=np.asarray(hist["n"])[sel][o].astype(np.float64),
            clicks=np.asarray(hist["k"])[sel][o].astype(np.float64),
        )
    if "v" in has:
        sel = rows_of(("a", "v"))
        out["versions"] = {
            str(v): int(n)
            for v, n in zip(np.asarray(hist["v"])[sel], np.asarray(hist["n"])[sel], strict=True)
        }
    if "s" in has:
        sel = rows_of(("a", "cell"))
        lo = np.asarray(hist["lo"])[sel].astype(np.float64)
        ok = ~np.isnan(lo)
        out["cells"] = {
            k: np.asarray(hist[k])[sel][ok].astype(np.float64) for k in ("n", "k", "ss", "lo", "hi")
        }
    return out


def _score_bins(cells: dict[str, np.ndarray], n_bins: int) -> ScoreBins | None:
    """Equal-count bins cut between the arm's score-grid cells; ``cells["hi"]`` holds the cells'
    largest scores, or only the arm's largest (the last edge)."""
    if cells["n"].size == 0:
        return None
    o = np.argsort(cells["lo"], kind="stable")
    n, k, ss, lo = (cells[x][o] for x in ("n", "k", "ss", "lo"))
    cum = np.cumsum(n)
    targets = cum[-1] * np.arange(1, max(n_bins, 1)) / max(n_bins, 1)
    ends = np.unique(np.searchsorted(cum, targets, side="left"))  # last cell of each bin
    ends = ends[ends < n.size - 1]
    starts = np.concatenate([[0], ends + 1])
    edges = np.concatenate([lo[starts], [cells["hi"].max()]])
    return ScoreBins(
        edges=edges,
        impressions=np.add.reduceat(n, starts),
        clicks=np.add.reduceat(k, starts),
        mean_score=np.add.reduceat(ss, starts) / np.add.reduceat(n, starts),
    )
