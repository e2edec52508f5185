"""From raw tables plus a column mapping to validated ``Catalog`` / ``Queries`` / ``Judgments``.

Every loader (BEIR folder, tabular files, Hub datasets) reads its tables with
:mod:`evalkit.data.readers` and hands them here, so validation is the same whatever the source:

- catalog: ids non-null and unique; what ``text_field`` embeds non-empty;
- queries: ids non-null and unique; texts non-empty; frequency a non-negative number;
- judgments: ids non-null and known (queries and catalog); grades integers >= 0; each
  (query, item) pair once.

>>> import pyarrow as pa
>>> from evalkit.data.readers import TableSource
>>> src = TableSource(pa.table({"id": [1, 2], "title": ["red shoe", "blue hat"]}), "items.csv")
>>> built = build_catalog(src, CatalogColumns(), text_field="title")
>>> built.value.ids, built.value.titles, built.skipped
(['1', '2'], ['red shoe', 'blue hat'], {})
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from evalkit.data import validate as v
from evalkit.data.digest import (
    catalog_digest_of,
    fingerprint_data,
    judgments_digest_of,
    queries_digest_of,
)
from evalkit.data.readers import TableSource
from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.errors import ConfigError, DataError

log = logging.getLogger(__name__)


class Built(NamedTuple):
    """A validated table, its skip counts, every non-null source id (``known_ids``, kept or
    skipped), the ids of skipped rows (``dropped_ids``) and its content digest."""

    value: Any
    skipped: dict[str, int]
    known_ids: pa.Array
    dropped_ids: pa.Array
    digest: str


def _names(attributes: Any) -> tuple[str, ...]:
    if attributes is None:
        return ()
    if isinstance(attributes, str):
        return (attributes,)
    return tuple(str(a) for a in attributes)


@dataclass(frozen=True)
class CatalogColumns:
    """Column names of a catalog table. ``text`` is optional (``None``: no body text).

    Attributes:
        id: the item id column.
        title: the title column.
        text: the body text column; null = none (needed by ``text`` / ``title_text``).
        attributes: extra columns kept for slicing, e.g. ``[category, brand]``.
    """

    id: str = "id"
    title: str = "title"
    text: str | None = None
    attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", _names(self.attributes))

    def names(self) -> list[str]:
        return [c for c in (self.id, self.title, self.text, *self.attributes) if c]


@dataclass(frozen=True)
class QueryColumns:
    """Column names of a queries table; ``language``, ``frequency`` and attributes optional.

    Attributes:
        id: the query id column.
        text: the query text column.
        language: the language code column (per-language slices); null = none.
        frequency: the frequency column (head / torso / tail slices); null = none.
        attributes: extra columns kept for slicing.
    """

    id: str = "id"
    text: str = "text"
    language: str | None = None
    frequency: str | None = None
    attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", _names(self.attributes))

    def names(self) -> list[str]:
        return [
            c for c in (self.id, self.text, self.language, self.frequency, *self.attributes) if c
        ]


@dataclass(frozen=True)
class JudgmentColumns:
    """Column names of a judgments table (one graded (query, item) pair per row).

    Attributes:
        query_id: the query id column.
        item_id: the item id column.
        grade: the grade column (integers >= 0).
    """

    query_id: str = "query_id"
    item_id: str = "item_id"
    grade: str = "grade"

    def names(self) -> list[str]:
        return [self.query_id, self.item_id, self.grade]


C = TypeVar("C")


def columns_from(
    cls: type[C], config: Mapping[str, Any], what: str, source_keys: Iterable[str] = ()
) -> C:
    """A column mapping from a config mapping, ignoring ``source_keys`` (path, format, ...);
    unknown keys are a :class:`ConfigError` listing the accepted ones."""
    allowed = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    skip = set(source_keys)
    unknown = sorted(k for k in config if k not in allowed and k not in skip)
    if unknown:
        raise ConfigError(
            f"dataset.{what}: unknown key(s) {', '.join(unknown)} "
            f"(expected {', '.join(sorted(allowed | skip))})"
        )
    return cls(**{k: config[k] for k in allowed if k in config and config[k] is not None})


#: The problem (``{!r}``: the first bad row's value), expected value and hint of each row check.
_CHECKS = {
    "empty_query_text": (
        "query text is empty or whitespace-only",
        "a non-empty query text",
        "use dataset.on_invalid=skip to drop such queries",
    ),
    "invalid_frequency": ("frequency {!r} is not a non-negative number", "a number >= 0", ""),
    "unknown_query_in_judgments": (
        "query id {!r} is not in the queries",
        "a query id present in the queries table",
        "",
    ),
    "unknown_item_in_judgments": (
        "item id {!r} is not in the catalog",
        "an item id present in the catalog",
        "use dataset.on_invalid=skip to keep them as judged but unretrievable",
    ),
    "invalid_grade": ("grade {!r} is not an integer", "an integer grade >= 0", ""),
    "negative_grade": ("grade {!r} is negative", "an integer grade >= 0", ""),
}


def _check(rf: v.RowFilter, bad: np.ndarray, reason: str, field: str, values: pa.Array) -> None:
    """:meth:`~evalkit.data.validate.RowFilter.reject` with the messages of ``_CHECKS[reason]``."""
    problem, expected, hint = _CHECKS[reason]
    rf.reject(bad, reason, field, lambda i: problem.format(values[i].as_py()), expected, hint)


def _attributes(table: pa.Table, names: tuple[str, ...], rows: pa.Array) -> dict[str, list[Any]]:
    return {n: table.column(n).take(rows).to_pylist() for n in names}


def _empty_embedded_text(
    rf: v.RowFilter, titles: pa.Array, texts: pa.Array | None, cols: CatalogColumns, text_field: str
) -> None:
    no_title = v.blank(titles)
    no_text = v.blank(texts) if texts is not None else np.ones(len(titles), dtype=bool)
    skip = "dataset.on_invalid=skip to drop such rows"
    if text_field == "title":
        hint = f"use {skip}"
        if texts is not None and no_title.all() and not no_text.all():
            hint = "this catalog has no titles at all: embed the body with dataset.text_field=text"
        elif texts is not None:
            hint = f"use dataset.text_field=text or title_text, or {skip}"
        bad, reason, field = no_title, "empty_title", cols.title
        problem, expected = "title is empty or whitespace-only", "a non-empty title"
    elif text_field == "text":
        bad, reason, field = no_text, "empty_text", cols.text or "text"
        problem, expected = "text is empty or whitespace-only", "a non-empty body text"
        hint = f"use dataset.text_field=title_text, or {skip}"
    else:
        bad, reason, field = no_title & no_text, "empty_title_text", cols.title
        problem, expected = "both title and text are empty", "a non-empty title or body text"
        hint = f"use {skip}"
    rf.reject(bad, reason, field, problem, expected, hint)


def _valid_ids(
    rf: v.RowFilter, ids: pa.Array, reason: str, field: str, what: str
) -> tuple[pa.Array, np.ndarray]:
    """Reject missing ids, require the rest unique; the valid ids and the mask of their rows."""
    rf.reject(v.blank(ids), reason, field, f"{what} is missing or empty", "a non-empty id")
    v.require_unique(rf, ids, field, what)
    valid = rf.keep.copy()
    return ids.filter(pa.array(valid)), valid


def build_catalog(
    src: TableSource, cols: CatalogColumns, text_field: str = "title", on_invalid: str = "error"
) -> Built:
    if text_field != "title" and cols.text is None:
        raise ConfigError(
            f"dataset.text_field={text_field!r} needs a body text column, but no text column is "
            f"configured for the catalog {src.label}; set its text column or use text_field=title"
        )
    t = src.table
    rf = v.RowFilter(src.label, t.num_rows, on_invalid)
    ids = v.id_strings(t.column(cols.id), src.label, cols.id)
    known, valid = _valid_ids(rf, ids, "null_item_id", cols.id, "item id")
    titles = v.text_strings(t.column(cols.title))
    texts = v.text_strings(t.column(cols.text)) if cols.text else None
    _empty_embedded_text(rf, titles, texts, cols, text_field)
    _require_some(rf, "item")
    rows = pa.array(rf.kept())
    kept_ids = ids.take(rows)
    kept_titles = pc.fill_null(titles.take(rows), "")
    kept_texts = pc.fill_null(texts.take(rows), "") if texts is not None else None
    attributes = _attributes(t, cols.attributes, rows)
    catalog = Catalog(
        ids=kept_ids.to_pylist(),
        titles=kept_titles.to_pylist(),
        texts=kept_texts.to_pylist() if kept_texts is not None else None,
        attributes=attributes,
        source=src.label,
    )
    digest = catalog_digest_of(kept_ids, kept_titles, kept_texts, attributes)
    return Built(catalog, dict(rf.skipped), known, ids.filter(pa.array(valid & ~rf.keep)), digest)


def _require_some(rf: v.RowFilter, what: str) -> None:
    """DataError if skipping left nothing (e.g. MED's empty titles), else log the skips."""
    if rf.n == 0:
        raise DataError(
            f"the {what} table has no rows", file=rf.label, expected=f"at least one {what}"
        )
    if not rf.keep.any():
        counts = ", ".join(f"{k}={n}" for k, n in sorted(rf.skipped.items()))
        hint = ""
        if "empty_title" in rf.skipped:
            hint = "; if the body text is filled, use dataset.text_field=text"
        raise DataError(
            f"every {what} row was skipped ({counts}){hint}",
            file=rf.label,
            expected=f"at least one valid {what}",
        )
    rf.warn()


def build_queries(src: TableSource, cols: QueryColumns, on_invalid: str = "error") -> Built:
    t = src.table
    rf = v.RowFilter(src.label, t.num_rows, on_invalid)
    ids = v.id_strings(t.column(cols.id), src.label, cols.id)
    known, valid = _valid_ids(rf, ids, "null_query_id", cols.id, "query id")
    texts = v.text_strings(t.column(cols.text))
    _check(rf, v.blank(texts), "empty_query_text", cols.text, texts)
    frequency = None
    if cols.frequency:
        raw = t.column(cols.frequency)
        frequency, bad = v.numbers(raw)
        _check(rf, bad, "invalid_frequency", cols.frequency, raw)
    _require_some(rf, "query")
    kept = rf.kept()
    rows = pa.array(kept)
    language = None
    if cols.language:
        lang = v.text_strings(t.column(cols.language)).take(rows)
        language = pc.fill_null(pc.utf8_trim_whitespace(lang), "")
    kept_ids, kept_texts = ids.take(rows), texts.take(rows)
    kept_freq = frequency[kept] if frequency is not None else None
    attributes = _attributes(t, cols.attributes, rows)
    queries = Queries(
        ids=kept_ids.to_pylist(),
        texts=kept_texts.to_pylist(),
        language=language.to_pylist() if language is not None else None,
        frequency=kept_freq.tolist() if kept_freq is not None else None,
        attributes=attributes,
        source=src.label,
    )
    digest = queries_digest_of(kept_ids, kept_texts, language, kept_freq, attributes)
    return Built(queries, dict(rf.skipped), known, ids.filter(pa.array(valid & ~rf.keep)), digest)


def build_judgments(
    src: TableSource,
    cols: JudgmentColumns,
    queries: Built,
    catalog: Built,
    on_invalid: str = "error",
) -> Built:
    """Validate a judgments table against the loaded queries and catalog; under ``skip``,
    judgments of skipped queries are dropped, of skipped items kept (docs/how-to/own-data.md)."""
    t = src.table
    rf = v.RowFilter(src.label, t.num_rows, on_invalid)
    q = v.id_strings(t.column(cols.query_id), src.label, cols.query_id)
    d = v.id_strings(t.column(cols.item_id), src.label, cols.item_id)
    for ids, field in ((q, cols.query_id), (d, cols.item_id)):
        rf.reject(
            v.blank(ids), "null_id_in_judgments", field, "id is missing or empty", "a non-empty id"
        )
    # One hash lookup serves the unknown-id check, the duplicate-pair check and the grouping.
    q_code = v.index_in(q, queries.known_ids)
    d_code = v.index_in(d, catalog.known_ids)
    _refuse_mismatched_ids(rf, q, q_code, queries.known_ids, cols.query_id, "queries")
    _refuse_mismatched_ids(rf, d, d_code, catalog.known_ids, cols.item_id, "catalog")
    _check(rf, q_code < 0, "unknown_query_in_judgments", cols.query_id, q)
    missing = (d_code < 0) & rf.keep  # kept under skip: judged but never retrievable
    if rf.on_invalid == "error":
        _check(rf, missing, "unknown_item_in_judgments", cols.item_id, d)
    raw = t.column(cols.grade)
    grades, invalid, negative = v.grades(raw)
    _check(rf, invalid, "invalid_grade", cols.grade, raw)
    _check(rf, negative, "negative_grade", cols.grade, raw)
    _duplicate_pairs(rf, q, d, q_code * np.int64(len(catalog.known_ids) + 1) + d_code, cols)
    if len(queries.dropped_ids):
        rf.drop(v.is_in(q, queries.dropped_ids), "judgment_of_skipped_query")
    rf.warn()
    kept = rf.kept()
    rows = pa.array(kept)
    n_missing = int(np.count_nonzero(missing & rf.keep))  # judged items not in the catalog
    if len(catalog.dropped_ids):
        n_missing += int(np.count_nonzero(v.is_in(d.take(rows), catalog.dropped_ids)))
    if n_missing:
        log.warning(
            "%s: %d judgments name items missing from the catalog (unknown or skipped); they "
            "stay judged, relevant ones as never retrievable (as trec_eval counts them)",
            src.label,
            n_missing,
        )
    kept_q, kept_d, kept_g = q.take(rows), d.take(rows), grades[kept]
    qrels = group_qrels(kept_q, kept_d, kept_g, q_code[kept])
    judgments = Judgments(qrels=qrels, source=src.label)
    digest = judgments_digest_of(kept_q, kept_d, kept_g)
    empty = pa.array([], pa.large_string())
    return Built(judgments, dict(rf.skipped), empty, empty, digest)


def _refuse_mismatched_ids(
    rf: v.RowFilter, ids: pa.Array, code: np.ndarray, known: pa.Array, field: str, table: str
) -> None:
    """A :class:`DataError` even under ``skip`` when no judged id is in the ``table`` or some
    differ only by whitespace or a float's ``.0``: the file's formatting, not missing rows."""
    unknown = (code < 0) & rf.keep
    n_unknown, n_total = int(unknown.sum()), int(rf.keep.sum())
    if not n_unknown:
        return
    spaced = v.misformatted(ids.filter(pa.array(unknown)), known)
    if n_unknown < n_total and not spaced.any():
        return
    first = int(np.flatnonzero(unknown)[np.argmax(spaced)] if spaced.any() else np.argmax(unknown))
    message = v.unknown_ids_message(n_unknown, n_total, ids[first].as_py(), known, table)
    raise DataError(
        message, file=rf.label, row=first + 1, field=field, expected=f"ids of the {table}"
    )


def _duplicate_pairs(
    rf: v.RowFilter, q: pa.Array, d: pa.Array, key: np.ndarray, cols: JudgmentColumns
) -> None:
    """Reject every (query, item) pair judged again after its first row (int64 pair keys)."""
    rows = rf.kept()
    if len(rows) < 2:
        return
    _, first = np.unique(key[rows], return_index=True)
    repeat = np.ones(rf.n, dtype=bool)
    repeat[rows[first]] = False
    repeat &= rf.keep

    def problem(i: int) -> str:
        first_row = int(np.argmax(rf.keep & (key == key[i]))) + 1
        pair = f"query {q[i].as_py()!r} and item {d[i].as_py()!r}"
        return f"{pair} are judged twice (first judged in row {first_row})"

    rf.reject(repeat, "duplicate_judgment", cols.item_id, problem, "each (query, item) pair once")


def group_qrels(
    q: pa.Array, d: pa.Array, grades: np.ndarray, codes: np.ndarray
) -> dict[str, dict[str, int]]:
    """``{query_id: {item_id: grade}}``, queries ordered by ``codes`` (one per distinct id)."""
    if len(q) == 0:
        return {}
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(order)]])
    d_sorted = d.take(pa.array(order)).to_pylist()
    g_sorted = grades[order].tolist()
    q_first = q.take(pa.array(order[starts])).to_pylist()
    return {
        qid: dict(zip(d_sorted[s:e], g_sorted[s:e]))
        for qid, s, e in zip(q_first, starts.tolist(), ends.tolist())
    }


