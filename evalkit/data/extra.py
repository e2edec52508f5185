"""Extra judgments (``dataset.extra_judgments=<file>``): grades a team added, merged into any dataset.

:func:`merge_extra_judgments` reads a filled-in ``judging_worklist.csv`` or any qrels-like CSV /
TSV / JSONL / Parquet table (``query_id``, ``item_id``, ``grade``, or BEIR's names).  Blank
grades are skipped; a grade contradicting the dataset or another row of the file is a
:class:`~evalkit.errors.DataError` naming file and row; the merged judgments get a new
fingerprint.  It runs after any loader and after the click stage, in
:func:`evalkit.run.evaluation.run_evaluation`.  Rules: docs/how-to/judgments.md.

>>> import tempfile, pathlib
>>> from evalkit.data.schema import Catalog, Queries, Judgments, EvalData
>>> from evalkit.data.digest import fingerprint_data
>>> cat, qs, j = Catalog(["d1", "d2"], ["red shoe", "blue hat"]), Queries(["q1"], ["hat"]), Judgments({"q1": {"d1": 0}})
>>> data = EvalData("toy", cat, qs, j, fingerprint=fingerprint_data(cat, qs, j))
>>> path = pathlib.Path(tempfile.mkdtemp()) / "judging_worklist.csv"
>>> _ = path.write_text("query_id,item_id,grade\\nq1,d2,2\\nq1,d1,\\n", encoding="utf-8")
>>> merged = merge_extra_judgments(data, path)
>>> merged.judgments.qrels, merged.extra_judgments.added, merged.extra_judgments.blank
({'q1': {'d1': 0, 'd2': 2}}, 1, 1)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from evalkit.data import validate as v
from evalkit.data.digest import fingerprint_data
from evalkit.data.readers import _OPENERS, _csv_header, infer_format, read_file
from evalkit.data.schema import EvalData, ExtraJudgments, Judgments
from evalkit.errors import DataError

log = logging.getLogger(__name__)

#: The config key (``dataset.extra_judgments``), set for every dataset group in conf/config.yaml.
CONFIG_KEY = "extra_judgments"
#: Accepted column names, in order of preference: evalkit's / the worklist's, then BEIR qrels'.
COLUMN_SETS = (("query_id", "item_id", "grade"), ("query-id", "corpus-id", "score"))


def _header(path: Path, label: str) -> list[str]:
    """The column names of ``path`` (a JSON-lines file: its first object's keys)."""
    fmt = infer_format(path)
    if fmt in ("csv", "tsv"):
        return _csv_header(path, "\t" if fmt == "tsv" else ",", label)
    if fmt in ("parquet", "pq"):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"not a readable parquet file: {exc}", file=label) from exc
    opener = _OPENERS.get(path.suffix.lower(), open)
    try:
        with opener(path, "rb") as fh:
            first = fh.readline().decode("utf-8-sig").strip()
        row = json.loads(first) if first else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"the first line is not a JSON object ({exc})", file=label, row=1, expected="JSON lines"
        ) from exc
    return list(row) if isinstance(row, dict) else []


def _columns(path: Path, label: str) -> tuple[str, str, str]:
    """The query, item and grade column names of ``path`` (the first set of COLUMN_SETS)."""
    if not path.is_file():
        raise DataError(
            f"file not found (resolved to {path.resolve()})",
            file=label,
            expected="a filled-in judging_worklist.csv or a qrels file",
        )
    header = _header(path, label)
    for names in COLUMN_SETS:
        if all(n in header for n in names):
            return names
    raise DataError(
        f"no judgment columns; the columns are {', '.join(map(repr, header))}",
        file=label,
        expected="columns query_id, item_id, grade (or query-id, corpus-id, score)",
    )


def _blank(arr: pa.Array) -> np.ndarray:
    """Null, or a string that is empty once stripped."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arr), ""), True), bool)
    return np.asarray(arr.is_null(), dtype=bool)


@dataclass(frozen=True)
class _ExtraRows:
    """The file's rows: ids as Python values, grades parsed, blank grades marked."""

    label: str  # the file as configured, for messages
    columns: tuple[str, str, str]  # the query, item and grade column names
    queries: list[str | None]
    items: list[str | None]
    raw: pa.Array  # the grades as read, for messages
    grades: np.ndarray  # int64; 0 where invalid
    invalid: np.ndarray  # null or not an integer
    negative: np.ndarray
    blank: np.ndarray  # not judged yet


def _read_rows(path: Path, label: str) -> _ExtraRows:
    """The id and grade columns of ``path`` (``DataError`` for a missing file or columns)."""
    columns = _columns(path, label)
    q_col, d_col, g_col = columns
    t = read_file(path, list(columns)).table
    q = v.id_strings(t.column(q_col), label, q_col)
    d = v.id_strings(t.column(d_col), label, d_col)
    raw = v.as_array(t.column(g_col))
    blank = _blank(raw) if len(raw) else np.zeros(0, bool)
    grades, invalid, negative = v.grades(raw)
    return _ExtraRows(
        label, columns, q.to_pylist(), d.to_pylist(), raw, grades, invalid, negative, blank
    )


