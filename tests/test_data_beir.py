"""BEIR folders: the four collections in tests/data (gzip-compressed, read directly), checked
against an independent parse of the files (gzip + json / csv)."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from evalkit.data.beir import load_beir  # noqa: E402
from evalkit.data.schema import EvalData  # noqa: E402
from evalkit.errors import ConfigError, DataError  # noqa: E402
from evalkit.run.run_settings import split_dataset_config  # noqa: E402

from .testdata import DATA, unpack  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# tests/data/README.md: docs, queries, judged queries, qrels
COUNTS = {
    "adi": (82, 35, 35, 170),
    "cisi": (1460, 57, 50, 2492),
    "cranfield": (1400, 225, 225, 1612),
    "med": (1033, 30, 30, 696),
}


def _reference(folder: Path) -> tuple[dict, dict, dict]:
    """Independent parse with gzip + json / csv: corpus {id: (title, text)}, queries, qrels."""
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        corpus = {str(r["_id"]): (r["title"], r["text"]) for r in map(json.loads, fh)}
    with gzip.open(folder / "queries.jsonl.gz", "rt", encoding="utf-8") as fh:
        queries = {str(r["_id"]): r["text"] for r in map(json.loads, fh)}
    qrels: dict[str, dict[str, int]] = {}
    with gzip.open(folder / "qrels" / "test.tsv.gz", "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)
        for q, d, g in reader:
            qrels.setdefault(q, {})[d] = int(g)
    return corpus, queries, qrels


@pytest.fixture()
def cache(tmp_path: Path) -> str:
    return str(tmp_path / "hf-cache")


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_shared_collections_match_readme_and_files(name: str, cache: str) -> None:
    n_docs, n_queries, n_judged, n_qrels = COUNTS[name]
    kwargs = {"cranfield": {"on_invalid": "skip"}, "med": {"text_field": "text"}}.get(name, {})
    data = load_beir(DATA / name, cache_dir=cache, **kwargs)
    corpus, queries, qrels = _reference(DATA / name)

    assert isinstance(data, EvalData) and data.name == name
    assert len(data.catalog) + data.skipped.get("empty_title", 0) == n_docs == len(corpus)
    assert len(data.queries) == n_queries and len(data.judgments.qrels) == n_judged
    assert len(data.judgments) == n_qrels
    # content equals the independent parse, row for row
    assert dict(zip(data.catalog.ids, zip(data.catalog.titles, data.catalog.texts))) == {
        k: v for k, v in corpus.items() if k in set(data.catalog.ids)
    }
    assert data.catalog.ids == [k for k in corpus if k in set(data.catalog.ids)]
    assert dict(zip(data.queries.ids, data.queries.texts)) == queries
    assert data.judgments.qrels == qrels
    assert all(isinstance(g, int) and g >= 0 for j in qrels.values() for g in j.values())
    assert set(data.fingerprint) == {"catalog", "queries", "judgments", "dataset"}
    assert data.text_field == kwargs.get("text_field", "title")


def test_cranfield_empty_documents_fail_by_default_and_skip_keeps_their_judgments(
    cache: str,
) -> None:
    with pytest.raises(DataError) as err:
        load_beir(DATA / "cranfield", cache_dir=cache)
    e = err.value
    assert e.file.endswith("corpus.jsonl.gz") and e.row == 471 and e.field == "title"
    assert "2 of 1400 rows" in str(e) and "on_invalid=skip" in str(e)

    data = load_beir(DATA / "cranfield", on_invalid="skip", cache_dir=cache)
    assert data.skipped == {"empty_title": 2}
    assert "471" not in data.catalog.ids and "995" not in data.catalog.ids
    # doc 995 is judged relevant for query 125: it stays judged (unretrievable), as in trec_eval
    assert data.judgments.qrels["125"]["995"] == 2


def test_med_without_titles_points_to_text_field(cache: str) -> None:
    with pytest.raises(DataError) as err:
        load_beir(DATA / "med", cache_dir=cache)
    msg = str(err.value)
    assert err.value.row == 1 and err.value.field == "title"
    assert "corpus.jsonl" in msg and "dataset.text_field=text" in msg and "1033 of 1033" in msg
    with pytest.raises(DataError, match="every item row was skipped.*text_field=text"):
        load_beir(DATA / "med", on_invalid="skip", cache_dir=cache)
    data = load_beir(DATA / "med", text_field="title_text", cache_dir=cache)
    assert data.catalog.text_for("title_text") == data.catalog.texts


def test_judged_only_keeps_only_judged_queries(cache: str) -> None:
    full = load_beir(DATA / "cisi", cache_dir=cache)
    judged = load_beir(DATA / "cisi", judged_only=True, cache_dir=cache)
    assert len(full.queries) == 57 and len(judged.queries) == 50
    assert set(judged.queries.ids) == set(full.judgments.qrels)
    assert judged.fingerprint["queries"] != full.fingerprint["queries"]
    assert judged.fingerprint["catalog"] == full.fingerprint["catalog"]


def test_bad_folder_split_and_options(tmp_path: Path, cache: str) -> None:
    with pytest.raises(DataError, match="BEIR folder not found"):
        load_beir(tmp_path / "missing", cache_dir=cache)
    with pytest.raises(DataError, match="available splits: test") as err:
        load_beir(DATA / "adi", split="dev", cache_dir=cache)
    assert err.value.file.endswith("qrels/dev.tsv")
    (tmp_path / "nocorpus").mkdir()
    with pytest.raises(DataError, match=r"corpus.jsonl \(or corpus.jsonl.gz\) not found"):
        load_beir(tmp_path / "nocorpus", cache_dir=cache)
    with pytest.raises(ConfigError, match="on_invalid"):
        load_beir(DATA / "adi", on_invalid="ignore", cache_dir=cache)
    with pytest.raises(ConfigError, match="text_field"):
        load_beir(DATA / "adi", text_field="body", cache_dir=cache)


def test_gzip_and_plain_folders_load_the_same(tmp_path: Path, cache: str) -> None:
    """The shipped .gz files, a plain copy and a mix of both hold the same collection."""
    packed = load_beir(DATA / "cisi", cache_dir=cache)
    plain_folder = unpack("cisi", tmp_path / "cisi")
    plain = load_beir(plain_folder, cache_dir=cache)
    (plain_folder / "qrels" / "test.tsv").unlink()  # judgments compressed, the rest plain
    (plain_folder / "qrels" / "test.tsv.gz").write_bytes(
        (DATA / "cisi" / "qrels" / "test.tsv.gz").read_bytes()
    )
    mixed = load_beir(plain_folder, cache_dir=cache)
    for other in (plain, mixed):
        assert other.fingerprint == packed.fingerprint
        assert (
            other.catalog.ids == packed.catalog.ids and other.catalog.texts == packed.catalog.texts
        )
        assert other.judgments.qrels == packed.judgments.qrels
    assert packed.catalog.source.endswith("corpus.jsonl.gz")
    assert plain.catalog.source.endswith("corpus.jsonl")


def _gzip_lines(path: Path, edit) -> None:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        lines = fh.read().splitlines()
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(edit(lines)) + "\n")


def test_errors_in_gzip_files_name_the_file_and_row(tmp_path: Path, cache: str) -> None:
    folder = tmp_path / "adi"
    shutil.copytree(DATA / "adi", folder)
    _gzip_lines(folder / "qrels" / "test.tsv.gz", lambda lines: [*lines, "1\t1\tx"])
    with pytest.raises(DataError) as err:
        load_beir(folder, cache_dir=cache)
    assert err.value.file.endswith("qrels/test.tsv.gz") and err.value.row == 171
    assert err.value.field == "score" and "'x' is not an integer" in str(err.value)

    shutil.copy(DATA / "adi" / "qrels" / "test.tsv.gz", folder / "qrels" / "test.tsv.gz")
    _gzip_lines(folder / "corpus.jsonl.gz", lambda lines: [*lines[:2], "{oops", *lines[2:]])
    with pytest.raises(DataError) as err:
        load_beir(folder, cache_dir=cache)
    assert err.value.file.endswith("corpus.jsonl.gz") and err.value.row == 3
    assert "line 3 is not a JSON object" in str(err.value)

    with pytest.raises(DataError) as err:  # splits are listed from .tsv and .tsv.gz files
        load_beir(folder, split="train", cache_dir=cache)
    assert "available splits: test" in str(err.value)
    assert err.value.file.endswith("qrels/train.tsv")


def test_qrels_naming_unknown_documents(tmp_path: Path, cache: str) -> None:
    folder = unpack("adi", tmp_path / "adi")
    with open(folder / "qrels" / "test.tsv", "a", encoding="utf-8") as fh:
        fh.write("1\t9999\t1\n")
    with pytest.raises(DataError) as err:
        load_beir(folder, cache_dir=cache)
    assert err.value.file.endswith("test.tsv") and err.value.row == 171
    assert err.value.field == "corpus-id" and "'9999' is not in the catalog" in str(err.value)
    data = load_beir(folder, on_invalid="skip", cache_dir=cache)
    # skip mode keeps the judgment: relevant, never retrievable (as trec_eval counts it)
    assert data.skipped == {} and len(data.judgments) == 171
    assert data.judgments.qrels["1"]["9999"] == 1


def test_hydra_config_instantiates_with_relative_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The CLI contract: `evalkit dataset=beir dataset.path=<folder>` (relative to the cwd)."""
    monkeypatch.chdir(REPO)
    rel = os.path.relpath(DATA / "adi", REPO)
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            overrides=[
                "+dataset=beir",
                f"dataset.path={rel}",
                f"dataset.cache_dir={tmp_path}",
            ]
        )
    data = instantiate(cfg.dataset)
    assert isinstance(data, EvalData)
    assert (data.name, len(data.catalog), len(data.queries), len(data.judgments)) == (
        "adi",
        82,
        35,
        170,
    )


