"""`dataset=trec`: TREC topics, qrels and <DOC> corpora read directly (issue 9, item 13).

The fixtures are written at test time from tests/data/adi (BEIR layout, gzip) in the formats
Terrier and trec_eval ship: SGML topics, 4-column qrels, a folder of <DOC> files (one gzipped,
one in a sub-folder).  Reading them must give exactly the BEIR loader's tables: equal content
digests for catalog, queries and judgments.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from evalkit.data.beir import load_beir
from evalkit.data.trec_loader import load_trec
from evalkit.errors import DataError
from evalkit.run.run_settings import split_dataset_config

from .cli import REPO, child_runs, run_evalkit
from .testdata import DATA, read_jsonl, read_text


def write_trec(beir: Path, out: Path, topics_form: str = "sgml") -> dict[str, Path]:
    """ADI (BEIR layout) as a TREC collection under ``out``."""
    docs = read_jsonl(beir / "corpus.jsonl.gz")
    corpus = out / "corpus"
    (corpus / "sub").mkdir(parents=True)
    blocks = [
        f"<DOC>\n<DOCNO> {d['_id']} </DOCNO>\n<TITLE>{d['title']}</TITLE>\n"
        f"<TEXT>\n<P>{d['text']}</P>\n</TEXT>\n</DOC>\n"
        for d in docs
    ]
    half = len(blocks) // 2
    (corpus / "a.txt").write_text("".join(blocks[:half]), encoding="utf-8")
    (corpus / "sub" / "b.txt.gz").write_bytes(gzip.compress("".join(blocks[half:]).encode()))
    queries = read_jsonl(beir / "queries.jsonl.gz")
    if topics_form == "sgml":
        text = "".join(
            f"<top>\n<num> Number: {q['_id']}\n<title> {q['text']}\n\n<desc> Description:\n"
            f"About {q['_id']}.\n\n<narr> Narrative:\nAnything.\n</top>\n\n"
            for q in queries
        )
    else:
        text = "".join(f"{q['_id']}\t{q['text']}\n" for q in queries)
    (out / "topics.txt").write_text(text, encoding="utf-8")
    rows = read_text(beir / "qrels" / "test.tsv.gz").splitlines()[1:]
    qrels = "".join(f"{q} 0 {d} {g}\n" for q, d, g in (r.split("\t") for r in rows))
    (out / "qrels.txt").write_text(qrels, encoding="utf-8")
    return {"topics": out / "topics.txt", "qrels": out / "qrels.txt", "corpus": corpus}


@pytest.fixture(scope="module")
def adi_trec(tmp_path_factory) -> dict[str, Path]:
    return write_trec(DATA / "adi", tmp_path_factory.mktemp("adi-trec"))


def _same_tables(a, b) -> None:
    for part in ("catalog", "queries", "judgments"):
        assert a.fingerprint[part] == b.fingerprint[part], part


@pytest.mark.parametrize("form", ["sgml", "tab"])
def test_trec_files_read_exactly_like_the_beir_folder(tmp_path, form):
    paths = write_trec(DATA / "adi", tmp_path, form)
    trec = load_trec(**{k: str(v) for k, v in paths.items()}, on_invalid="skip")
    beir = load_beir(
        DATA / "adi", text_field="title_text", on_invalid="skip", cache_dir=str(tmp_path)
    )
    _same_tables(trec, beir)
    assert trec.fingerprint["dataset"] == beir.fingerprint["dataset"]
    assert trec.skipped == beir.skipped
    assert trec.name == "corpus" and len(trec.catalog) == 82 and len(trec.queries) == 35


def test_topic_fields_and_separator(adi_trec):
    desc = load_trec(
        **{k: str(v) for k, v in adi_trec.items()},
        query_field="title_desc",
        title_separator=" | ",
        on_invalid="skip",
    )
    assert desc.queries.texts[0].endswith(" | About 1.")
    assert desc.title_separator == " | "
    assert desc.embedded_texts()[0] == f"{desc.catalog.titles[0]} | {desc.catalog.texts[0]}"


BAD = [
    ("qrels", "1 0 17 1\n2 0 46\n", "qrels.txt, line 2", "qid iteration docid relevance"),
    ("topics", "<top>\n<title> no number\n</top>\n", "topics.txt, line 1", "num"),
    ("topics", "<top>\n<num> Number: 1\n<title> x\n", "topics.txt, line 1", "</top>"),
    ("topics", "1\tok\n2\n", "topics.txt, line 2", "qid<TAB>text"),
    ("corpus", "<DOC>\n<TITLE>x</TITLE>\n</DOC>\n", "a.txt, line 1", "DOCNO"),
    ("corpus", "<DOC><DOCNO>1</DOCNO></DOC>\n\n<DOC><DOCNO>2</DOCNO>\n", "a.txt, line 3", "</DOC>"),
]


@pytest.mark.parametrize(("part", "content", "where", "expected"), BAD)
def test_bad_trec_input_names_file_and_line(tmp_path, part, content, where, expected):
    paths = write_trec(DATA / "adi", tmp_path)
    target = paths["corpus"] / "a.txt" if part == "corpus" else paths[part]
    target.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_trec(**{k: str(v) for k, v in paths.items()}, on_invalid="skip")
    message = str(err.value)
    assert where in message and expected in message and "\n" not in message


def test_trec_config_group_composes(adi_trec):
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["dataset=trec", *(f"dataset.{k}={v}" for k, v in adi_trec.items())],
        )
    assert cfg.dataset.text_field == "title_text" and cfg.dataset.title_separator == " "
    data = instantiate(split_dataset_config(cfg.dataset)[0], on_invalid="skip")
    assert len(data.catalog) == 82


def test_ir_datasets_adapter_on_local_files(adi_trec, tmp_path, monkeypatch):
    """A locally registered ir_datasets dataset (TREC formats, local files) reads like the files."""
    ir_datasets = pytest.importorskip("ir_datasets", reason='needs pip install -e ".[trec]"')
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TrecDocs, TrecQrels, TrecQueries
    from ir_datasets.util import LocalDownload

    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "irds"))
    name = f"evalkit-test/adi-{tmp_path.name}"
    ir_datasets.registry.register(
        name,
        Dataset(
            TrecDocs(
                LocalDownload(adi_trec["corpus"]),
                path_globs=["**/*.txt", "**/*.gz"],
                parser="tut",
                docstore_path=str(tmp_path / "docstore"),
            ),
            TrecQueries(LocalDownload(adi_trec["topics"])),
            TrecQrels(LocalDownload(adi_trec["qrels"]), {1: "relevant"}),
        ),
    )
    via = load_trec(ir_datasets=name, on_invalid="skip")
    files = load_trec(**{k: str(v) for k, v in adi_trec.items()}, on_invalid="skip")
    assert via.name == name
    assert sorted(via.catalog.ids) == sorted(files.catalog.ids)
    assert via.queries.texts == files.queries.texts
    assert via.judgments.qrels == files.judgments.qrels


@pytest.mark.slow
def test_cli_evaluates_a_trec_collection(adi_trec, tmp_path, shared_cache):
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=trec",
        *(f"dataset.{k}={v}" for k, v in adi_trec.items()),
        "dataset.on_invalid=skip",
        "models=[use_m3]",
        "tracking.experiment=trec",
        work=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    run = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "trec")["use_m3"]
    beir = load_beir(
        DATA / "adi", text_field="title_text", on_invalid="skip", cache_dir=str(tmp_path / "hf")
    )
    assert run.data.params["dataset.fingerprint.dataset"] == beir.fingerprint["dataset"]
    assert run.data.params["dataset.title_separator"] == " "
    assert 0.0 < run.data.metrics["ndcg_at_10"] <= 1.0
