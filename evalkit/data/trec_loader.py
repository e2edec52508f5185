"""Load a TREC test collection (``dataset=trec``): topics, qrels and ``<DOC>`` corpora as Terrier
and trec_eval ship them, or an ``ir_datasets`` id, validated like every other loader's tables.

Files are UTF-8 unless a byte-order mark says otherwise; malformed input raises ``DataError``
naming file and line (the formats: docs/how-to/own-data.md, "TREC collections").
``ir_datasets`` (optional extra ``pip install -e ".[trec]"``): documents (``title`` if any,
``text`` else ``default_text()``), topics (TREC fields if any, else ``text``) and qrels; offline,
only local or already-downloaded datasets load.

>>> parse_topics("<top>\\n<num> Number: 7\\n<title> red shoes\\n<desc> Description:\\n"
...              "Shoes that are red.\\n</top>\\n", "t.txt")[0]
Topic(id='7', title='red shoes', desc='Shoes that are red.', narr='')
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from evalkit.data import table_mapping as tm
from evalkit.data.readers import BOMS, TableSource, stream_problem, wide_encoding
from evalkit.data.schema import EvalData, check_text_field
from evalkit.data.validate import check_on_invalid
from evalkit.errors import ConfigError, DataError

_DOC = re.compile(r"<DOC>(.*?)</DOC>", re.S | re.I)
_DOC_OPEN = re.compile(r"<DOC>", re.I)
_DOCNO = re.compile(r"<DOCNO>\s*(.*?)\s*</DOCNO>", re.S | re.I)
_TITLE = re.compile(r"<(TITLE|HEADLINE|HEAD)>(.*?)</\1>", re.S | re.I)
_TEXT = re.compile(r"<TEXT>(.*?)</TEXT>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>")

#: Elements that are not a document's text, dropped with their content from a ``<DOC>`` without
#: ``<TEXT>`` (whose body is read as the text), by the TREC collections that have them.
META_TAGS = (
    *("DOCNO", "DOCOLDNO", "DOCID"),  # ids (DOCOLDNO: WT10g, GOV; DOCID: WSJ, LA Times, FR)
    *("DOCHDR", "FILEID", "FIRST", "SECOND"),  # web crawl header (URL, HTTP); AP's routing
    *("DATE", "DD", "DATE_XML", "BYLINE", "DATELINE"),  # dates (DD: WSJ), bylines
    *("PROFILE", "PUB", "PAGE", "SO", "SECTION", "LENGTH"),  # FT, WSJ, LA Times bookkeeping
    *("FEEDNO", "FEEDURL", "BLOGHPNO", "BLOGHPURL", "PERMALINK"),  # Blogs06's feed fields
    *("SCRIPT", "STYLE"),  # in HTML bodies
)
_META = re.compile(r"<(" + "|".join(META_TAGS) + r")\b[^>]*>.*?</\1\s*>", re.S | re.I)
_TOP = re.compile(r"<top>(.*?)</top>", re.S | re.I)
_FIELD = re.compile(r"<(num|title|desc|narr)>(.*?)(?=<(?:/?[a-z]+)>|\Z)", re.S | re.I)
_LABELS = {"num": "Number:", "title": "Topic:", "desc": "Description:", "narr": "Narrative:"}


class Topic(NamedTuple):
    id: str
    title: str
    desc: str = ""
    narr: str = ""


class Doc(NamedTuple):
    id: str
    title: str
    text: str


def _clean(text: str) -> str:
    return " ".join(_TAG.sub(" ", text).split())


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _where(label: str, line: int) -> str:
    return f"{label}, line {line}"


def read_text(path: Path) -> str:
    """A file's text (``.gz`` decompressed): UTF-8, or what a byte-order mark announces."""
    label = str(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        damaged = stream_problem(path, label)
        raise damaged or DataError(f"cannot read the file: {exc}", file=label) from exc
    for bom, codec, name in BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"starts with a {name} byte-order mark but is not valid {name} "
                    f"(byte {exc.start + len(bom)}: {exc.reason})",
                    file=label,
                    expected=f"{name} text after the mark, or UTF-8",
                ) from exc
    found = wide_encoding(raw)
    if found is not None:
        raise DataError(
            f"the file is {found} without a byte-order mark (NUL bytes between the characters); "
            f"convert it: iconv -f {found.replace(' ', '')} -t UTF-8",
            file=label,
            expected="UTF-8 text, or UTF-16 / UTF-32 starting with a byte-order mark",
        )
    return raw.decode("utf-8", errors="replace")


def parse_topics(text: str, label: str) -> list[Topic]:
    """Topics from SGML ``<top>`` blocks or from ``qid<TAB>text`` lines (see module docstring)."""
    if re.search(r"<top>", text, re.I):
        return _sgml_topics(text, label)
    topics = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t", 1) if "\t" in line else line.strip().split(None, 1)
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise DataError(
                f"cannot read topic line {line.strip()[:60]!r}",
                file=_where(label, i),
                expected="<top> blocks, or one topic per line: qid<TAB>text",
            )
        topics.append(Topic(parts[0].strip(), " ".join(parts[1].split())))
    return topics


def _blocks(text: str, label: str, block: re.Pattern, opening: str) -> list[re.Match]:
    """The ``block`` matches of ``text``; ``DataError`` at an ``<opening>`` never closed."""
    blocks = list(block.finditer(text))
    opened = [m.start() for m in re.finditer(f"<{opening}>", text, re.I)]
    if len(opened) != len(blocks):
        closed = {b.start() for b in blocks}
        bad = next(p for p in opened if p not in closed)
        raise DataError(
            f"<{opening}> without a matching </{opening}>",
            file=_where(label, _line(text, bad)),
            expected=f"every <{opening}> closed by </{opening}>",
        )
    return blocks


