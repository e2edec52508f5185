"""Extra judgments (``dataset.extra_judgments=<file>``): grades a team added, merged into any dataset.

:func:`merge_extra_judgments` reads a filled-in ``judging_worklist.csv`` or any qrels-like CSV /
TSV / JSONL / Parquet table (``query_id``, ``item_id``, ``grade``, or BEIR's names).  Blank
grades are skipped; a grade contradicting the dataset or another row of the file is a
:class:`~evalkit.errors.DataError` naming file and row; the merged judgments get a new
fingerprint.  Rules: docs/how-to/judgments.md.

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

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from evalkit.data import validate as v
from evalkit.data.digest import fingerprint_data
from evalkit.data.readers import columns_of, infer_format, read_file
from evalkit.data.schema import EvalData, ExtraJudgments, Judgments
from evalkit.errors import DataError

log = logging.getLogger(__name__)

#: The config key (``dataset.extra_judgments``), set for every dataset group in conf/config.yaml.
CONFIG_KEY = "extra_judgments"
#: Accepted column names, in order of preference: evalkit's / the worklist's, then BEIR qrels'.
COLUMN_SETS = (("query_id", "item_id", "grade"), ("query-id", "corpus-id", "score"))


def _columns(path: Path, label: str) -> tuple[str, str, str]:
    """The query, item and grade column names of ``path`` (the first set of COLUMN_SETS)."""
    if not path.is_file():
        raise DataError(
            f"file not found (resolved to {path.resolve()})",
            file=label,
            expected="a filled-in judging_worklist.csv or a qrels file",
        )
    header = columns_of(path, infer_format(path), label)
    for names in COLUMN_SETS:
        if all(n in header for n in names):
            return names
    raise DataError(
        f"no judgment columns; the columns are {', '.join(map(repr, header))}",
        file=label,
        expected="columns query_id, item_id, grade (or query-id, corpus-id, score)",
    )


def _new_pairs(
    path: Path, label: str, data: EvalData
) -> tuple[dict[tuple[str, str], int], int, int]:
    """The graded pairs of ``path`` that ``data`` does not judge yet, the number of rows that
    repeat a grade already held and of blank rows; rows are checked in file order."""
    q_col, d_col, g_col = _columns(path, label)
    t = read_file(path, [q_col, d_col, g_col]).table
    qids, dids = (v.id_strings(t.column(c), label, c).to_pylist() for c in (q_col, d_col))
    raw = v.as_array(t.column(g_col))
    blank = v.blank(raw)
    grades, invalid, negative = v.grades(raw)
    queries, items = set(data.queries.ids), set(data.catalog.ids)
    base = data.judgments.qrels if data.judgments is not None else {}
    held_in = data.judgments.source if data.judgments is not None else ""
    new: dict[tuple[str, str], tuple[int, int]] = {}  # (query, item) -> (grade, row)
    agreeing = 0
    for i in np.flatnonzero(~blank).tolist():
        row, qid, did, g = i + 1, qids[i], dids[i], int(grades[i])
        for value, col in ((qid, q_col), (did, d_col)):
            if value is None or not str(value).strip():
                raise DataError("id is missing or empty", file=label, row=row, field=col)
        if invalid[i] or negative[i]:
            problem = f"grade {raw[i].as_py()!r} is not an integer >= 0"
            expected = "an integer grade >= 0, or blank for not judged yet"
            raise DataError(problem, file=label, row=row, field=g_col, expected=expected)
        if qid not in queries:
            problem = f"query id {qid!r} is not among the evaluation's queries"
            expected = "a query id of the dataset"
            raise DataError(problem, file=label, row=row, field=q_col, expected=expected)
        if did not in items:
            problem = f"item id {did!r} is not in the catalog"
            raise DataError(
                problem, file=label, row=row, field=d_col, expected="an item id of the catalog"
            )
        held, earlier = base.get(qid, {}).get(did), new.get((qid, did))
        if held is not None and held != g:
            problem = f"query {qid!r}, item {did!r} is graded {g} here but {held} in "
            problem += held_in or "the dataset judgments"
            expected = "the grade already held, or no row for a judged pair"
            raise DataError(problem, file=label, row=row, field=g_col, expected=expected)
        if earlier is not None and earlier[0] != g:
            problem = f"query {qid!r}, item {did!r} is graded {g} here but {earlier[0]} in row "
            problem += str(earlier[1])
            expected = "one grade per (query, item) pair"
            raise DataError(problem, file=label, row=row, field=g_col, expected=expected)
        if held is not None or earlier is not None:
            agreeing += 1
        else:
            new[qid, did] = (g, row)
    return {pair: g for pair, (g, _) in new.items()}, agreeing, int(blank.sum())


def merge_extra_judgments(data: EvalData, path: str | Path | None) -> EvalData:
    """``data`` with the graded rows of ``path`` added to its judgments (module docstring)."""
    if path is None or str(path) == "":
        return data
    label = str(path)
    new, agreeing, blank = _new_pairs(Path(path).expanduser(), label, data)
    summary = ExtraJudgments(label, len(new), agreeing, blank)
    log.info("%s", summary.describe())
    if not new:
        return replace(data, extra_judgments=summary)
    base = data.judgments
    qrels = {qid: dict(items) for qid, items in base.qrels.items()} if base is not None else {}
    for (qid, did), g in new.items():
        qrels.setdefault(qid, {})[did] = g
    judgments = Judgments(
        qrels,
        method=base.method if base is not None else "human",
        source=f"{base.source},{label}" if base is not None and base.source else label,
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
