"""Vectorised checks shared by every loader: ids, blank texts, duplicates, grades, numbers.

Checks take whole ``pyarrow`` columns and return numpy masks; a :class:`RowFilter` turns a mask
of bad rows into a :class:`~evalkit.errors.DataError` naming file, first bad 1-based row and
field (``on_invalid="error"``), or drops and counts them by reason (``"skip"``); the rules:
docs/how-to/own-data.md ("Bad input").

>>> import pyarrow as pa
>>> rf = RowFilter("items.csv", 3, on_invalid="skip")
>>> titles = pa.array(["red shoe", "  ", None])
>>> rf.reject(blank(titles), "empty_title", "title", "title is empty", "a non-empty string")
>>> rf.keep.tolist(), rf.skipped
([True, False, False], {'empty_title': 2})
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from evalkit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

ON_INVALID = ("error", "skip")
_INT = r"^[+-]?[0-9]{1,15}(\.0*)?$"
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_MAX_EXACT = 2.0**53


def check_on_invalid(value: str) -> str:
    value = str(value).strip().lower()
    if value not in ON_INVALID:
        raise ConfigError(f"dataset.on_invalid={value!r} is unknown (expected error or skip)")
    return value


@dataclass
class RowFilter:
    """Rows of one table still kept, and how many were dropped for which (first) reason."""

    label: str
    n: int
    on_invalid: str = "error"
    skipped: dict[str, int] = field(default_factory=dict)
    keep: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.on_invalid = check_on_invalid(self.on_invalid)
        self.keep = np.ones(self.n, dtype=bool)

    def reject(
        self,
        bad: np.ndarray,
        reason: str,
        field: str,
        problem: str | Callable[[int], str],
        expected: str,
        hint: str = "",
    ) -> None:
        """Raise for or drop the ``bad`` rows; ``problem`` may be a function of the first's index."""
        bad = bad & self.keep
        n_bad = int(np.count_nonzero(bad))
        if not n_bad:
            return
        first = int(np.argmax(bad))
        if self.on_invalid == "error":
            text = problem(first) if callable(problem) else problem
            if n_bad > 1:
                text += f" ({n_bad} of {self.n} rows; this is the first)"
            if hint:
                text += f"; {hint}"
            raise DataError(text, file=self.label, row=first + 1, field=field, expected=expected)
        self.drop(bad, reason)

    def drop(self, mask: np.ndarray, reason: str) -> None:
        """Drop and count rows that are not errors, whatever ``on_invalid`` says."""
        mask = mask & self.keep
        n = int(np.count_nonzero(mask))
        if n:
            self.keep &= ~mask
            self.skipped[reason] = self.skipped.get(reason, 0) + n

    def kept(self) -> np.ndarray:
        return np.flatnonzero(self.keep)

    def warn(self) -> None:
        if self.skipped:
            counts = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items()))
            dropped = self.n - int(self.keep.sum())
            log.warning("%s: skipped %d of %d rows (%s)", self.label, dropped, self.n, counts)


def as_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def id_strings(col: pa.Array | pa.ChunkedArray, label: str, field: str) -> pa.Array:
    """Ids as ``large_string`` (nulls kept): integral floats without ``.0``, mixed JSON decoded."""
    arr = as_array(col)
    t = arr.type
    if isinstance(t, pa.BaseExtensionType):  # datasets' Json type for mixed-type JSON columns
        return pa.array(
            [_json_id(v, label, field) for v in arr.storage.to_pylist()], pa.large_string()
        )
    if pa.types.is_integer(t) or t in (pa.string(), pa.large_string(), pa.bool_()):
        return arr.cast(pa.large_string())
    if pa.types.is_floating(t):
        values = arr.to_numpy(zero_copy_only=False).astype(np.float64)
        integral = (np.floor(values) == values) & (np.abs(values) < _MAX_EXACT)  # nan, inf: False
        as_int = pa.array(np.where(integral, values, 0).astype(np.int64)).cast(pa.large_string())
        out = pc.if_else(pa.array(integral), as_int, arr.cast(pa.large_string()))
        return pc.if_else(arr.is_null(), pa.scalar(None, pa.large_string()), out)
    raise DataError(
        f"ids have type {t}",
        file=label,
        row=1,
        field=field,
        expected="string or integer ids",
    )


