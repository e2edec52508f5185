"""Load a catalog, queries and judgments from Hugging Face Hub datasets (or local dataset folders).

Each table names its dataset and the column mapping of :mod:`evalkit.data.tabular`, with BEIR's
column names as defaults.  Usage: docs/how-to/own-data.md, ``conf/dataset/hub.yaml``.

>>> import tempfile  # a local folder goes through the same code path as a Hub id
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> for sub, line in [("corpus", '{"_id": "d1", "title": "red shoe", "text": ""}'),
...                   ("queries", '{"_id": "q1", "text": "shoe"}')]:
...     (d / sub).mkdir()
...     _ = (d / sub / "part.jsonl").write_text(line + "\\n")
>>> data = load_hub(catalog={"path": str(d / "corpus"), "split": "train"},
...                 queries={"path": str(d / "queries"), "split": "train"})
>>> data.catalog.ids, data.queries.texts, "catalog_revision" in data.fingerprint
(['d1'], ['shoe'], False)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalkit.data import table_mapping as tm
from evalkit.data.readers import read_hub
from evalkit.data.schema import EvalData, check_text_field
from evalkit.data.validate import check_on_invalid
from evalkit.errors import ConfigError

SOURCE_KEYS = ("path", "name", "split", "revision", "data_dir")
BEIR_CATALOG = {"id": "_id", "title": "title", "text": "text"}
BEIR_QUERIES = {"id": "_id", "text": "text"}
BEIR_QRELS = {"query_id": "query-id", "item_id": "corpus-id", "grade": "score"}


def _read(spec: Mapping[str, Any], columns: list[str], what: str, cache_dir: str | None):
    if not spec.get("path"):
        raise ConfigError(f"dataset.{what}.path is not set (expected a Hub dataset id or folder)")
    if not spec.get("split"):
        raise ConfigError(f"dataset.{what}.split is not set (e.g. corpus, queries, test)")
    options = {k: spec.get(k) for k in ("name", "revision", "data_dir")}
    return read_hub(
        str(spec["path"]), columns, split=str(spec["split"]), cache_dir=cache_dir, **options
    )


def _with_defaults(spec: Mapping[str, Any] | None, defaults: dict[str, str]) -> dict[str, Any]:
    return {**defaults, **{k: val for k, val in dict(spec or {}).items() if val is not None}}


def load_hub(
    catalog: Mapping[str, Any],
    queries: Mapping[str, Any],
    judgments: Mapping[str, Any] | None = None,
    name: str | None = None,
    repo: str | None = None,
    text_field: str = "title",
    on_invalid: str = "error",
    cache_dir: str | None = None,
    title_separator: str = " ",
) -> EvalData:
    """Load and validate catalog / queries / judgments from Hub datasets.

    Args:
        catalog: the catalog table: its dataset (``path``, ``name``, ``split``, ...) and columns.
        queries: the queries table: its dataset and column names.
        judgments: the judgments table: its dataset and column names; no ``path`` = no judgments.
        catalog.path, queries.path, judgments.path (string): a Hub id or a local dataset folder.
        catalog.name, queries.name, judgments.name (string or null): the dataset config ("subset").
        catalog.split, queries.split, judgments.split (string): the split read.
        catalog.revision, queries.revision, judgments.revision (string or null): branch/tag/commit.
        catalog.data_dir, queries.data_dir, judgments.data_dir (string or null): a repo folder.
        name: the dataset's name in MLflow and reports; null = ``repo``, else the catalog path.
        repo: the dataset id the tables interpolate (BEIR: ``<repo>`` and ``<repo>-qrels``).
        text_field: what is embedded for each item: ``title``, ``text`` or ``title_text``.
        on_invalid: bad rows: ``error`` stops naming the row; ``skip`` drops and counts them.
        cache_dir: the datasets library's cache; null = the Hugging Face default.
        title_separator: the string ``title_text`` joins title and body with.
    """
    check_text_field(text_field)
    on_invalid = check_on_invalid(on_invalid)
    cat_spec = _with_defaults(catalog, BEIR_CATALOG)
    q_spec = _with_defaults(queries, BEIR_QUERIES)
    cat_cols = tm.columns_from(tm.CatalogColumns, cat_spec, "catalog", SOURCE_KEYS)
    q_cols = tm.columns_from(tm.QueryColumns, q_spec, "queries", SOURCE_KEYS)

    src_c = _read(cat_spec, cat_cols.names(), "catalog", cache_dir)
    cat = tm.build_catalog(src_c, cat_cols, text_field, on_invalid)
    src_q = _read(q_spec, q_cols.names(), "queries", cache_dir)
    qs = tm.build_queries(src_q, q_cols, on_invalid)
    revisions = {"catalog": src_c.revision, "queries": src_q.revision}
    judged = None
    if judgments is not None and judgments.get("path"):
        j_spec = _with_defaults(judgments, BEIR_QRELS)
        j_cols = tm.columns_from(tm.JudgmentColumns, j_spec, "judgments", SOURCE_KEYS)
        src_j = _read(j_spec, j_cols.names(), "judgments", cache_dir)
        judged = tm.build_judgments(src_j, j_cols, qs, cat, on_invalid)
        revisions["judgments"] = src_j.revision
    name = name or repo or str(cat_spec["path"])
    return tm.from_built(name, cat, qs, judged, text_field, revisions, title_separator)