def _row_grade(rows: _ExtraRows, i: int, queries: set[str], items: set[str]) -> int:
    """Row ``i``'s grade; ``DataError`` for an empty id, a bad grade or an unknown id."""
    row, qid, did = i + 1, rows.queries[i], rows.items[i]
    label, (q_col, d_col, g_col) = rows.label, rows.columns
    for value, col in ((qid, q_col), (did, d_col)):
        if value is None or not str(value).strip():
            raise DataError("id is missing or empty", file=label, row=row, field=col)
    if rows.invalid[i] or rows.negative[i]:
        raise DataError(
            f"grade {rows.raw[i].as_py()!r} is not an integer >= 0",
            file=label,
            row=row,
            field=g_col,
            expected="an integer grade >= 0, or blank for not judged yet",
        )
    if qid not in queries:
        raise DataError(
            f"query id {qid!r} is not among the evaluation's queries",
            file=label,
            row=row,
            field=q_col,
            expected="a query id of the dataset",
        )
    if did not in items:
        raise DataError(
            f"item id {did!r} is not in the catalog",
            file=label,
            row=row,
            field=d_col,
            expected="an item id of the catalog",
        )
    return int(rows.grades[i])


def _check_agrees(
    rows: _ExtraRows,
    i: int,
    grade: int,
    held: int | None,
    earlier: tuple[int, int] | None,
    base_source: str,
) -> None:
    """``DataError`` when row ``i`` grades a pair otherwise than the dataset or an earlier row."""
    row, qid, did = i + 1, rows.queries[i], rows.items[i]
    g_col = rows.columns[2]
    if held is not None and held != grade:
        raise DataError(
            f"query {qid!r}, item {did!r} is graded {grade} here but {held} in "
            f"{base_source or 'the dataset judgments'}",
            file=rows.label,
            row=row,
            field=g_col,
            expected="the grade already held, or no row for a judged pair",
        )
    if earlier is not None and earlier[0] != grade:
        raise DataError(
            f"query {qid!r}, item {did!r} is graded {grade} here but {earlier[0]} in row "
            f"{earlier[1]}",
            file=rows.label,
            row=row,
            field=g_col,
            expected="one grade per (query, item) pair",
        )


def _new_pairs(
    rows: _ExtraRows, data: EvalData
) -> tuple[dict[tuple[str, str], tuple[int, int]], int]:
    """The graded pairs ``data`` does not judge yet (``(query, item) -> (grade, row)``) and the
    number of rows repeating a grade already held; rows are checked in file order."""
    queries, items = set(data.queries.ids), set(data.catalog.ids)
    base = data.judgments.qrels if data.judgments is not None else {}
    base_source = data.judgments.source if data.judgments is not None else ""
    new: dict[tuple[str, str], tuple[int, int]] = {}
    agreeing = 0
    for i in np.flatnonzero(~rows.blank).tolist():
        g = _row_grade(rows, i, queries, items)
        qid, did = rows.queries[i], rows.items[i]
        held = base.get(qid, {}).get(did)
        earlier = new.get((qid, did))
        _check_agrees(rows, i, g, held, earlier, base_source)
        if held is not None or earlier is not None:
            agreeing += 1
            continue
        new[qid, did] = (g, i + 1)
    return new, agreeing


def _with_pairs(
    data: EvalData,
    new: dict[tuple[str, str], tuple[int, int]],
    label: str,
    summary: ExtraJudgments,
) -> EvalData:
    """``data`` with the ``new`` grades in its judgments, their source and digests updated."""
    base = data.judgments.qrels if data.judgments is not None else {}
    base_source = data.judgments.source if data.judgments is not None else ""
    qrels = {qid: dict(items_) for qid, items_ in base.items()}
    for (qid, did), (g, _) in new.items():
        qrels.setdefault(qid, {})[did] = g
    judgments = Judgments(
        qrels,
        method=data.judgments.method if data.judgments is not None else "human",
        source=f"{base_source},{label}" if base_source else label,
    )
    fp = data.fingerprint
    digests = fingerprint_data(
        data.catalog,
        data.queries,
        judgments,
        data.text_field,
        clicks=fp.get("clicks"),
        known={k: fp[k] for k in ("catalog", "queries") if fp.get(k)},
        title_separator=data.title_separator,
    )
    return replace(
        data, judgments=judgments, fingerprint={**fp, **digests}, extra_judgments=summary
    )


def merge_extra_judgments(data: EvalData, path: str | Path | None) -> EvalData:
    """``data`` with the graded rows of ``path`` added to its judgments (module docstring)."""
    if path is None or str(path) == "":
        return data
    label = str(path)
    rows = _read_rows(Path(path).expanduser(), label)
    new, agreeing = _new_pairs(rows, data)
    summary = ExtraJudgments(label, len(new), agreeing, int(rows.blank.sum()))
    log.info("%s", summary.describe())
    if not new:
        return replace(data, extra_judgments=summary)
    return _with_pairs(data, new, label, summary)
