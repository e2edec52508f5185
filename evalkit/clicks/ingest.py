"""Read a click-log file (JSON lines, CSV/TSV or Parquet) through ``datasets`` into a ClickLog.

Shapes: ``event`` (one row per impression) or ``aggregated`` (one row per (query, item)).  A bad
row raises :class:`DataError` naming the file, the 1-based data row and the field (or, with
``on_invalid="skip"``, is counted in ``ClickLog.skipped``).  See docs/how-to/click-logs.md.

>>> import tempfile, os, json
>>> path = os.path.join(tempfile.mkdtemp(), "clicks.jsonl")
>>> rows = [{"query_id": "q1", "item_id": "d1", "position": 1, "clicked": 1},
...         {"query_id": "q1", "item_id": "d2", "position": 2, "clicked": 0},
...         {"query_id": "q9", "query": "red shoes", "item_id": "d1", "position": 1, "clicked": 0}]
>>> _ = open(path, "w").write("\\n".join(json.dumps(r) for r in rows))
>>> log, new = load_click_log(path, shape="event", catalog_ids=["d1", "d2"], query_ids=["q1"])
>>> log.pairs(), log.clicks.tolist(), log.impressions.tolist(), new
([('q1', 'd1'), ('q1', 'd2'), ('q9', 'd1')], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0], {'q9': 'red shoes'})
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from evalkit.config_schema import read_section, setting
from evalkit.data.click_log import ClickLog, PositionCounts
from evalkit.errors import ConfigError, DataError

log_ = logging.getLogger(__name__)

SHAPES = ("event", "aggregated")
_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class ClickColumns:
    """Column names in the log file (``clicks.columns``); ``None`` or a name the file lacks = none."""

    query_id: str | None = setting("query_id", help="query id (or match queries by text)")
    query: str | None = setting("query", help="query text: of queries missing from the table")
    item_id: str | None = setting("item_id", help="the shown item's id")
    position: str | None = setting("position", help="event: the rank where the item was shown")
    clicked: str | None = setting("clicked", help="event: 0/1 or true/false")
    clicks: str | None = setting("clicks", help="aggregated: click count")
    impressions: str | None = setting("impressions", help="aggregated: times shown")
    mean_position: str | None = setting("avg_position", help="aggregated: average rank shown at")
    session: str | None = setting("session_id", help="event, optional: the session")
    timestamp: str | None = setting("timestamp", help="event, optional: when")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str | None] | ClickColumns | None) -> ClickColumns:
        if isinstance(mapping, ClickColumns):
            return mapping
        return read_section(cls, mapping, "clicks.columns")


@dataclass
class _Table:
    """The concatenated log with a map from global row number to (file, 1-based row)."""

    table: pa.Table
    files: list[str]
    offsets: np.ndarray  # start row of each file, plus the total at the end

    def where(self, row: int) -> tuple[str, int]:
        """The file and 1-based data row of global row ``row``."""
        i = int(np.searchsorted(self.offsets, row, side="right") - 1)
        return self.files[i], int(row - self.offsets[i] + 1)

    def has(self, name: str | None) -> bool:
        return name is not None and name in self.table.column_names


class _RowCheck(NamedTuple):
    """One vectorised validation: the rows where ``mask`` is true fail it."""

    reason: str  # the ``ClickLog.skipped`` key
    field: str
    mask: np.ndarray
    message: str
    expected: str


@dataclass(frozen=True)
class _LogColumns:
    qid: pa.Array | None  # None: the log identifies queries by text
    qtext: pa.Array | None
    items: pa.Array
    clicks: np.ndarray  # 0/1 per event, or a click count per aggregated row
    impressions: np.ndarray | None  # aggregated logs with an impressions column
    position: np.ndarray | None  # 1-based position, or an aggregated row's average position


def load_click_log(
    path: str | Path | Sequence[str | Path],
    *,
    shape: str = "event",
    columns: Mapping[str, str | None] | ClickColumns | None = None,
    catalog_ids: Sequence[str] | None = None,
    query_ids: Sequence[str] = (),
    query_texts: Sequence[str] | None = None,
    format: str | None = None,
    on_invalid: str = "error",
    source: str | None = None,
    position_base: int = 1,
) -> tuple[ClickLog, dict[str, str]]:
    """Load, validate and aggregate a click log; return ``(ClickLog, new_queries)``.

    ``catalog_ids`` ``None`` skips the unknown-item check; ``query_texts`` are needed only for
    logs that identify queries by text; ``position_base`` 0: the log's top result is position 0.
    """
    if position_base not in (0, 1):
        raise ConfigError(f"clicks.position_base={position_base!r} (expected 1, or 0 for a log "
                          "whose top result is position 0)")  # fmt: skip
    if shape not in SHAPES:
        raise ConfigError(f"clicks.shape={shape!r} is unknown (expected one of {SHAPES})")
    if on_invalid not in ("error", "skip"):
        raise ConfigError(f"clicks.on_invalid={on_invalid!r} is unknown (expected error or skip)")
    cols = ClickColumns.from_mapping(columns)
    paths = [Path(p) for p in ([path] if isinstance(path, (str, Path)) else path)]
    if not paths:
        raise ConfigError("clicks.path is empty (expected a click-log file)")
    tab = _read(paths, format)
    _require_columns(tab, cols, shape)
    read = _read_columns(tab, cols, shape, position_base)
    table_ids = [str(q) for q in query_ids]
    in_table = None if read.qid is None else _isin(read.qid, table_ids)
    checks = _row_checks(cols, read, shape, position_base, catalog_ids, in_table)
    keep, skipped = _kept_rows(tab, checks, on_invalid)
    if read.qid is None:
        q_final, new_queries = _queries_by_text(read.qtext, keep, table_ids, query_texts)
    else:
        q_final, new_queries = _queries_by_id(read.qid, read.qtext, keep, in_table)
    source = source or ",".join(tab.files)
    click_log = _aggregate(q_final, read, keep, tab, shape=shape, source=source, skipped=skipped)
    return click_log, new_queries


def _require_columns(tab: _Table, cols: ClickColumns, shape: str) -> None:
    present = set(tab.table.column_names)
    first_file = tab.files[0]
    if not (tab.has(cols.query_id) or tab.has(cols.query)):
        raise _missing(first_file, cols.query_id or cols.query or "query_id", "query_id", present)
    needed = {"item_id": cols.item_id}
    if shape == "event":
        needed.update(position=cols.position, clicked=cols.clicked)
    else:
        needed["clicks"] = cols.clicks
    for key, name in needed.items():
        if name not in present:
            raise _missing(first_file, name, key, present)
    if shape == "aggregated" and not (tab.has(cols.impressions) or tab.has(cols.mean_position)):
        raise DataError(
            f"aggregated click log has neither an impressions column "
            f"({cols.impressions!r}) nor an average-position column ({cols.mean_position!r}); "
            f"columns present: {sorted(present)}",
            file=first_file,
            field=cols.impressions or "impressions",
            expected="impressions and/or average position per (query, item); set "
            "clicks.columns.impressions / clicks.columns.mean_position",
        )


def _read_columns(tab: _Table, cols: ClickColumns, shape: str, position_base: int) -> _LogColumns:
    """The columns the shape uses, as arrow strings and float64 numbers (positions 1-based)."""
    table = tab.table
    qid = _strings(table, cols.query_id) if tab.has(cols.query_id) else None
    qtext = _strings(table, cols.query) if tab.has(cols.query) else None
    items = _strings(table, cols.item_id)
    if shape == "event":
        position = _numbers(table, cols.position) + (1 - position_base)
        return _LogColumns(qid, qtext, items, _numbers(table, cols.clicked), None, position)
    impressions = _numbers(table, cols.impressions) if tab.has(cols.impressions) else None
    position = _numbers(table, cols.mean_position) if tab.has(cols.mean_position) else None
    return _LogColumns(qid, qtext, items, _numbers(table, cols.clicks), impressions, position)


def _row_checks(
    cols: ClickColumns,
    read: _LogColumns,
    shape: str,
    position_base: int,
    catalog_ids: Sequence[str] | None,
    in_table: np.ndarray | None,
) -> list[_RowCheck]:
    """Every row check, in the order a row failing several is reported and counted."""
    by_text = read.qid is None
    what, expected = ("text", "the query's text") if by_text else ("id", "a query id")
    key_col, key = (cols.query, read.qtext) if by_text else (cols.query_id, read.qid)
    checks = [
        _RowCheck("missing_query", key_col, _empty(key), f"query {what} is empty", expected),
        _RowCheck(
            "missing_item", cols.item_id, _empty(read.items), "item id is empty", "an item id"
        ),
    ]
    if shape == "event":
        checks += _event_checks(cols, read.position, read.clicks, position_base)
    else:
        checks += _aggregated_checks(cols, read)
    if catalog_ids is not None:
        unknown = ~_empty(read.items) & ~_isin(read.items, catalog_ids)
        msg = "item id is not in the catalog"
        checks.append(_RowCheck("unknown_item", cols.item_id, unknown, msg, "a catalog item id"))
    if in_table is not None:
        checks.append(_query_without_text_check(cols, read, in_table))
    return checks


def _event_checks(
    cols: ClickColumns, position: np.ndarray, clicks: np.ndarray, position_base: int
) -> list[_RowCheck]:
    """An event's position must be a whole number >= 1 and its ``clicked`` 0 or 1."""
    bad_pos = ~np.isnan(position) & ((position < 1) | (position != np.floor(position)))
    bad_click = ~np.isnan(clicks) & (clicks != 0) & (clicks != 1)
    if position_base == 1 and np.any(position == 0):
        pos_msg = "positions look 0-based (a position 0): add 1, or set clicks.position_base=0"
    else:
        pos_msg = "position must be a whole number >= 1"
    pos_ok, click_ok = "an integer position >= 1 (1 = top)", "0 or 1 (or true/false)"
    return [
        _nan_check(cols.position, position, pos_ok),
        _nan_check(cols.clicked, clicks, click_ok),
        _RowCheck("bad_position", cols.position, bad_pos, pos_msg, pos_ok),
        _RowCheck("bad_clicked", cols.clicked, bad_click, "clicked is not 0/1", click_ok),
    ]