def _json_id(text: str | None, label: str, field: str) -> str | None:
    value = None if text is None else json.loads(text)
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer() and abs(value) < _MAX_EXACT:
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    raise DataError(
        f"an id is a JSON {type(value).__name__}: {str(text)[:60]}",
        file=label,
        field=field,
        expected="string or integer ids",
    )


def text_strings(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A text column as ``large_string`` (nulls kept); numbers are printed, JSON kept as text."""
    arr = as_array(col)
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    return arr.cast(pa.large_string())  # an all-null column too


def blank(arr: pa.Array) -> np.ndarray:
    """Mask of null, empty or whitespace-only strings (of other types: of nulls)."""
    if len(arr) == 0:
        return np.zeros(0, dtype=bool)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return np.asarray(arr.is_null(), dtype=bool)
    lengths = pc.binary_length(pc.utf8_trim_whitespace(arr))
    return np.asarray(pc.fill_null(pc.equal(lengths, 0), True), dtype=bool)


def require_unique(rf: RowFilter, ids: pa.Array, field: str, what: str) -> None:
    """DataError naming both rows if two kept rows share an id (always an error)."""
    rows = rf.kept()
    # Codes number the ids in order of first appearance: a row repeats an id iff its code is <=
    # an earlier one.
    codes = np.asarray(ids.take(pa.array(rows)).dictionary_encode().indices, dtype=np.int64)
    repeat = np.flatnonzero(codes[1:] <= np.maximum.accumulate(codes)[:-1])
    if not len(repeat):
        return
    second = int(repeat[0]) + 1
    a, b = int(rows[np.argmax(codes == codes[second])]), int(rows[second])
    raise DataError(
        f"duplicate {what} {ids[b].as_py()!r}: rows {a + 1} and {b + 1} both have it",
        file=rf.label,
        row=b + 1,
        field=field,
        expected=f"each {what} exactly once",
    )


def grades(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(grades int64, invalid, negative)``: invalid = null or not an integer (``2.0`` is one);
    invalid rows hold 0."""
    arr = as_array(col)
    t = arr.type
    if isinstance(t, pa.BaseExtensionType):  # mixed JSON: '2', '"2"'
        arr, t = pc.replace_substring_regex(arr.storage, r'^"(.*)"$', r"\1"), arr.storage.type
    if pa.types.is_integer(t):
        values = np.asarray(pc.fill_null(arr.cast(pa.int64()), 0), dtype=np.int64)
        invalid = np.asarray(arr.is_null(), dtype=bool)
    elif pa.types.is_floating(t):
        raw = arr.to_numpy(zero_copy_only=False).astype(np.float64)
        with np.errstate(invalid="ignore"):
            invalid = ~(np.isfinite(raw) & (np.floor(raw) == raw) & (np.abs(raw) < _MAX_EXACT))
        values = np.where(invalid, 0, raw).astype(np.int64)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        text = pc.utf8_trim_whitespace(arr)
        ok = pc.fill_null(pc.match_substring_regex(text, _INT), False)
        digits = pc.replace_substring_regex(text, r"^\+|\.0*$", "")
        digits = pc.if_else(ok, digits, "0")
        values = np.asarray(digits.cast(pa.int64()), dtype=np.int64)
        invalid = ~np.asarray(ok, dtype=bool)
    else:
        values = np.zeros(len(arr), dtype=np.int64)
        invalid = np.ones(len(arr), dtype=bool)
    return values, invalid, ~invalid & (values < 0)


def numbers(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """``(float64 values, invalid)``: invalid = null, not a number, infinite or negative."""
    arr = as_array(col)
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        values = arr.to_numpy(zero_copy_only=False).astype(np.float64)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        text = pc.utf8_trim_whitespace(arr)
        ok = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
        text = pc.if_else(ok, pc.replace_substring_regex(text, r"^\+", ""), "nan")
        values = np.asarray(text.cast(pa.float64()), dtype=np.float64)
    else:
        values = np.full(len(arr), np.nan)
    with np.errstate(invalid="ignore"):
        invalid = ~np.isfinite(values) | (values < 0)
    return np.where(invalid, np.nan, values), invalid


def index_in(values: pa.Array, known: pa.Array) -> np.ndarray:
    """Position of each value in ``known`` (unique values) as int64, -1 where absent or null."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    pos = pc.index_in(values, value_set=known)
    return np.asarray(pc.fill_null(pos.cast(pa.int64()), -1), dtype=np.int64)


def is_in(values: pa.Array, allowed: pa.Array) -> np.ndarray:
    """Mask of ``values`` present in ``allowed``."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(pc.fill_null(pc.is_in(values, value_set=allowed), False), dtype=bool)


#: Ids compared by difflib when looking for the nearest known id (keeps it cheap on 1M ids).
NEAREST_SAMPLE = 20_000
#: An integer id written as a float ("17.0"): group 1 is the integer ("17").
_FLOAT_ID = r"^\s*([+-]?[0-9]+)\.0+\s*$"


def as_integer_ids(values: pa.Array) -> pa.Array:
    """Float-formatted integer ids (``"17.0"``) without their ``.0``; other ids unchanged."""
    return pc.replace_substring_regex(values, pattern=_FLOAT_ID, replacement=r"\1")


def nearest_id(value: str, known: pa.Array) -> tuple[str | None, str]:
    """``(nearest known id, how it differs)`` for an unknown ``value``: ``whitespace``,
    ``float`` (``"17.0"`` for ``"17"``), ``float_known`` (the known id is the float), else ``""``
    (difflib's closest of at most ``NEAREST_SAMPLE`` known ids, or None)."""
    candidates = (
        (value.strip(), known, "whitespace"),
        (as_integer_ids(pa.array([value]))[0].as_py(), known, "float"),
        (value, as_integer_ids(known), "float_known"),
    )
    for wanted, among, how in candidates if len(known) else ():
        if wanted == value and how != "float_known":
            continue
        pos = pc.index_in(pa.array([wanted], among.type), value_set=among)[0].as_py()
        if pos is not None and known[pos].as_py() != value:
            return known[pos].as_py(), how
    sample = known.slice(0, NEAREST_SAMPLE).to_pylist()
    close = difflib.get_close_matches(value, [k for k in sample if k is not None], n=1, cutoff=0.6)
    return (close[0], "") if close else (None, "")


def misformatted(values: pa.Array, known: pa.Array) -> np.ndarray:
    """Mask of ``values`` absent from ``known`` but present without whitespace or a float's ``.0``."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    absent = ~is_in(values, known)
    stripped = pc.utf8_trim_whitespace(values)
    out = is_in(stripped, known) | is_in(as_integer_ids(values), known)
    integer_known = as_integer_ids(known)
    if not pc.all(pc.equal(integer_known, known)).as_py():
        out |= is_in(values, integer_known)
    return out & absent


#: What each way of differing tells the user to do (``{table}``: the table the ids belong to).
_HOW = {
    "whitespace": ": only whitespace differs (strip the ids)",
    "float": ": the ids are written as floats ({value!r} for {near!r}); write them as integers "
    "(e.g. pandas: read the ids with dtype=str, or df[col].astype(int))",
    "float_known": ": the {table}'s ids are written as floats ({near!r} for {value!r}); write "
    "them as integers (e.g. pandas: read the ids with dtype=str, or df[col].astype(int))",
}


def unknown_ids_message(
    n_unknown: int, n_total: int, value: str, known: pa.Array, table: str
) -> str:
    """``"170 of 170 judged ids are unknown (...); nearest catalog id 'x': whitespace differs"``."""
    near, how = nearest_id(value, known)
    text = f"{n_unknown} of {n_total} judged ids are unknown (not in the {table}); first {value!r}"
    if near is not None:
        text += f", nearest {table} id {near!r}"
        text += _HOW.get(how, "").format(value=value, near=near, table=table)
    return text
