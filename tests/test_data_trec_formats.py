"""`dataset=trec` on files as users have them (issue 16, section 5).

- Corpora with the text straight inside ``<DOC>`` (no ``<TEXT>``), as Terrier's bundled
  collections (vaswani) and the web collections (raw HTML after ``<DOCHDR>``) ship them.
- Topics, qrels and corpus files in UTF-16 / UTF-32 with a byte-order mark, or UTF-8 with one;
  UTF-16 without a mark is refused with a message naming the encoding and the file.

Every fixture is written at test time; nothing outside the repository is read.
"""

from __future__ import annotations

import codecs
import gzip
from pathlib import Path

import pytest

from evalkit.data.trec_loader import load_trec, parse_docs
from evalkit.errors import DataError

from .cli import child_runs, run_evalkit

# Terrier's vaswani layout: <DOC>, <DOCNO>, then the abstract as bare text.
DOCS = {
    "1": "compact memories have flexible capacities a digital data storage system with "
    "capacity up to bits and random access is described",
    "2": "an electronic analogue computer for solving systems of linear equations "
    "mathematical derivation of the operating principle",
    "3": "electronic coordinate transformer circuit details are given for the construction "
    "of an electronic calculating unit",
    "4": "the british computer society a discussion of the needs of the computer industry",
    "5": "microwave measurement of the dielectric constant of liquids at high frequencies",
    "6": "dielectric properties of water and aqueous solutions measured with waveguides",
    "7": "transistor amplifier circuits for low noise audio frequencies",
    "8": "noise figure of transistor amplifiers at radio frequencies",
}
TOPICS = {
    "1": "MEASUREMENT OF DIELECTRIC CONSTANT OF LIQUIDS BY THE USE OF MICROWAVE TECHNIQUES",
    "2": "ANALOGUE COMPUTERS FOR SOLVING LINEAR EQUATIONS",
    "3": "NOISE IN TRANSISTOR AMPLIFIERS",
}
QRELS = [("1", "5"), ("1", "6"), ("2", "2"), ("3", "7"), ("3", "8")]


def bare_collection(out: Path, encoding: str = "utf-8", bom: bytes = b"") -> dict[str, Path]:
    """A vaswani-like TREC collection: bare-text <DOC>s, <top> topics, 4-column qrels."""
    out.mkdir(parents=True, exist_ok=True)
    corpus = "".join(f"<DOC>\n<DOCNO>{i}</DOCNO>\n{t}\n</DOC>\n" for i, t in DOCS.items())
    topics = "".join(
        f"<top>\n<num>{q}</num>\n<title>{t}</title>\n</top>\n" for q, t in TOPICS.items()
    )
    qrels = "".join(f"{q} 0 {d} 1\n" for q, d in QRELS)
    paths = {"topics": out / "query-text.trec", "qrels": out / "qrels", "corpus": out / "doc-text"}
    for part, text in (("topics", topics), ("qrels", qrels), ("corpus", corpus)):
        paths[part].write_bytes(bom + text.encode(encoding))
    return paths


def _load(paths: dict[str, Path], **kwargs):
    return load_trec(**{k: str(v) for k, v in paths.items()}, **kwargs)


@pytest.mark.parametrize("on_invalid", ["error", "skip"])
def test_bare_doc_text_is_the_document_text(tmp_path, on_invalid):
    data = _load(bare_collection(tmp_path), on_invalid=on_invalid)
    assert data.catalog.ids == list(DOCS)
    assert data.catalog.texts == list(DOCS.values())
    assert data.catalog.titles == [""] * len(DOCS)
    assert data.embedded_texts() == list(DOCS.values())  # title_text: the body alone
    assert data.queries.texts == list(TOPICS.values())
    assert sum(data.skipped.values()) == 0
    assert data.judgments.qrels == {"1": {"5": 1, "6": 1}, "2": {"2": 1}, "3": {"7": 1, "8": 1}}


def test_bare_doc_drops_metadata_elements_and_keeps_the_title():
    """A web-collection document (DOCOLDNO, DOCHDR, raw HTML) and an AP-style one without TEXT."""
    web = (
        "<DOC>\n<DOCNO>GX000-00-0000000</DOCNO>\n<DOCOLDNO>WTX001-B01-1</DOCOLDNO>\n"
        "<DOCHDR>\nhttp://www.example.gov/index.html\nHTTP/1.1 200 OK\nServer: Apache\n"
        "</DOCHDR>\n<html><head><title>Water quality</title>\n"
        "<script>var tracking = 1;</script><style>p {color: red}</style></head>\n"
        "<body><p>Drinking water <b>standards</b> for lead.</p></body></html>\n</DOC>\n"
        "<doc>\n<docno> AP880212-0001 </docno>\n<fileid>AP-NR-02-12-88 2344EST</fileid>\n"
        "<first>u i AM-Vietnam</first>\n<second>AM-Vietnam,0336</second>\n"
        "<head>Reports Say Fighting</head>\n<byline>By JOHN DOE</byline>\n"
        "<dateline>HANOI (AP) </dateline>\n<date>880212</date>\nFighting broke out on Friday.\n"
        "</doc>\n"
    )
    docs = list(parse_docs(web, "web.txt"))
    assert [(d.id, d.title, d.text) for d in docs] == [
        ("GX000-00-0000000", "Water quality", "Drinking water standards for lead."),
        ("AP880212-0001", "Reports Say Fighting", "Fighting broke out on Friday."),
    ]