def _aggregated_checks(cols: ClickColumns, read: _LogColumns) -> list[_RowCheck]:
    clicks, impressions, position = read.clicks, read.impressions, read.position
    checks = _count_checks(cols.clicks, clicks, "a click count >= 0")
    if impressions is not None:
        checks += _count_checks(cols.impressions, impressions, "an impression count >= 0")
        exceed = clicks > impressions  # NaN compares False
        msg, expected = "clicks exceed impressions", f"clicks <= {cols.impressions}"
        checks.append(_RowCheck("clicks_gt_impressions", cols.clicks, exceed, msg, expected))
    if position is not None:
        name, msg = cols.mean_position, "average position is below 1"
        checks += [
            _nan_check(name, position, "an average position >= 1"),
            _RowCheck(
                "bad_position", name, position < 1, msg, "an average position >= 1 (1 = top)"
            ),
        ]
    return checks


def _query_without_text_check(
    cols: ClickColumns, read: _LogColumns, in_table: np.ndarray
) -> _RowCheck:
    """Rows of a query id new to the query table whose rows never give its text."""
    qid, qtext = read.qid, read.qtext
    n = len(qid)
    text_ok = ~_empty(qtext) if qtext is not None else np.zeros(n, dtype=bool)
    candidates = np.flatnonzero(~in_table & ~_empty(qid))
    cand_ids = _take(qid, candidates).to_numpy(zero_copy_only=False)
    has_text = pd.Series(text_ok[candidates]).groupby(cand_ids).transform("any")
    no_text = np.zeros(n, dtype=bool)
    no_text[candidates] = ~has_text.to_numpy(dtype=bool)
    return _RowCheck(
        "query_without_text",
        cols.query or "query",
        no_text,
        "query id is not in the query table and the log gives no text for it",
        f"a query-table id, or the query text in column {cols.query!r}",
    )


