"""Tabular loader: the same tables written as parquet, jsonl and csv load identically."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

from evalkit.data.tabular import load_tabular  # noqa: E402
from evalkit.errors import ConfigError  # noqa: E402

CATALOG = {
    "sku": ["007", "10", "2", "α-1"],
    "name": ['red shoe, "classic"', "blue hat", "Schuhe grün\nneu", "tea cup"],
    "body": ["leather", "", "mit Text", "porcelain; 200 ml"],
    "category": ["footwear", "hats", "footwear", None],
}
QUERIES = {
    "qid": ["q1", "q2", "q3"],
    "query": ["red shoes", "hat", "grüne Schuhe"],
    "lang": ["en", "en", "de"],
    "freq": [3.5, 12.0, 0.0],
    "segment": ["head", "tail", "tail"],
}
JUDGMENTS = {
    "query": ["q1", "q1", "q2", "q3"],
    "item": ["007", "2", "10", "2"],
    "label": [2, 0, 1, 3],
}


def _write(folder: Path, stem: str, table: dict[str, list], fmt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.table(table), path)
    elif fmt == "jsonl":
        rows = [dict(zip(table, vals)) for vals in zip(*table.values())]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    else:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(table)
            w.writerows(["" if v is None else v for v in vals] for vals in zip(*table.values()))
    return path


def _load(folder: Path, fmt: str, catalog: dict[str, list] = CATALOG):
    return load_tabular(
        name="shop",
        catalog={
            "path": _write(folder, "items", catalog, fmt),
            "id": "sku",
            "title": "name",
            "text": "body",
            "attributes": ["category"],
        },
        queries={
            "path": _write(folder, "queries", QUERIES, fmt),
            "id": "qid",
            "text": "query",
            "language": "lang",
            "frequency": "freq",
            "attributes": ["segment"],
        },
        judgments={
            "path": _write(folder, "judgments", JUDGMENTS, fmt),
            "query_id": "query",
            "item_id": "item",
            "grade": "label",
        },
        cache_dir=str(folder / "hf-cache"),
    )


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_round_trip(tmp_path: Path, fmt: str) -> None:
    data = _load(tmp_path, fmt)
    assert data.name == "shop" and data.skipped == {}
    assert data.catalog.ids == CATALOG["sku"]
    assert data.catalog.titles == CATALOG["name"]
    assert data.catalog.texts == CATALOG["body"]
    # csv has no null: an empty cell reads as ""
    expected_cat = [c if c is not None or fmt != "csv" else "" for c in CATALOG["category"]]
    assert data.catalog.attributes == {"category": expected_cat}
    assert data.queries.ids == QUERIES["qid"] and data.queries.texts == QUERIES["query"]
    assert data.queries.language == QUERIES["lang"]
    assert data.queries.frequency == QUERIES["freq"]
    assert data.queries.attributes == {"segment": QUERIES["segment"]}
    assert data.judgments.qrels == {"q1": {"007": 2, "2": 0}, "q2": {"10": 1}, "q3": {"2": 3}}
    assert data.judgments.method == "human"


def test_same_content_same_fingerprint_in_every_format(tmp_path: Path) -> None:
    no_nulls = {**CATALOG, "category": ["footwear", "hats", "footwear", "kitchen"]}
    prints = [_load(tmp_path / f, f, no_nulls).fingerprint for f in ("parquet", "jsonl", "csv")]
    assert prints[0] == prints[1] == prints[2]
    assert set(prints[0]) == {"catalog", "queries", "judgments", "dataset"}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_integer_ids_become_plain_strings(tmp_path: Path, fmt: str) -> None:
    """Ids read as numbers (parquet int64, JSON ints, csv digits) never gain a '.0'."""
    items = {"id": [1, 2, 10], "title": ["a", "b", "c"], "note": ["x", None, "z"]}
    queries = {"id": [5, 6], "text": ["a", "b"]}
    judg = {"query_id": [5, 6], "item_id": [10, 1], "grade": [1, 2]}
    data = load_tabular(
        catalog={"path": _write(tmp_path, "items", items, fmt)},
        queries={"path": _write(tmp_path, "queries", queries, fmt)},
        judgments={"path": _write(tmp_path, "judgments", judg, fmt)},
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert data.name == "items"
    assert data.catalog.ids == ["1", "2", "10"] and data.queries.ids == ["5", "6"]
    assert data.judgments.qrels == {"5": {"10": 1}, "6": {"1": 2}}


def test_float_ids_with_nulls_are_restored_to_integers(tmp_path: Path) -> None:
    """A numeric id column with a null is float64 in parquet/pandas exports: 1.0 -> '1'."""
    items = pa.table({"id": pa.array([1.0, 2.0, None, 4.0]), "title": ["a", "b", "c", "d"]})
    pq.write_table(items, tmp_path / "items.parquet")
    _write(tmp_path, "queries", {"id": ["q"], "text": ["a"]}, "jsonl")
    data = load_tabular(
        catalog={"path": tmp_path / "items.parquet"},
        queries={"path": tmp_path / "queries.jsonl"},
        on_invalid="skip",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert data.catalog.ids == ["1", "2", "4"] and data.skipped == {"null_item_id": 1}


def test_format_override_and_config_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "items", {"id": ["a"], "title": ["t"]}, "csv")
    renamed = path.rename(tmp_path / "items.txt")
    q = _write(tmp_path, "queries", {"id": ["q"], "text": ["a"]}, "jsonl")
    cache = str(tmp_path / "hf-cache")
    with pytest.raises(ConfigError, match="cannot infer the format"):
        load_tabular(catalog={"path": renamed}, queries={"path": q}, cache_dir=cache)
    data = load_tabular(
        catalog={"path": renamed, "format": "csv"}, queries={"path": q}, cache_dir=cache
    )
    assert data.catalog.ids == ["a"] and data.judgments is None
    with pytest.raises(ConfigError, match="unknown key.*colour"):
        load_tabular(catalog={"path": renamed, "colour": "x"}, queries={"path": q})
    with pytest.raises(ConfigError, match="catalog.path is not set"):
        load_tabular(catalog={"path": None}, queries={"path": q})
    with pytest.raises(ConfigError, match="needs a body text column"):
        load_tabular(
            catalog={"path": renamed, "format": "csv"}, queries={"path": q}, text_field="text"
        )
    with pytest.raises(ConfigError, match="format 'xlsx'"):
        load_tabular(catalog={"path": renamed, "format": "xlsx"}, queries={"path": q})