def test_doc_with_text_element_reads_only_the_text_element():
    """With <TEXT> present nothing changes: what lies outside it is not text."""
    doc = "<DOC><DOCNO>d1</DOCNO><TITLE>Red</TITLE>stray words<TEXT>Shoes.</TEXT></DOC>"
    assert [(d.title, d.text) for d in parse_docs(doc, "c.txt")] == [("Red", "Shoes.")]


def test_bare_doc_with_nothing_but_its_docno_is_still_empty(tmp_path):
    paths = bare_collection(tmp_path)
    text = paths["corpus"].read_text(encoding="utf-8")
    paths["corpus"].write_text(
        text + "<DOC>\n<DOCNO>9</DOCNO>\n<DATE>1990</DATE>\n</DOC>\n", encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"doc-text, row 9.*empty"):
        _load(paths)
    data = _load(paths, on_invalid="skip")
    assert len(data.catalog) == len(DOCS) and sum(data.skipped.values()) == 1


ENCODINGS = [
    ("utf-8-bom", "utf-8", codecs.BOM_UTF8),
    ("utf-16-le", "utf-16-le", codecs.BOM_UTF16_LE),
    ("utf-16-be", "utf-16-be", codecs.BOM_UTF16_BE),
    ("utf-32-le", "utf-32-le", codecs.BOM_UTF32_LE),
]


@pytest.mark.parametrize(("label", "encoding", "bom"), ENCODINGS, ids=[e[0] for e in ENCODINGS])
def test_files_with_a_byte_order_mark_read_like_utf8(tmp_path, label, encoding, bom):
    """Topics, qrels and corpus with a byte-order mark give exactly the UTF-8 tables."""
    plain = _load(bare_collection(tmp_path / "plain"))
    marked = _load(bare_collection(tmp_path / label, encoding, bom))
    for part in ("catalog", "queries", "judgments"):
        assert marked.fingerprint[part] == plain.fingerprint[part], part
    assert marked.queries.ids == list(TOPICS)  # no BOM glued to the first id


def test_tab_topics_in_utf16_with_bom_keep_their_first_id(tmp_path):
    paths = bare_collection(tmp_path)
    lines = "".join(f"{q}\t{t}\n" for q, t in TOPICS.items())
    paths["topics"].write_bytes(codecs.BOM_UTF16_LE + lines.encode("utf-16-le"))
    data = _load(paths)
    assert data.queries.ids == list(TOPICS) and data.queries.texts == list(TOPICS.values())


def test_gzipped_corpus_in_utf16_with_bom(tmp_path):
    paths = bare_collection(tmp_path)
    gz = tmp_path / "doc-text.gz"
    raw = paths["corpus"].read_text(encoding="utf-8")
    gz.write_bytes(gzip.compress(codecs.BOM_UTF16_BE + raw.encode("utf-16-be")))
    data = _load({**paths, "corpus": gz})
    assert data.catalog.texts == list(DOCS.values())


@pytest.mark.parametrize(
    ("part", "encoding", "name"),
    [
        ("topics", "utf-16-le", "UTF-16 LE"),
        ("topics", "utf-16-be", "UTF-16 BE"),
        ("qrels", "utf-16-le", "UTF-16 LE"),
        ("corpus", "utf-32-le", "UTF-32 LE"),
    ],
)
def test_wide_encoding_without_a_mark_is_refused_naming_it(tmp_path, part, encoding, name):
    paths = bare_collection(tmp_path)
    paths[part].write_bytes(paths[part].read_text(encoding="utf-8").encode(encoding))
    with pytest.raises(DataError) as err:
        _load(paths)
    message = str(err.value)
    assert message.startswith(f"{paths[part]}: the file is {name} without a byte-order mark")
    assert f"iconv -f {name.replace(' ', '')} -t UTF-8" in message
    assert "\n" not in message and "\\x00" not in message


def test_a_broken_mark_is_named(tmp_path):
    paths = bare_collection(tmp_path)
    paths["topics"].write_bytes(codecs.BOM_UTF16_LE + b"<\x00t\x00o\x00p\x00>")  # odd length
    with pytest.raises(DataError, match="UTF-16 LE byte-order mark but is not valid UTF-16 LE"):
        _load(paths)


@pytest.mark.slow
def test_cli_evaluates_a_bare_doc_collection_in_utf16(tmp_path):
    """The real command on a Terrier-style collection whose topics are UTF-16 with a BOM."""
    paths = bare_collection(tmp_path / "vaswani")
    topics = paths["topics"].read_text(encoding="utf-8")
    paths["topics"].write_bytes(codecs.BOM_UTF16_LE + topics.encode("utf-16-le"))
    res = run_evalkit(
        "dataset=trec",
        *(f"dataset.{k}={v}" for k, v in paths.items()),
        "models=[use_m3]",
        "tracking.experiment=trec_bare",
        work=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "empty" not in res.stderr
    run = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "trec_bare")["use_m3"]
    expected = _load(paths).fingerprint["dataset"]
    assert run.data.params["dataset.fingerprint.dataset"] == expected
    assert run.data.metrics["queries_scored"] == 3
    assert 0.0 < run.data.metrics["ndcg_at_10"] <= 1.0
