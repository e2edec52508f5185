"""Every kind of bad input raises a DataError naming file, 1-based row and field - or is skipped."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

from evalkit.data.schema import EvalData  # noqa: E402
from evalkit.data.tabular import load_tabular  # noqa: E402
from evalkit.errors import DataError  # noqa: E402

ITEMS = "id,title\n1,red shoe\n2,blue hat\n3,tea cup\n"
QUERIES = '{"id": "q1", "text": "shoe"}\n{"id": "q2", "text": "hat"}\n'
JUDGMENTS = "query_id,item_id,grade\nq1,1,2\nq2,2,1\n"


def _load(
    tmp_path: Path,
    items: str | bytes = ITEMS,
    queries: str | bytes = QUERIES,
    judgments: str | bytes | None = JUDGMENTS,
    names: tuple[str, str, str] = ("items.csv", "queries.jsonl", "judgments.csv"),
    **kwargs,
) -> EvalData:
    paths = []
    for name, content in zip(names, (items, queries, judgments)):
        path = tmp_path / name
        if content is not None:
            data = content.encode("utf-8") if isinstance(content, str) else content
            path.write_bytes(data)
        paths.append(path if content is not None else None)
    return load_tabular(
        catalog={"path": paths[0]},
        queries={"path": paths[1]},
        judgments={"path": paths[2]} if paths[2] else None,
        cache_dir=str(tmp_path / "hf-cache"),
        **kwargs,
    )


def _error(tmp_path: Path, **kwargs) -> DataError:
    with pytest.raises(DataError) as err:
        _load(tmp_path, **kwargs)
    return err.value


def _assert_names(e: DataError, file: str, row: int | None, field: str | None) -> None:
    """The structured fields and the rendered one-line message both name the location."""
    msg = str(e)
    assert e.file is not None and e.file.endswith(file) and file in msg
    assert e.row == row
    if row is not None:
        assert f"row {row}" in msg
    assert e.field == field
    if field is not None:
        assert repr(field) in msg


def test_valid_input_loads(tmp_path: Path) -> None:
    data = _load(tmp_path)
    assert data.catalog.ids == ["1", "2", "3"] and data.skipped == {}
    assert data.judgments.qrels == {"q1": {"1": 2}, "q2": {"2": 1}}


@pytest.mark.parametrize(
    ("names", "content_key", "content"),
    [
        (("items.csv", "queries.jsonl", "judgments.csv"), "items", "id,name\n1,red shoe\n"),
        (("items.csv", "queries.jsonl", "judgments.csv"), "queries", '{"id": "q1", "q": "x"}\n'),
        (("items.csv", "queries.jsonl", "judgments.csv"), "judgments", "query_id,item_id\nq1,1\n"),
    ],
)
def test_missing_column_names_file_column_and_existing_columns(
    tmp_path: Path, names, content_key: str, content: str
) -> None:
    e = _error(tmp_path, names=names, **{content_key: content})
    file = dict(zip(("items", "queries", "judgments"), names))[content_key]
    missing = {"items": "title", "queries": "text", "judgments": "grade"}[content_key]
    _assert_names(e, file, None, missing)
    assert "the columns are" in str(e)
    existing = {"items": "'id', 'name'", "queries": "'id', 'q'", "judgments": "'query_id'"}
    assert existing[content_key] in str(e)


def test_missing_column_in_parquet_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["1"], "name": ["x"]}), tmp_path / "items.parquet")
    e = _error(
        tmp_path,
        items=(tmp_path / "items.parquet").read_bytes(),
        names=("items.parquet", "queries.jsonl", "judgments.csv"),
        on_invalid="skip",
    )
    _assert_names(e, "items.parquet", None, "title")
    assert "'id', 'name'" in str(e)


@pytest.mark.parametrize("bad", ["", "   ", '"  \t "'])
def test_empty_or_whitespace_title(tmp_path: Path, bad: str) -> None:
    items = f"id,title\n1,red shoe\n2,{bad}\n3,tea cup\n"
    e = _error(tmp_path, items=items)
    _assert_names(e, "items.csv", 2, "title")
    assert "title is empty or whitespace-only" in str(e)
    data = _load(tmp_path, items=items, on_invalid="skip")
    assert data.catalog.ids == ["1", "3"] and data.skipped == {"empty_title": 1}
    # the judgment of the skipped item stays (unretrievable but relevant)
    assert data.judgments.qrels["q2"] == {"2": 1}


def test_empty_query_text(tmp_path: Path) -> None:
    queries = (
        '{"id": "q1", "text": "shoe"}\n{"id": "q2", "text": " "}\n{"id": "q3", "text": null}\n'
    )
    e = _error(tmp_path, queries=queries)
    _assert_names(e, "queries.jsonl", 2, "text")
    assert "2 of 3 rows" in str(e)
    data = _load(tmp_path, queries=queries, on_invalid="skip")
    assert data.queries.ids == ["q1"]
    assert data.skipped == {"empty_query_text": 2, "judgment_of_skipped_query": 1}
    assert data.judgments.qrels == {"q1": {"1": 2}}


def test_duplicate_item_ids_name_both_rows_even_when_skipping(tmp_path: Path) -> None:
    items = "id,title\n1,red shoe\n2,blue hat\n3,tea cup\n2,green hat\n"
    for mode in ("error", "skip"):
        e = _error(tmp_path, items=items, on_invalid=mode)
        _assert_names(e, "items.csv", 4, "id")
        assert "duplicate item id '2': rows 2 and 4" in str(e)


def test_duplicate_ids_are_errors_even_if_one_copy_would_be_skipped(tmp_path: Path) -> None:
    items = "id,title\n1,red shoe\n2,\n3,tea cup\n2,green hat\n"
    e = _error(tmp_path, items=items, on_invalid="skip")
    _assert_names(e, "items.csv", 4, "id")
    assert "rows 2 and 4" in str(e)


def test_duplicate_query_ids_name_both_rows(tmp_path: Path) -> None:
    queries = QUERIES + '{"id": "q3", "text": "cup"}\n{"id": "q1", "text": "boot"}\n'
    e = _error(tmp_path, queries=queries, on_invalid="skip")
    _assert_names(e, "queries.jsonl", 4, "id")
    assert "duplicate query id 'q1': rows 1 and 4" in str(e)


def test_judgment_with_unknown_query_id(tmp_path: Path) -> None:
    judgments = JUDGMENTS + "q9,1,1\n"
    e = _error(tmp_path, judgments=judgments)
    _assert_names(e, "judgments.csv", 3, "query_id")
    assert "query id 'q9' is not in the queries" in str(e)
    data = _load(tmp_path, judgments=judgments, on_invalid="skip")
    assert data.skipped == {"unknown_query_in_judgments": 1} and len(data.judgments) == 2


def test_judgment_with_unknown_item_id(tmp_path: Path) -> None:
    judgments = "query_id,item_id,grade\nq1,1,2\nq1,42,1\nq2,43,1\nq2,2,1\n"
    e = _error(tmp_path, judgments=judgments)
    _assert_names(e, "judgments.csv", 2, "item_id")
    assert "item id '42' is not in the catalog" in str(e) and "2 of 4 rows" in str(e)
    # Skip mode keeps them: relevant and never retrievable (trec_eval's unretrieved relevant).
    data = _load(tmp_path, judgments=judgments, on_invalid="skip")
    assert data.skipped == {}
    assert data.judgments.qrels == {"q1": {"1": 2, "42": 1}, "q2": {"43": 1, "2": 1}}


@pytest.mark.parametrize(
    ("grade", "reason", "text"),
    [
        ("2.5", "invalid_grade", "grade '2.5' is not an integer"),
        ("high", "invalid_grade", "grade 'high' is not an integer"),
        ("", "invalid_grade", "grade '' is not an integer"),
        ("-1", "negative_grade", "grade '-1' is negative"),
    ],
)
def test_bad_grades(tmp_path: Path, grade: str, reason: str, text: str) -> None:
    judgments = f"query_id,item_id,grade\nq1,1,2\nq2,2,{grade}\n"
    e = _error(tmp_path, judgments=judgments)
    _assert_names(e, "judgments.csv", 2, "grade")
    assert text in str(e) and "integer grade >= 0" in str(e)
    data = _load(tmp_path, judgments=judgments, on_invalid="skip")
    assert data.skipped == {reason: 1} and data.judgments.qrels == {"q1": {"1": 2}}


def test_bad_grades_in_typed_files(tmp_path: Path) -> None:
    """Float grades in parquet / JSON: 2.0 is accepted as 2, 2.5 is not."""
    judgments = '{"query_id": "q1", "item_id": "1", "grade": 2.0}\n'
    judgments += '{"query_id": "q2", "item_id": "2", "grade": 2.5}\n'
    names = ("items.csv", "queries.jsonl", "judgments.jsonl")
    e = _error(tmp_path, judgments=judgments, names=names)
    _assert_names(e, "judgments.jsonl", 2, "grade")
    assert "grade 2.5 is not an integer" in str(e)
    data = _load(tmp_path, judgments=judgments, names=names, on_invalid="skip")
    assert data.judgments.qrels == {"q1": {"1": 2}}
    assert isinstance(data.judgments.qrels["q1"]["1"], int)


def test_duplicate_judgment_pair(tmp_path: Path) -> None:
    judgments = "query_id,item_id,grade\nq1,1,2\nq2,2,1\nq1,1,0\n"
    e = _error(tmp_path, judgments=judgments)
    _assert_names(e, "judgments.csv", 3, "item_id")
    assert "judged twice (first judged in row 1)" in str(e)
    data = _load(tmp_path, judgments=judgments, on_invalid="skip")
    assert data.skipped == {"duplicate_judgment": 1} and data.judgments.qrels["q1"] == {"1": 2}


def test_undecodable_bytes_in_jsonl(tmp_path: Path) -> None:
    queries = b'{"id": "q1", "text": "shoe"}\n{"id": "q2", "text": "caf\xe9"}\n'
    e = _error(tmp_path, queries=queries)
    _assert_names(e, "queries.jsonl", 2, None)
    assert "line 2 is not valid UTF-8" in str(e) and "0xe9" in str(e)


def test_undecodable_bytes_in_csv(tmp_path: Path) -> None:
    items = b"id,title\n1,red shoe\n2,blue hat\n3,caf\xe9 cup\n"
    e = _error(tmp_path, items=items, on_invalid="skip")
    _assert_names(e, "items.csv", 3, None)
    assert "line 4 is not valid UTF-8" in str(e)


def test_line_that_is_not_json(tmp_path: Path) -> None:
    queries = '{"id": "q1", "text": "shoe"}\n{"id": "q2", "text": "hat"\n'
    e = _error(tmp_path, queries=queries)
    _assert_names(e, "queries.jsonl", 2, None)
    assert "line 2 is not a JSON object" in str(e)


def test_null_ids(tmp_path: Path) -> None:
    items = "id,title\n1,red shoe\n,blue hat\n3,tea cup\n"
    e = _error(tmp_path, items=items)
    _assert_names(e, "items.csv", 2, "id")
    assert "item id is missing or empty" in str(e)

    queries = (
        '{"id": "q1", "text": "shoe"}\n{"id": null, "text": "hat"}\n{"id": "q2", "text": "x"}\n'
    )
    e = _error(tmp_path, queries=queries)
    _assert_names(e, "queries.jsonl", 2, "id")

    judgments = "query_id,item_id,grade\nq1,1,2\n,2,1\nq2,,1\n"
    e = _error(tmp_path, judgments=judgments)
    _assert_names(e, "judgments.csv", 2, "query_id")
    data = _load(tmp_path, items=items, queries=queries, judgments=judgments, on_invalid="skip")
    assert data.skipped == {
        "null_item_id": 1,
        "null_query_id": 1,
        "null_id_in_judgments": 2,
    }
    assert data.catalog.ids == ["1", "3"] and data.queries.ids == ["q1", "q2"]


def test_invalid_frequency(tmp_path: Path) -> None:
    queries = "id,text,freq\nq1,shoe,3\nq2,hat,often\nq3,cup,-2\n"
    names = ("items.csv", "queries.csv", "judgments.csv")
    kwargs = {"items": ITEMS, "queries": queries, "judgments": JUDGMENTS, "names": names}
    paths = []
    for name, key in zip(names, ("items", "queries", "judgments")):
        (tmp_path / name).write_text(kwargs[key], encoding="utf-8")
        paths.append(tmp_path / name)
    spec = {"path": paths[1], "frequency": "freq"}
    cache = str(tmp_path / "hf-cache")
    with pytest.raises(DataError) as err:
        load_tabular(catalog={"path": paths[0]}, queries=spec, cache_dir=cache)
    _assert_names(err.value, "queries.csv", 2, "freq")
    assert "frequency 'often' is not a non-negative number" in str(err.value)
    data = load_tabular(
        catalog={"path": paths[0]},
        queries=spec,
        judgments={"path": paths[2]},
        on_invalid="skip",
        cache_dir=cache,
    )
    assert data.queries.frequency == [3.0] and data.queries.ids == ["q1"]
    assert data.skipped == {"invalid_frequency": 2, "judgment_of_skipped_query": 1}


def test_skipping_logs_a_warning_with_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    items = "id,title\n1,red shoe\n2,\n3,\n"
    with caplog.at_level(logging.WARNING, logger="evalkit.data"):
        data = _load(tmp_path, items=items, judgments=None, on_invalid="skip")
    assert data.skipped == {"empty_title": 2}
    assert any("items.csv" in r.message and "empty_title=2" in r.message for r in caplog.records)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    (tmp_path / "queries.jsonl").write_text(QUERIES, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_tabular(
            catalog={"path": tmp_path / "nope.csv"}, queries={"path": tmp_path / "queries.jsonl"}
        )
    assert err.value.file.endswith("nope.csv") and "file not found" in str(err.value)
    e = _error(tmp_path, items="")
    assert e.file.endswith("items.csv") and "empty" in str(e)
    e = _error(tmp_path, items="id,title\n")
    assert e.file.endswith("items.csv") and "no data rows" in str(e)