def from_built(
    name: str,
    catalog: Built,
    queries: Built,
    judgments: Built | None,
    text_field: str = "title",
    revisions: Mapping[str, str | None] | None = None,
    title_separator: str = " ",
) -> EvalData:
    """``EvalData`` from the ``build_*`` outputs: skip counts summed, their digests reused,
    ``revisions`` (``{"catalog": "<commit>"}``) recorded as ``<table>_revision``."""
    parts = {"catalog": catalog, "queries": queries, "judgments": judgments}
    parts = {table: built for table, built in parts.items() if built is not None}
    skipped = dict(sum((Counter(built.skipped) for built in parts.values()), Counter()))
    judged = judgments.value if judgments is not None else None
    known = {table: built.digest for table, built in parts.items()}
    fp = fingerprint_data(
        catalog.value,
        queries.value,
        judged,
        text_field,
        known=known,
        title_separator=title_separator,
    )
    fp.update({f"{table}_revision": str(rev) for table, rev in (revisions or {}).items() if rev})
    log.info(
        "dataset %s: %d items, %d queries, %d judgments, fingerprint %s",
        name,
        len(catalog.value),
        len(queries.value),
        len(judged) if judged is not None else 0,
        fp["dataset"][:12],
    )
    return EvalData(
        name,
        catalog.value,
        queries.value,
        judged,
        skipped=skipped,
        fingerprint=fp,
        text_field=text_field,
        title_separator=str(title_separator),
    )