def _sgml_topics(text: str, label: str) -> list[Topic]:
    topics = []
    for block in _blocks(text, label, _TOP, "top"):
        fields: dict[str, str] = {}
        for m in _FIELD.finditer(block.group(1)):
            name = m.group(1).lower()
            value = _clean(m.group(2))
            if value.startswith(_LABELS[name]):
                value = value[len(_LABELS[name]) :].strip()
            fields.setdefault(name, value)
        if not fields.get("num"):
            raise DataError(
                "topic without a number",
                file=_where(label, _line(text, block.start())),
                field="num",
                expected="<num> Number: <id> in every <top> block",
            )
        topics.append(Topic(fields["num"], *(fields.get(k, "") for k in ("title", "desc", "narr"))))
    return topics


def parse_qrels(text: str, label: str) -> tuple[list[str], list[str], list[str]]:
    """Columns (qid, docno, relevance) of a trec_eval qrels file; a malformed line is an error."""
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise DataError(
                f"{len(parts)} fields in {line.strip()[:60]!r}",
                file=_where(label, i),
                expected="4 whitespace-separated fields: qid iteration docid relevance",
            )
        rows.append(parts)
    return [r[0] for r in rows], [r[2] for r in rows], [r[3] for r in rows]


def parse_docs(text: str, label: str) -> Iterator[Doc]:
    """The ``<DOC>`` blocks of one corpus file."""
    if not _DOC_OPEN.search(text):
        raise DataError("no <DOC> blocks", file=label, expected="<DOC><DOCNO>id</DOCNO>...</DOC>")
    for block in _blocks(text, label, _DOC, "DOC"):
        body = block.group(1)
        docno = _DOCNO.search(body)
        if docno is None or not docno.group(1).strip():
            raise DataError(
                "document without a DOCNO",
                file=_where(label, _line(text, block.start())),
                field="DOCNO",
                expected="<DOCNO>id</DOCNO> in every <DOC>",
            )
        texts = [_clean(m.group(1)) for m in _TEXT.finditer(body)]
        if not texts:  # bare text in <DOC>: the body minus the metadata and title elements
            body = _META.sub(" ", body)
            texts = [_clean(_TITLE.sub(" ", body))]
        title = " ".join(_clean(m.group(2)) for m in _TITLE.finditer(body)).strip()
        yield Doc(_clean(docno.group(1)), title, " ".join(texts).strip())


def corpus_files(path: Path) -> list[Path]:
    """The corpus file, or every non-hidden file under the folder, in name order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(
            f"corpus not found (resolved to {path.resolve()})",
            file=str(path),
            expected="a TREC corpus file or a folder of them",
        )
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise DataError("the corpus folder has no files", file=str(path), expected="TREC files")
    return files


QUERY_FIELDS = ("title", "desc", "narr", "title_desc")
CORPUS = tm.CatalogColumns(id="docno", title="title", text="text")
QUERIES = tm.QueryColumns(id="qid", text="text")
QRELS = tm.JudgmentColumns(query_id="qid", item_id="docno", grade="rel")


def _doc(d: Any) -> Doc:
    text = getattr(d, "text", None)
    if text is None:
        text = d.default_text()
    return Doc(str(d.doc_id), str(getattr(d, "title", "") or ""), str(text or ""))


def _topic(q: Any) -> Topic:
    title = getattr(q, "title", None)
    if title is None:
        title = getattr(q, "text", None) or q.default_text()
    desc, narr = (str(getattr(q, f, "") or "") for f in ("description", "narrative"))
    return Topic(str(q.query_id), str(title or ""), desc, narr)


def read_ir_datasets(
    dataset_id: str,
) -> tuple[list[Doc], list[Topic], tuple[list[str], list[str], list[str]], tuple[str, str, str]]:
    """Documents, topics, qrels columns and source labels of an ir_datasets dataset."""
    try:
        import ir_datasets
    except ImportError as exc:
        raise ConfigError(
            'dataset.ir_datasets needs the ir_datasets package: pip install -e ".[trec]"'
        ) from exc
    try:
        ds = ir_datasets.load(dataset_id)
    except KeyError as exc:
        raise ConfigError(
            f"dataset.ir_datasets={dataset_id!r} is not a known ir_datasets id "
            "(see ir_datasets' catalogue, or register a local dataset)"
        ) from exc
    label = f"ir_datasets:{dataset_id}"
    for part in ("docs", "queries", "qrels"):
        if not getattr(ds, f"has_{part}")():
            raise DataError(
                f"ir_datasets dataset {dataset_id!r} has no {part}",
                file=label,
                expected="a dataset with docs, queries and qrels",
            )
    try:
        docs = [_doc(d) for d in ds.docs_iter()]
        topics = [_topic(q) for q in ds.queries_iter()]
        qrels = list(ds.qrels_iter())
        q, d, g = ([str(getattr(r, f)) for r in qrels] for f in ("query_id", "doc_id", "relevance"))
    except (OSError, RuntimeError) as exc:  # missing local file, failed download
        raise DataError(f"ir_datasets could not read {dataset_id!r}: {exc}", file=label) from exc
    return docs, topics, (q, d, g), (f"{label}/docs", f"{label}/queries", f"{label}/qrels")


def _query_text(t: Topic, query_field: str, separator: str) -> str:
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
        topic_list = parse_topics(read_text(t_path), str(t_path))
        judged = parse_qrels(read_text(q_path), str(q_path))
        files = corpus_files(c_path)
        docs = [d for f in files for d in parse_docs(read_text(f), str(f))]
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
