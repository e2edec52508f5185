"""Load a BEIR-layout folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

The layout of the ``BeIR/*`` datasets and ``tests/data``: each file may be ``.gz`` (the plain one
wins), the qrels have a header line.  For users: docs/how-to/own-data.md.

>>> import gzip, json, tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp()) / "tiny"
>>> (folder / "qrels").mkdir(parents=True)
>>> def write(name, lines):
...     with gzip.open(folder / name, "wt", encoding="utf-8") as fh:
...         fh.write("\\n".join(lines) + "\\n")
>>> write("corpus.jsonl.gz", [json.dumps({"_id": "d1", "title": "red shoe", "text": ""})])
>>> write("queries.jsonl.gz", [json.dumps({"_id": "q1", "text": "a red shoe"})])
>>> write("qrels/test.tsv.gz", ["query-id\\tcorpus-id\\tscore", "q1\\td1\\t1"])
>>> data = load_beir(folder, cache_dir=str(folder.parent / "hf-cache"))
>>> data.name, data.catalog.titles, data.judgments.qrels
('tiny', ['red shoe'], {'q1': {'d1': 1}})
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from evalkit.data import table_mapping as tm
from evalkit.data.readers import read_file
from evalkit.data.schema import EvalData, Queries, check_text_field
from evalkit.data.validate import check_on_invalid
from evalkit.errors import DataError

CORPUS = tm.CatalogColumns(id="_id", title="title", text="text")
QUERIES = tm.QueryColumns(id="_id", text="text")
QRELS = tm.JudgmentColumns(query_id="query-id", item_id="corpus-id", grade="score")


def _find(folder: Path, name: str) -> Path | None:
    return next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)


def _require(folder: Path, name: str, layout: str) -> Path:
    found = _find(folder, name)
    if found is None:
        raise DataError(
            f"{name} (or {name}.gz) not found in the BEIR folder",
            file=str(folder / name),
            expected=f"a BEIR folder ({layout})",
        )
    return found


def splits(folder: str | Path) -> list[str]:
    """The judgment splits of a BEIR folder: ``qrels/<split>.tsv`` or ``qrels/<split>.tsv.gz``."""
    qrels = Path(folder) / "qrels"
    names = [p.name for p in qrels.iterdir() if p.is_file()] if qrels.is_dir() else []
    stems = {
        n.removesuffix(".gz").removesuffix(".tsv") for n in names if n.endswith((".tsv", ".tsv.gz"))
    }
    return sorted(stems)


def load_beir(
    path: str | Path,
    split: str = "test",
    name: str | None = None,
    text_field: str = "title",
    on_invalid: str = "error",
    judged_only: bool = False,
    cache_dir: str | None = None,
    title_separator: str = " ",
) -> EvalData:
    """Load and validate a BEIR folder.

    Args:
        path: the BEIR folder, absolute or relative to the working directory.
        split: the judgments evaluated against: ``qrels/<split>.tsv``.
        name: the dataset's name in MLflow and reports; null = the folder name.
        text_field: what is embedded for each item: ``title``, ``text`` (body) or ``title_text``.
        on_invalid: bad rows: ``error`` stops naming file, row and field; ``skip`` drops them.
        judged_only: keep only the queries that have judgments in ``split``.
        cache_dir: the datasets library's Arrow cache; null = the Hugging Face default.
        title_separator: the string ``title_text`` joins title and body with.
    """
    check_text_field(text_field)
    on_invalid = check_on_invalid(on_invalid)
    folder = Path(path).expanduser()
    layout = "corpus.jsonl, queries.jsonl and qrels/<split>.tsv, each may be .gz"
    if not folder.is_dir():
        raise DataError(
            f"BEIR folder not found (resolved to {folder.resolve()})",
            file=str(path),
            expected=f"a folder with {layout}",
        )
    corpus_file = _require(folder, "corpus.jsonl", layout)
    queries_file = _require(folder, "queries.jsonl", layout)
    qrels_file = _find(folder / "qrels", f"{split}.tsv")
    if qrels_file is None:
        raise DataError(
            f"no judgments for split {split!r}; "
            f"available splits: {', '.join(splits(folder)) or 'none'}",
            file=str(folder / "qrels" / f"{split}.tsv"),
            expected="dataset.split naming a qrels/<split>.tsv (or .tsv.gz) file",
        )

    corpus = read_file(corpus_file, CORPUS.names(), "jsonl", cache_dir=cache_dir)
    catalog = tm.build_catalog(corpus, CORPUS, text_field, on_invalid)
    raw_queries = read_file(queries_file, QUERIES.names(), "jsonl", cache_dir=cache_dir)
    queries = tm.build_queries(raw_queries, QUERIES, on_invalid)
    qrels = read_file(qrels_file, QRELS.names(), "tsv", cache_dir=cache_dir)
    judgments = tm.build_judgments(qrels, QRELS, queries, catalog, on_invalid)
    if judged_only:
        only = _only(queries.value, set(judgments.value.qrels))
        queries = queries._replace(value=only, digest="")  # digest recomputed by assemble
    name = name or folder.resolve().name
    return tm.from_built(name, catalog, queries, judgments, text_field, None, title_separator)


def _only(queries: Queries, keep: set[str]) -> Queries:
    rows = [i for i, q in enumerate(queries.ids) if q in keep]

    def pick(values: list | None) -> list | None:
        return [values[i] for i in rows] if values is not None else None

    columns = {f: pick(getattr(queries, f)) for f in ("ids", "texts", "language", "frequency")}
    attributes = {k: pick(col) for k, col in queries.attributes.items()}
    return replace(queries, attributes=attributes, **columns)
