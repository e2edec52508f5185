"""Load a TREC test collection (``dataset=trec``) from TREC files (:mod:`evalkit.data.trec_files`)
or an ``ir_datasets`` id (:mod:`evalkit.data.irds`), validated like every other loader's tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from evalkit.data import table_mapping as tm
from evalkit.data import trec_files as tf
from evalkit.data.irds import read_ir_datasets
from evalkit.data.readers import TableSource
from evalkit.data.schema import EvalData
from evalkit.data.validate import check_on_invalid
from evalkit.errors import ConfigError, DataError

QUERY_FIELDS = ("title", "desc", "narr", "title_desc")
CORPUS = tm.CatalogColumns(id="docno", title="title", text="text")
QUERIES = tm.QueryColumns(id="qid", text="text")
QRELS = tm.JudgmentColumns(query_id="qid", item_id="docno", grade="rel")


def _query_text(t: tf.Topic, query_field: str, separator: str) -> str:
    if query_field == "title_desc":
        return separator.join(x for x in (t.title, t.desc) if x)
    return getattr(t, query_field)


def _file(path: str | None, what: str) -> Path:
    if not path:
        raise ConfigError(
            f"dataset.{what} is not set (dataset=trec needs topics, qrels and corpus)"
        )
    p = Path(path).expanduser()
    if what != "corpus" and not p.is_file():
        raise DataError(f"{what} file not found (resolved to {p.resolve()})", file=str(path))
    return p


def _source(columns: dict[str, list[str]], label: str) -> TableSource:
    return TableSource(
        pa.table({k: pa.array(v, pa.large_string()) for k, v in columns.items()}), label
    )


def load_trec(
    topics: str | None = None,
    qrels: str | None = None,
    corpus: str | None = None,
    name: str | None = None,
    query_field: str = "title",
    text_field: str = "title_text",
    title_separator: str = " ",
    on_invalid: str = "error",
    ir_datasets: str | None = None,
    cache_dir: str | None = None,
) -> EvalData:
    """Load and validate a TREC collection from files, or from ``ir_datasets`` by id.

    Args:
        topics: the topics file (``<top>`` blocks or ``qid<TAB>text`` lines).
        qrels: the qrels file (trec_eval's format).
        corpus: a ``<DOC>`` file or a folder of them (read recursively, ``.gz`` too).
        name: the dataset's name in MLflow and reports; null = the corpus name or the
            ir_datasets id.
        query_field: what a topic contributes as query text: ``title``, ``desc``, ``narr`` or
            ``title_desc``.
        text_field: what is embedded for each document: ``title``, ``text`` or ``title_text``.
        title_separator: the string ``title_text`` and ``title_desc`` join their parts with.
        on_invalid: bad rows: ``error`` stops naming the row; ``skip`` drops and counts them.
        ir_datasets: an ir_datasets id instead of the three files (optional extra ``trec``).
        cache_dir: accepted like the other loaders' (nothing is cached).
    """
    tm.check_text_field(text_field)
    on_invalid = check_on_invalid(on_invalid)
    if query_field not in QUERY_FIELDS:
        raise ConfigError(
            f"dataset.query_field={query_field!r} is unknown (expected {', '.join(QUERY_FIELDS)})"
        )
    if ir_datasets:
        docs, topic_list, judged, labels = read_ir_datasets(ir_datasets)
        name = name or ir_datasets
    else:
        t_path, q_path = _file(topics, "topics"), _file(qrels, "qrels")
        c_path = _file(corpus, "corpus")
        topic_list = tf.parse_topics(tf.read_text(t_path), str(t_path))
        judged = tf.parse_qrels(tf.read_text(q_path), str(q_path))
        files = tf.corpus_files(c_path)
        docs = [d for f in files for d in tf.parse_docs(tf.read_text(f), str(f))]
        labels = (str(c_path), str(t_path), str(q_path))
        name = name or c_path.resolve().name.split(".")[0]
    return _build(
        docs, topic_list, judged, labels, name, query_field, text_field, title_separator, on_invalid
    )


def _build(
    docs: Iterable[tf.Doc],
    topic_list: list[tf.Topic],
    judged: tuple[list[str], list[str], list[str]],
    labels: tuple[str, str, str],
    name: str,
    query_field: str,
    text_field: str,
    title_separator: str,
    on_invalid: str,
) -> EvalData:
    docs = list(docs)
    ids, titles, texts = ([d[i] for d in docs] for i in range(3))  # Doc: id, title, text
    cat_src = _source({"docno": ids, "title": titles, "text": texts}, labels[0])
    catalog = tm.build_catalog(cat_src, CORPUS, text_field, on_invalid)
    q_texts = [_query_text(t, query_field, title_separator) for t in topic_list]
    q_src = _source({"qid": [t.id for t in topic_list], "text": q_texts}, labels[1])
    queries = tm.build_queries(q_src, QUERIES, on_invalid)
    q, d, g = judged
    j_src = _source({"qid": q, "docno": d, "rel": g}, labels[2])
    judgments = tm.build_judgments(j_src, QRELS, queries, catalog, on_invalid)
    return tm.from_built(
        name, catalog, queries, judgments, text_field, title_separator=title_separator
    )
