"""Load a TREC test collection (``dataset=trec``) from TREC files (:mod:`evalkit.data.trec_files`)
or an ``ir_datasets`` id, validated like every other loader's tables.

``ir_datasets`` (optional extra ``pip install -e ".[trec]"``): documents (``title`` if any,
``text`` else ``default_text()``), topics (TREC fields if any, else ``text``) and qrels; offline,
only local or already-downloaded datasets load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from evalkit.data import table_mapping as tm
from evalkit.data import trec_files as tf
from evalkit.data.readers import TableSource
from evalkit.data.schema import EvalData, check_text_field
from evalkit.data.validate import check_on_invalid
from evalkit.errors import ConfigError, DataError

QUERY_FIELDS = ("title", "desc", "narr", "title_desc")
CORPUS = tm.CatalogColumns(id="docno", title="title", text="text")
QUERIES = tm.QueryColumns(id="qid", text="text")
QRELS = tm.JudgmentColumns(query_id="qid", item_id="docno", grade="rel")


def _load(dataset_id: str) -> Any:
    try:
        import ir_datasets
    except ImportError as exc:
        raise ConfigError(
            'dataset.ir_datasets needs the ir_datasets package: pip install -e ".[trec]"'
        ) from exc
    try:
        return ir_datasets.load(dataset_id)
    except KeyError as exc:
        raise ConfigError(
            f"dataset.ir_datasets={dataset_id!r} is not a known ir_datasets id "
            "(see ir_datasets' catalogue, or register a local dataset)"
        ) from exc


def _doc(d: Any) -> tf.Doc:
    text = getattr(d, "text", None)
    if text is None:
        text = d.default_text()
    return tf.Doc(str(d.doc_id), str(getattr(d, "title", "") or ""), str(text or ""))


def _topic(q: Any) -> tf.Topic:
    title = getattr(q, "title", None)
    if title is None:
        title = getattr(q, "text", None) or q.default_text()
    return tf.Topic(
        str(q.query_id),
        str(title or ""),
        str(getattr(q, "description", "") or ""),
        str(getattr(q, "narrative", "") or ""),
    )


def read_ir_datasets(
    dataset_id: str,
) -> tuple[
    list[tf.Doc], list[tf.Topic], tuple[list[str], list[str], list[str]], tuple[str, str, str]
]:
    """Documents, topics, qrels columns and source labels of an ir_datasets dataset."""
    ds = _load(dataset_id)
    for part in ("docs", "queries", "qrels"):
        if not getattr(ds, f"has_{part}")():
            raise DataError(
                f"ir_datasets dataset {dataset_id!r} has no {part}",
                file=f"ir_datasets:{dataset_id}",
                expected="a dataset with docs, queries and qrels",
            )
    try:
        docs = [_doc(d) for d in ds.docs_iter()]
        topics = [_topic(q) for q in ds.queries_iter()]
        q, d, g = [], [], []
        for r in ds.qrels_iter():
            q.append(str(r.query_id))
            d.append(str(r.doc_id))
            g.append(str(r.relevance))
    except (OSError, RuntimeError) as exc:  # missing local file, failed download
        raise DataError(
            f"ir_datasets could not read {dataset_id!r}: {exc}", file=f"ir_datasets:{dataset_id}"
        ) from exc
    label = f"ir_datasets:{dataset_id}"
    return docs, topics, (q, d, g), (f"{label}/docs", f"{label}/queries", f"{label}/qrels")


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
        name: the dataset's name in MLflow and reports; null = the corpus or ir_datasets id.
        query_field: a topic's query text: ``title``, ``desc``, ``narr`` or ``title_desc``.
        text_field: what is embedded for each document: ``title``, ``text`` or ``title_text``.
        title_separator: the string ``title_text`` and ``title_desc`` join their parts with.
        on_invalid: bad rows: ``error`` stops naming the row; ``skip`` drops and counts them.
        ir_datasets: an ir_datasets id instead of the three files (optional extra ``trec``).
        cache_dir: accepted like the other loaders' (nothing is cached).
    """
    check_text_field(text_field)
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
    ids, titles, texts = ([d[i] for d in docs] for i in range(3))  # Doc: id, title, text
    cat_src = _source({"docno": ids, "title": titles, "text": texts}, labels[0])
    catalog = tm.build_catalog(cat_src, CORPUS, text_field, on_invalid)
    q_texts = [_query_text(t, query_field, title_separator) for t in topic_list]
    q_src = _source({"qid": [t.id for t in topic_list], "text": q_texts}, labels[1])
    queries = tm.build_queries(q_src, QUERIES, on_invalid)
    j_src = _source(dict(zip(("qid", "docno", "rel"), judged)), labels[2])
    judgments = tm.build_judgments(j_src, QRELS, queries, catalog, on_invalid)
    return tm.from_built(name, catalog, queries, judgments, text_field, None, title_separator)
