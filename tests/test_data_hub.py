"""Hub loader, exercised on local folders laid out like Hub datasets (no network).

``load_dataset(<local folder>, name=..., split=...)`` resolves configs from the folder's README
YAML exactly as for a Hub id, so a BeIR/scifact-style pair of folders (corpus + queries configs,
plus a ``-qrels`` folder of TSV splits) covers the same code path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

import datasets  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from evalkit.data.beir import load_beir  # noqa: E402
from evalkit.data.hub import load_hub  # noqa: E402
from evalkit.errors import DataError  # noqa: E402

from .testdata import DATA, read_text  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

README = """---
configs:
- config_name: corpus
  data_files:
  - split: corpus
    path: corpus.jsonl
- config_name: queries
  data_files:
  - split: queries
    path: queries.jsonl
---
# ADI in the BeIR/* Hub layout (test fixture)
"""


@pytest.fixture()
def hub_like(tmp_path: Path) -> Path:
    """``<tmp>/adi`` (configs corpus, queries) and ``<tmp>/adi-qrels`` (splits test, train)."""
    repo = tmp_path / "adi"
    repo.mkdir()
    for name in ("corpus.jsonl", "queries.jsonl"):  # plain copies: some tests append rows
        (repo / name).write_text(read_text(DATA / "adi" / f"{name}.gz"), encoding="utf-8")
    (repo / "README.md").write_text(README, encoding="utf-8")
    qrels = tmp_path / "adi-qrels"
    qrels.mkdir()
    (qrels / "test.tsv").write_text(
        read_text(DATA / "adi" / "qrels" / "test.tsv.gz"), encoding="utf-8"
    )
    lines = (qrels / "test.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (qrels / "train.tsv").write_text("".join(lines[:11]), encoding="utf-8")
    return repo


def _specs(repo: Path) -> dict:
    return {
        "catalog": {"path": str(repo), "name": "corpus", "split": "corpus"},
        "queries": {"path": str(repo), "name": "queries", "split": "queries"},
        "judgments": {"path": f"{repo}-qrels", "split": "test"},
    }


def test_hub_layout_loads_like_the_beir_folder(hub_like: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "hf-cache")
    data = load_hub(**_specs(hub_like), cache_dir=cache)
    beir = load_beir(DATA / "adi", cache_dir=cache)
    assert data.name == str(hub_like)
    assert data.catalog.ids == beir.catalog.ids and data.catalog.titles == beir.catalog.titles
    assert data.catalog.texts == beir.catalog.texts
    assert data.queries.ids == beir.queries.ids and data.queries.texts == beir.queries.texts
    assert data.judgments.qrels == beir.judgments.qrels
    assert (len(data.catalog), len(data.queries), len(data.judgments)) == (82, 35, 170)
    assert data.fingerprint == beir.fingerprint  # same content, same fingerprint; no revision
    assert data.catalog.source == f"{hub_like} [corpus] split 'corpus'"


def test_other_split_and_no_judgments(hub_like: Path, tmp_path: Path) -> None:
    specs = _specs(hub_like)
    specs["judgments"]["split"] = "train"
    data = load_hub(**specs, cache_dir=str(tmp_path / "c"))
    assert len(data.judgments) == 10
    specs["judgments"] = {"path": None}
    assert load_hub(**specs, cache_dir=str(tmp_path / "c")).judgments is None


def test_unknown_split_config_and_column(hub_like: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "hf-cache")
    specs = _specs(hub_like)
    specs["judgments"]["split"] = "dev"
    with pytest.raises(DataError) as err:
        load_hub(**specs, cache_dir=cache)
    assert "adi-qrels split 'dev'" in err.value.file and "test" in str(err.value)

    specs = _specs(hub_like)
    specs["catalog"]["name"] = "documents"
    with pytest.raises(DataError, match="'documents' not found.*corpus"):
        load_hub(**specs, cache_dir=cache)

    specs = _specs(hub_like)
    specs["catalog"]["title"] = "headline"
    with pytest.raises(DataError) as err:
        load_hub(**specs, cache_dir=cache)
    assert err.value.field == "headline" and "'_id', 'title', 'text'" in str(err.value)

    specs = _specs(hub_like)
    specs["judgments"]["grade"] = "relevance"
    with pytest.raises(DataError) as err:
        load_hub(**specs, cache_dir=cache)
    assert err.value.field == "relevance" and "'query-id', 'corpus-id', 'score'" in str(err.value)


def test_bad_rows_name_the_split_and_row(hub_like: Path, tmp_path: Path) -> None:
    qrels = Path(f"{hub_like}-qrels") / "test.tsv"
    with open(qrels, "a", encoding="utf-8") as fh:
        fh.write("1\t17\tvery\n")
    with pytest.raises(DataError) as err:
        load_hub(**_specs(hub_like), cache_dir=str(tmp_path / "hf-cache"))
    assert err.value.row == 171 and err.value.field == "score"
    assert "adi-qrels split 'test'" in str(err.value) and "'very'" in str(err.value)


def test_tsv_ids_keep_their_spelling(hub_like: Path, tmp_path: Path) -> None:
    """Hub TSV splits are read as strings: an id '007' is not turned into 7."""
    corpus = hub_like / "corpus.jsonl"
    corpus.write_text(
        corpus.read_text(encoding="utf-8") + '{"_id": "007", "title": "bond", "text": "x"}\n',
        encoding="utf-8",
    )
    qrels = Path(f"{hub_like}-qrels") / "test.tsv"
    with open(qrels, "a", encoding="utf-8") as fh:
        fh.write("2\t007\t1\n")
    data = load_hub(**_specs(hub_like), cache_dir=str(tmp_path / "hf-cache"))
    assert data.judgments.qrels["2"]["007"] == 1


def test_resolved_revision_is_recorded(
    hub_like: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For a Hub id the builder's hash (the resolved commit) lands in the fingerprint dict."""
    real = datasets.load_dataset_builder
    hashes: dict[str, str] = {}

    def fake_hub(path: str, **kwargs):
        local = {"org/adi": str(hub_like), "org/adi-qrels": f"{hub_like}-qrels"}[path]
        builder = real(local, **kwargs)
        hashes[path] = builder.hash
        return builder

    monkeypatch.setattr(datasets, "load_dataset_builder", fake_hub)
    specs = _specs(hub_like)
    specs["catalog"]["path"] = specs["queries"]["path"] = "org/adi"
    specs["judgments"]["path"] = "org/adi-qrels"
    data = load_hub(**specs, cache_dir=str(tmp_path / "hf-cache"))
    assert data.name == "org/adi"
    assert data.fingerprint["catalog_revision"] == hashes["org/adi"]
    assert data.fingerprint["judgments_revision"] == hashes["org/adi-qrels"]
    content = {k: data.fingerprint[k] for k in ("catalog", "queries", "judgments", "dataset")}
    assert content == load_beir(DATA / "adi", cache_dir=str(tmp_path / "b")).fingerprint


def test_hydra_hub_config_with_one_repo_key(hub_like: Path, tmp_path: Path) -> None:
    """`evalkit dataset=hub dataset.repo=<id>` reads <id> (corpus, queries) and <id>-qrels."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            overrides=["+dataset=hub", f"dataset.repo={hub_like}", f"dataset.cache_dir={tmp_path}"]
        )
    data = instantiate(cfg.dataset)
    assert (len(data.catalog), len(data.queries), len(data.judgments)) == (82, 35, 170)
    assert data.name == str(hub_like)
