"""Read a test collection through ``ir_datasets`` (optional extra ``pip install -e ".[trec]"``).

``dataset=trec dataset.ir_datasets=<id>`` (e.g. ``vaswani``): documents (``title`` if any,
``text`` else ``default_text()``), topics (TREC fields if any, else ``text``) and qrels as
plain records; offline, only local or already-downloaded datasets load.
"""

from __future__ import annotations

from typing import Any

from evalkit.data.trec_files import Doc, Topic
from evalkit.errors import ConfigError, DataError


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


def _doc(d: Any) -> Doc:
    text = getattr(d, "text", None)
    if text is None:
        text = d.default_text()
    return Doc(str(d.doc_id), str(getattr(d, "title", "") or ""), str(text or ""))


def _topic(q: Any) -> Topic:
    title = getattr(q, "title", None)
    if title is None:
        title = getattr(q, "text", None) or q.default_text()
    return Topic(
        str(q.query_id),
        str(title or ""),
        str(getattr(q, "description", "") or ""),
        str(getattr(q, "narrative", "") or ""),
    )


def read_ir_datasets(
    dataset_id: str,
) -> tuple[list[Doc], list[Topic], tuple[list[str], list[str], list[str]], tuple[str, str, str]]:
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