def _kept_rows(
    tab: _Table, checks: Sequence[_RowCheck], on_invalid: str
) -> tuple[np.ndarray, dict[str, int]]:
    """The rows to keep and the skipped rows per reason, each row counted under the first check
    it fails (``error``: raise for the earliest bad row)."""
    bad = np.logical_or.reduce([c.mask for c in checks])
    if not bad.any():
        return np.ones(tab.table.num_rows, dtype=bool), {}
    if on_invalid != "skip":
        first = int(np.argmax(bad))
        c = next(c for c in checks if c.mask[first])
        file, row = tab.where(first)
        count = int(c.mask.sum())
        more = f"; {count} rows fail this check" if count > 1 else ""
        raise DataError(
            f"{c.message}{more}", file=file, row=row, field=c.field, expected=c.expected
        )
    counted = np.zeros(len(bad), dtype=bool)
    skipped: dict[str, int] = {}
    for c in checks:
        new = c.mask & ~counted
        if new.any():
            skipped[c.reason] = skipped.get(c.reason, 0) + int(new.sum())
            counted |= new
    log_.warning("click log %s: skipped %d bad rows %s", tab.files, int(bad.sum()), skipped)
    return ~bad, skipped


def _queries_by_text(
    qtext: pa.Array | None,
    keep: np.ndarray,
    table_ids: Sequence[str],
    query_texts: Sequence[str] | None,
) -> tuple[pa.Array, dict[str, str]]:
    """Each kept row's query id, matched by exact text, and the new queries ``{id: text}`` (ids
    ``log-<sha1 prefix>``)."""
    texts = _take(qtext, np.flatnonzero(keep))
    lookup: dict[str, str] = {}
    if query_texts is not None:
        for i, t in zip(table_ids, query_texts):
            lookup.setdefault(str(t).strip(), i)
    distinct = pc.unique(texts)
    new_queries: dict[str, str] = {}
    mapped = []
    for t in distinct.to_pylist():
        if t not in lookup:
            new_id = "log-" + hashlib.sha1(t.encode("utf-8")).hexdigest()[:12]
            lookup[t] = new_id
            new_queries[new_id] = t
        mapped.append(lookup[t])
    return pa.array(mapped, pa.string()).take(pc.index_in(texts, value_set=distinct)), new_queries