def test_beir_group_embeds_title_and_text_joined_like_beir(tmp_path: Path) -> None:
    """`dataset=beir` follows BEIR: title + " " + body; the separator is a logged setting that
    changes the embedded texts and the dataset fingerprint (only for title_text)."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "dataset=beir",
                f"dataset.path={DATA / 'adi'}",
                f"dataset.cache_dir={tmp_path}",
            ],
        )
        dotted = compose(
            "config",
            overrides=[
                "dataset=beir",
                f"dataset.path={DATA / 'adi'}",
                f"dataset.cache_dir={tmp_path}",
                "dataset.title_separator='. '",
            ],
        )
        titles = compose(
            "config",
            overrides=[
                "dataset=beir",
                f"dataset.path={DATA / 'adi'}",
                f"dataset.cache_dir={tmp_path}",
                "dataset.text_field=title",
            ],
        )
        demo = compose("config", overrides=[])
    assert demo.dataset.text_field == "title"  # catalogs keep titles
    # as the pipeline does: dataset.extra_judgments is evalkit's key, not the loader's
    data, dot, title = (
        instantiate(split_dataset_config(c.dataset)[0]) for c in (cfg, dotted, titles)
    )
    assert (data.text_field, data.title_separator) == ("title_text", " ")
    cat = data.catalog
    expected = [f"{t} {b}" if t and b else t or b for t, b in zip(cat.titles, cat.texts)]
    assert data.embedded_texts() == expected
    assert dot.embedded_texts()[0] == f"{cat.titles[0]}. {cat.texts[0]}"
    assert data.embedded_label() == "title + ' ' + text"
    assert dot.fingerprint["dataset"] != data.fingerprint["dataset"]
    assert dot.fingerprint["catalog"] == data.fingerprint["catalog"]
    assert title.embedded_texts() == cat.titles
