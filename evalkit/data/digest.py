"""Content fingerprints: sha256 of a canonical serialisation of each table, and of all of them.

Each table is hashed with its rows sorted by id (judgments by query, then item id), in bulk from
Arrow buffers: row order does not matter, every id, text, attribute and grade does.
:func:`fingerprint_data` gives ``EvalData.fingerprint``: the table digests, optionally ``clicks``,
and ``dataset`` over them and ``text_field`` (Hub revisions are recorded beside, not hashed).

>>> from evalkit.data.schema import Catalog
>>> a = Catalog(ids=["d1", "d2"], titles=["red shoe", "blue hat"])
>>> b = Catalog(ids=["d2", "d1"], titles=["blue hat", "red shoe"])
>>> catalog_digest(a) == catalog_digest(b)
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from evalkit.data.schema import Catalog, Judgments, Queries

#: Version of the canonical serialisation; bump it if the layout below changes.
SCHEME = "evalkit-fp-1"


def _strings(values: Sequence[Any] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    arr = values if isinstance(values, pa.Array) else pa.array(values, type=pa.large_string())
    return arr.cast(pa.large_string())


def _update_strings(h: Any, arr: pa.Array) -> None:
    """Hash a large_string array: null mask, value lengths (int64 LE), then the UTF-8 bytes."""
    arr = pa.concat_arrays([arr]) if arr.offset else arr  # offsets from the array's start
    h.update(b"S%d|" % len(arr))
    if arr.null_count:
        h.update(np.asarray(arr.is_null(), dtype=np.uint8).tobytes())
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=len(arr) + 1)
    h.update(np.diff(offsets).astype("<i8").tobytes())
    if data_buf is not None and offsets[-1] > offsets[0]:
        h.update(memoryview(data_buf)[offsets[0] : offsets[-1]])


def _update_numbers(h: Any, values: np.ndarray, kind: str) -> None:
    dtype = "<i8" if kind == "i" else "<f8"
    arr = np.ascontiguousarray(np.asarray(values, dtype=dtype))
    h.update(b"%s%d|" % (kind.encode(), len(arr)))
    h.update(arr.tobytes())


def _update_values(h: Any, values: Sequence[Any], order: pa.Array) -> None:
    """An attribute column: typed when Arrow can hold it, else printed."""
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([None if v is None else str(v) for v in values], type=pa.large_string())
    arr = arr.take(order)
    t = arr.type
    h.update(str(t).encode() + b"|")
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        h.update(np.asarray(arr.is_null(), dtype=np.uint8).tobytes())
        _update_numbers(h, np.asarray(pc.fill_null(arr.cast(pa.int64()), 0)), "i")
    elif pa.types.is_floating(t):
        _update_numbers(h, arr.to_numpy(zero_copy_only=False), "f")
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        _update_strings(h, arr.cast(pa.large_string()))
    else:  # nested or exotic: printed values
        _update_strings(h, _strings([None if v is None else str(v) for v in arr.to_pylist()]))


def _update_attributes(h: Any, attributes: Mapping[str, Sequence[Any]], order: pa.Array) -> None:
    for name in sorted(attributes):
        h.update(b"A" + name.encode() + b"|")
        _update_values(h, attributes[name], order)


Strings = Sequence[str] | pa.Array


def catalog_digest(catalog: Catalog) -> str:
    """sha256 hex of the catalog's ids, titles, texts and attributes, rows sorted by id."""
    return catalog_digest_of(catalog.ids, catalog.titles, catalog.texts, catalog.attributes)


def _by_id(table: str, ids: Strings, texts: Strings) -> tuple[Any, pa.Array]:
    """A hash of ``table`` started with its ids and texts in id order, and that order."""
    h = hashlib.sha256(f"{SCHEME}|{table}|".encode())
    ids = _strings(ids)
    order = pc.sort_indices(ids)
    _update_strings(h, ids.take(order))
    _update_strings(h, _strings(texts).take(order))
    return h, order


def _update_optional(h: Any, values: Strings | None, order: pa.Array, name: bytes) -> None:
    if values is None:
        h.update(b"no-%s|" % name)
    else:
        _update_strings(h, _strings(values).take(order))