def _queries_by_id(
    qid: pa.Array, qtext: pa.Array | None, keep: np.ndarray, in_table: np.ndarray | None
) -> tuple[pa.Array, dict[str, str]]:
    q_final = _take(qid, np.flatnonzero(keep))
    if qtext is None:
        return q_final, {}
    new_rows = np.flatnonzero(keep & ~in_table & ~_empty(qtext))
    firsts = (
        pd.Series(_take(qtext, new_rows).to_numpy(zero_copy_only=False))
        .groupby(_take(qid, new_rows).to_numpy(zero_copy_only=False), sort=True)
        .first()
    )
    return q_final, {str(k): str(v) for k, v in firsts.items()}


def _read(paths: list[Path], format: str | None) -> _Table:
    from datasets import load_dataset  # heavy import, only when a log is read

    tables = []
    for p in paths:
        if not p.is_file():
            raise DataError("click-log file not found", file=str(p), expected="an existing file")
        fmt = (format or _FORMATS.get(p.suffix.lower(), "")).lower()
        kwargs = {}
        if fmt == "tsv" or (fmt == "csv" and p.suffix.lower() == ".tsv"):
            fmt, kwargs = "csv", {"sep": "\t"}
        if fmt not in ("json", "csv", "parquet"):
            raise ConfigError(
                f"cannot tell the format of click log {p} (set clicks.format to json, csv, tsv "
                "or parquet)"
            )
        try:
            ds = load_dataset(fmt, data_files=[str(p)], split="train", **kwargs)
        except Exception as exc:  # datasets raises many types for unreadable files
            raise DataError(
                f"cannot read click log as {fmt}: {exc}", file=str(p), expected=f"a {fmt} file"
            ) from exc
        tables.append(ds.data.table)
    table = (
        tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    )
    offsets = np.concatenate([[0], np.cumsum([t.num_rows for t in tables])]).astype(np.int64)
    return _Table(table, [str(p) for p in paths], offsets)


