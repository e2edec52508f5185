"""Read TREC-format files (as Terrier and trec_eval ship them): topics, qrels, ``<DOC>`` corpora.

Files are UTF-8 unless a byte-order mark says otherwise; malformed input raises ``DataError``
naming file and line.  The formats: docs/how-to/own-data.md ("TREC collections").

>>> parse_topics("<top>\\n<num> Number: 7\\n<title> red shoes\\n<desc> Description:\\n"
...              "Shoes that are red.\\n</top>\\n", "t.txt")[0]
Topic(id='7', title='red shoes', desc='Shoes that are red.', narr='')
>>> [(d.id, d.title, d.text) for d in parse_docs("<DOC><DOCNO> d1 </DOCNO><TITLE>Red</TITLE>"
...     "<TEXT><P>Shoes.</P></TEXT></DOC>", "c.txt")]
[('d1', 'Red', 'Shoes.')]
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from evalkit.data.readers import BOMS, stream_problem, wide_encoding
from evalkit.errors import DataError

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
    q, d, g = [], [], []
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
        q.append(parts[0])
        d.append(parts[2])
        g.append(parts[3])
    return q, d, g


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