def catalog_digest_of(
    ids: Strings,
    titles: Strings,
    texts: Strings | None,
    attributes: Mapping[str, Sequence[Any]],
) -> str:
    """:func:`catalog_digest` from columns (lists or Arrow arrays, no nulls in ids/texts)."""
    h, order = _by_id("catalog", ids, titles)
    _update_optional(h, texts, order, b"texts")
    _update_attributes(h, attributes, order)
    return h.hexdigest()


def queries_digest(queries: Queries) -> str:
    """sha256 hex of the queries' ids, texts, language, frequency and attributes, sorted by id."""
    return queries_digest_of(
        queries.ids, queries.texts, queries.language, queries.frequency, queries.attributes
    )


def queries_digest_of(
    ids: Strings,
    texts: Strings,
    language: Strings | None,
    frequency: Sequence[float] | np.ndarray | None,
    attributes: Mapping[str, Sequence[Any]],
) -> str:
    """:func:`queries_digest` from columns (lists or Arrow arrays)."""
    h, order = _by_id("queries", ids, texts)
    _update_optional(h, language, order, b"language")
    if frequency is None:
        h.update(b"no-frequency|")
    else:
        _update_numbers(h, np.asarray(frequency, dtype=np.float64)[np.asarray(order)], "f")
    _update_attributes(h, attributes, order)
    return h.hexdigest()


def judgments_digest(judgments: Judgments | None) -> str:
    """sha256 hex of every (query id, item id, grade) sorted by query then item, and the method."""
    if judgments is None:
        return judgments_digest_of(None, None, None)
    qrels = judgments.qrels
    q_ids = [q for q, items in qrels.items() for _ in items]
    i_ids = [i for items in qrels.values() for i in items]
    grades = [g for items in qrels.values() for g in items.values()]
    return judgments_digest_of(q_ids, i_ids, grades, judgments.method)


def judgments_digest_of(
    query_ids: Strings | None,
    item_ids: Strings | None,
    grades: Sequence[int] | np.ndarray | None,
    method: str = "human",
) -> str:
    """:func:`judgments_digest` from aligned columns (``None``: no judgments at all)."""
    h = hashlib.sha256(f"{SCHEME}|judgments|".encode())
    if query_ids is None or item_ids is None or grades is None:
        h.update(b"none")
        return h.hexdigest()
    h.update(method.encode() + b"|")
    q, d = _strings(query_ids), _strings(item_ids)
    order = pc.sort_indices(
        pa.table({"q": q, "i": d}), sort_keys=[("q", "ascending"), ("i", "ascending")]
    )
    _update_strings(h, q.take(order))
    _update_strings(h, d.take(order))
    _update_numbers(h, np.asarray(grades, dtype=np.int64)[np.asarray(order)], "i")
    return h.hexdigest()


def dataset_digest(parts: Mapping[str, str], text_field: str, title_separator: str = " ") -> str:
    """sha256 hex over the table digests (sorted by name) and ``text_field`` (with
    ``title_separator`` when it is ``title_text``, the only field the separator changes)."""
    text = "".join(f"{k}={parts[k]}\n" for k in sorted(parts)) + f"text_field={text_field}\n"
    if text_field == "title_text":
        text += f"title_separator={title_separator!r}\n"
    return hashlib.sha256(f"{SCHEME}|dataset|{text}".encode()).hexdigest()


def fingerprint_data(
    catalog: Catalog,
    queries: Queries,
    judgments: Judgments | None,
    text_field: str = "title",
    clicks: str | None = None,
    known: Mapping[str, str] | None = None,
    title_separator: str = " ",
) -> dict[str, str]:
    """The ``EvalData.fingerprint`` dict; ``clicks`` is the click log's digest, if any, and
    ``known`` holds table digests already computed (a second pass saved)."""
    known = known or {}
    parts = {
        "catalog": known.get("catalog") or catalog_digest(catalog),
        "queries": known.get("queries") or queries_digest(queries),
        "judgments": known.get("judgments") or judgments_digest(judgments),
    }
    if clicks is not None:
        parts["clicks"] = clicks
    return {**parts, "dataset": dataset_digest(parts, text_field, title_separator)}