def _missing(file: str, name: str, key: str, present: set[str]) -> DataError:
    return DataError(
        f"column {name!r} is missing (columns present: {sorted(present)})",
        file=file,
        field=name,
        expected=f"a column {name!r}, or set clicks.columns.{key} to the log's column name",
    )


def _strings(table: pa.Table, name: str) -> pa.Array:
    """A column as a whitespace-trimmed arrow string array (nulls kept)."""
    col = table.column(name)
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    return pc.utf8_trim_whitespace(col).combine_chunks()


def _take(values: pa.Array, rows: np.ndarray) -> pa.Array:
    return values.take(pa.array(rows, type=pa.int64()))


def _isin(values: pa.Array, allowed: Sequence[str]) -> np.ndarray:
    """Hash-set membership in arrow (nulls are not members)."""
    member = pc.is_in(values, value_set=pa.array([str(a) for a in allowed], pa.string()))
    return np.asarray(member.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _numbers(table: pa.Table, name: str) -> np.ndarray:
    """A column as float64; nulls and non-numbers become NaN (booleans become 0/1)."""
    col = table.column(name)
    t = col.type
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
        return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    values = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    lowered = values.astype("string").str.strip().str.lower()
    lowered = lowered.replace({"true": "1", "false": "0"})
    return pd.to_numeric(lowered, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _empty(values: pa.Array | None) -> np.ndarray:
    """Null or empty strings (a missing column: no rows)."""
    if values is None:
        return np.zeros(0, dtype=bool)
    blank = pc.equal(values, "").fill_null(True)
    return np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)


def _nan_check(name: str, values: np.ndarray, expected: str) -> _RowCheck:
    return _RowCheck(
        "missing_value", name, np.isnan(values), "value is missing or not a number", expected
    )


def _count_checks(name: str, values: np.ndarray, expected: str) -> list[_RowCheck]:
    negative = _RowCheck("negative_count", name, values < 0, "count is negative", expected)
    return [_nan_check(name, values, expected), negative]


def _aggregate(
    query_ids: pa.Array,
    read: _LogColumns,
    keep: np.ndarray,
    tab: _Table,
    *,
    shape: str,
    source: str,
    skipped: dict[str, int],
) -> ClickLog:
    """Sum the kept rows into (query, item) pairs sorted by query id then item id (``tab``: to
    name the files whose aggregated rows repeat a pair)."""
    kept = np.flatnonzero(keep)
    item_ids, clicks = _take(read.items, kept), read.clicks[keep]
    impressions = None if read.impressions is None else read.impressions[keep]
    position = None if read.position is None else read.position[keep]
    qcode, quniq = _sorted_codes(query_ids)
    icode, iuniq = _sorted_codes(item_ids)
    ukey, inv = np.unique(qcode * max(len(iuniq), 1) + icode, return_inverse=True)
    inv = inv.reshape(-1)
    n_pairs = len(ukey)
    q_of_pair, i_of_pair = np.divmod(ukey, max(len(iuniq), 1))
    pair_clicks = np.bincount(inv, weights=clicks, minlength=n_pairs)
    positions = None
    duplicates = 0
    if shape == "event":
        pair_imps = np.bincount(inv, minlength=n_pairs).astype(float)
        mean_pos = np.bincount(inv, weights=position, minlength=n_pairs) / np.maximum(pair_imps, 1)
        positions = _position_counts(inv, position.astype(np.int64), clicks)
    else:
        what = "their clicks" + ("/impressions" if impressions is not None else "") + " were summed"
        if position is not None:
            what += " and average positions averaged"
        file_of = np.searchsorted(tab.offsets, kept, side="right") - 1
        duplicates = _count_duplicates(inv, n_pairs, (tab, file_of), what)
        pair_imps, mean_pos = _summed_rows(inv, n_pairs, impressions, position)
    return ClickLog(
        query_ids=quniq.take(pa.array(q_of_pair)).to_pylist(),
        item_ids=iuniq.take(pa.array(i_of_pair)).to_pylist(),
        clicks=pair_clicks.astype(float),
        impressions=pair_imps,
        mean_position=mean_pos,
        positions=positions,
        source=source,
        skipped=skipped,
        duplicate_pairs=duplicates,
    )


def _summed_rows(
    pair: np.ndarray, n_pairs: int, impressions: np.ndarray | None, position: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Impressions summed and average positions averaged per pair, weighted by impressions (by
    rows where a pair has none, or without them)."""
    pair_imps = None
    if impressions is not None:
        pair_imps = np.bincount(pair, weights=impressions, minlength=n_pairs)
    if position is None:
        return pair_imps, None
    w = impressions if impressions is not None else np.ones(len(position))
    wsum = np.bincount(pair, weights=w, minlength=n_pairs)
    psum = np.bincount(pair, weights=w * position, minlength=n_pairs)
    rows = np.bincount(pair, weights=position, minlength=n_pairs)
    counts = np.bincount(pair, minlength=n_pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pair_imps, np.where(wsum > 0, psum / wsum, rows / np.maximum(counts, 1))


def _count_duplicates(
    pair: np.ndarray, n_pairs: int, origin: tuple[_Table, np.ndarray], what: str
) -> int:
    """Pairs on more than one row of the same file (warned per file, naming it); pairs spread
    over several files are counted at INFO.  Returns the distinct pairs repeated within a file."""
    repeated = int((np.bincount(pair, minlength=n_pairs) > 1).sum())
    if not repeated:
        return 0
    tab, file_of = origin
    n_files = len(tab.files)
    if n_files == 1:
        per_file, across = np.array([repeated]), 0
    else:
        code, counts = np.unique(pair * n_files + file_of, return_counts=True)
        twice = code[counts > 1]
        per_file = np.bincount(twice % n_files, minlength=n_files)
        across = int((np.bincount(code // n_files, minlength=n_pairs) > 1).sum())
        repeated = len(np.unique(twice // n_files))
    file_rows = np.diff(tab.offsets)
    for f in np.flatnonzero(per_file):
        log_.warning(
            "%s: %s (query, item) pairs appear on more than one row (%s rows); %s "
            "(expected one row per (query, item) in an aggregated log)",
            tab.files[f],
            f"{int(per_file[f]):,}",
            f"{int(file_rows[f]):,}",
            what,
        )
    if across:
        log_.info(
            "click log %s: %s (query, item) pairs appear in more than one file; %s",
            ", ".join(tab.files),
            f"{across:,}",
            what,
        )
    return repeated


def _sorted_codes(values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Distinct values in ``str`` order (UTF-8 byte order) and each row's int64 code."""
    uniq = pc.unique(values)
    uniq = uniq.take(pc.sort_indices(uniq))
    codes = pc.index_in(values, value_set=uniq).to_numpy(zero_copy_only=False)
    return np.asarray(codes, dtype=np.int64), uniq


def _position_counts(pair: np.ndarray, position: np.ndarray, clicked: np.ndarray) -> PositionCounts:
    order = np.lexsort((position, pair))
    p, r, c = pair[order], position[order], clicked[order]
    if len(p) == 0:
        empty = np.zeros(0)
        return PositionCounts(empty.astype(np.int64), empty.astype(np.int64), empty, empty)
    starts = np.flatnonzero(np.r_[True, (p[1:] != p[:-1]) | (r[1:] != r[:-1])])
    imps = np.diff(np.r_[starts, len(p)]).astype(float)
    return PositionCounts(
        pair=p[starts].astype(np.int64),
        position=r[starts].astype(np.int64),
        impressions=imps,
        clicks=np.add.reduceat(c, starts).astype(float),
    )
