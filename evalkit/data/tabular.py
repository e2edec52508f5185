"""Load a catalog, queries and (optionally) judgments from parquet / jsonl / csv files.

Each table is a block of ``conf/dataset/tabular.yaml``: ``path``, optional ``format`` and the
column names (:class:`~evalkit.data.table_mapping.CatalogColumns`, ...).  CSV / TSV values are read
as strings; parquet and JSON keep their types (integer ids become strings without ``.0``).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "items.csv").write_text("sku,name\\n1,red shoe\\n2,blue hat\\n", encoding="utf-8")
>>> _ = (d / "q.jsonl").write_text('{"id": "q1", "text": "hat"}\\n', encoding="utf-8")
>>> data = load_tabular(catalog={"path": d / "items.csv", "id": "sku", "title": "name"},
...                     queries={"path": d / "q.jsonl"})
>>> data.name, data.catalog.ids, data.judgments
('items', ['1', '2'], None)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.data import table_mapping as tm
from evalkit.data.readers import read_file
from evalkit.data.schema import EvalData, check_text_field
from evalkit.data.validate import check_on_invalid
from evalkit.errors import ConfigError

SOURCE_KEYS = ("path", "format")


def _path(spec: Mapping[str, Any] | None, what: str, required: bool = True) -> Any:
    if spec is None or spec.get("path") in (None, ""):
        if required:
            raise ConfigError(f"dataset.{what}.path is not set (expected a parquet/jsonl/csv file)")
        return None
    return spec["path"]


def load_tabular(
    name: str | None = None,
    catalog: Mapping[str, Any] | None = None,
    queries: Mapping[str, Any] | None = None,
    judgments: Mapping[str, Any] | None = None,
    text_field: str = "title",
    on_invalid: str = "error",
    cache_dir: str | None = None,
    title_separator: str = " ",
) -> EvalData:
    """Load and validate catalog / queries / judgments files with configurable column names.

    Args:
        name: the dataset's name in MLflow and reports; null = the catalog file's name.
        catalog: the catalog file (``path``, ``format``) and its column names.
        queries: the queries file (``path``, ``format``) and its column names.
        judgments: the judgments file and its column names; no ``path`` = no judgments.
        catalog.path, queries.path, judgments.path (path): the file (relative: to the cwd).
        catalog.format, queries.format, judgments.format (string or null): ``parquet``,
            ``jsonl``, ``json``, ``csv`` or ``tsv``; null = from the file's extension.
        text_field: what is embedded for each item: ``title``, ``text`` or ``title_text``.
        on_invalid: bad rows: ``error`` stops naming file and row; ``skip`` drops them.
        cache_dir: the datasets library's Arrow cache; null = the Hugging Face default.
        title_separator: the string ``title_text`` joins title and body with.
    """
    check_text_field(text_field)
    on_invalid = check_on_invalid(on_invalid)
    cat_path = _path(catalog, "catalog")
    q_path = _path(queries, "queries")
    j_path = _path(judgments, "judgments", required=False)
    assert catalog is not None and queries is not None  # checked by _path

    cat_cols = tm.columns_from(tm.CatalogColumns, catalog, "catalog", SOURCE_KEYS)
    q_cols = tm.columns_from(tm.QueryColumns, queries, "queries", SOURCE_KEYS)
    src = read_file(cat_path, cat_cols.names(), catalog.get("format"), cache_dir=cache_dir)
    cat = tm.build_catalog(src, cat_cols, text_field, on_invalid)
    src = read_file(q_path, q_cols.names(), queries.get("format"), cache_dir=cache_dir)
    qs = tm.build_queries(src, q_cols, on_invalid)
    judged = None
    if j_path is not None:
        assert judgments is not None
        j_cols = tm.columns_from(tm.JudgmentColumns, judgments, "judgments", SOURCE_KEYS)
        src = read_file(j_path, j_cols.names(), judgments.get("format"), cache_dir=cache_dir)
        judged = tm.build_judgments(src, j_cols, qs, cat, on_invalid)
    name = name or Path(str(cat_path)).name.split(".")[0]
    return tm.from_built(name, cat, qs, judged, text_field, None, title_separator)
