"""dataset.extra_judgments (evalkit/data/extra.py): a filled-in worklist merged into any dataset."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from evalkit.compare.worklist import COLUMNS, WORKLIST_FILE
from evalkit.data.beir import load_beir
from evalkit.data.extra import merge_extra_judgments
from evalkit.errors import DataError
from evalkit.run.run_settings import split_dataset_config

from .cli import run_evalkit


@pytest.fixture(scope="module")
def adi(shared_data):
    return load_beir(shared_data / "adi", text_field="title")


def write_csv(path, header, rows):
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def unjudged_pair(data, query="1"):
    judged = data.judgments.qrels[query]
    return query, next(d for d in data.catalog.ids if d not in judged)


def test_worklist_rows_merge_blank_grades_are_skipped(adi, tmp_path):
    q, d = unjudged_pair(adi)
    held = next(iter(adi.judgments.qrels[q].items()))  # (item, grade) already judged
    rows = [
        [q, "query text", d, "item text", "", "1", "0.5", "2", "B"],
        [q, "query text", held[0], "item", "3", "1", "0.1", str(held[1]), "B"],  # agrees
        ["2", "", adi.catalog.ids[0], "", "", "", "0.1", "", "B"],  # blank: not judged yet
        [q, "query text", d, "item text", "", "4", "0.2", "2", "C"],  # same pair, same grade
    ]
    path = write_csv(tmp_path / WORKLIST_FILE, COLUMNS, rows)
    merged = merge_extra_judgments(adi, path)
    assert merged.judgments.qrels[q][d] == 2
    assert len(merged.judgments) == len(adi.judgments) + 1
    assert merged.extra_judgments.added == 1
    assert merged.extra_judgments.agreeing == 2
    assert merged.extra_judgments.blank == 1
    assert merged.extra_judgments.params()["dataset.extra_judgments"] == str(path)
    assert merged.fingerprint["judgments"] != adi.fingerprint["judgments"]
    assert merged.fingerprint["dataset"] != adi.fingerprint["dataset"]
    for part in ("catalog", "queries"):
        assert merged.fingerprint[part] == adi.fingerprint[part]
    assert merged.judgments.source.endswith("," + str(path))
    assert adi.judgments.qrels[q].get(d) is None  # the loaded data is not changed in place


def test_nothing_graded_changes_nothing(adi, tmp_path):
    q, d = unjudged_pair(adi)
    path = write_csv(tmp_path / "w.csv", COLUMNS, [[q, "", d, "", "", "1", "0.5", "", "B"]])
    merged = merge_extra_judgments(adi, path)
    assert merged.judgments == adi.judgments and merged.fingerprint == adi.fingerprint
    assert (merged.extra_judgments.added, merged.extra_judgments.blank) == (0, 1)


@pytest.mark.parametrize("kind", ["tsv", "jsonl", "parquet", "beir-tsv"])
def test_plain_judgment_files(adi, tmp_path, kind):
    q, d = unjudged_pair(adi, "3")
    if kind == "tsv":
        path = tmp_path / "extra.tsv"
        path.write_text(f"item_id\tquery_id\tgrade\n{d}\t{q}\t1\n", encoding="utf-8")
    elif kind == "beir-tsv":
        path = tmp_path / "qrels.tsv"
        path.write_text(f"query-id\tcorpus-id\tscore\n{q}\t{d}\t1\n", encoding="utf-8")
    elif kind == "jsonl":
        path = tmp_path / "extra.jsonl"
        rows = [{"query_id": q, "item_id": d, "grade": 1}, {"query_id": q, "item_id": "1"}]
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    else:
        path = tmp_path / "extra.parquet"
        pq.write_table(
            pa.table({"query_id": [q, q], "item_id": [d, "1"], "grade": pa.array([1, None])}),
            path,
        )
    merged = merge_extra_judgments(adi, path)
    assert merged.judgments.qrels[q][d] == 1
    assert merged.extra_judgments.added == 1


def test_conflict_with_a_held_judgment_names_file_and_row(adi, tmp_path):
    q, d = unjudged_pair(adi)
    item, grade = next(iter(adi.judgments.qrels[q].items()))
    rows = [[q, "", d, "", "", "", "", "0", "B"], [q, "", item, "", "", "", "", grade + 1, "B"]]
    path = write_csv(tmp_path / WORKLIST_FILE, COLUMNS, rows)
    with pytest.raises(DataError) as err:
        merge_extra_judgments(adi, path)
    e = err.value
    assert (e.file, e.row, e.field) == (str(path), 2, "grade")
    assert f"graded {grade + 1} here but {grade}" in str(e)
    assert str(path) in str(e) and "row 2" in str(e)


def test_conflict_inside_the_file_names_both_rows(adi, tmp_path):
    q, d = unjudged_pair(adi)
    rows = [[q, d, "1"], [q, "1", ""], [q, d, "2"]]
    path = write_csv(tmp_path / "extra.csv", ["query_id", "item_id", "grade"], rows)
    with pytest.raises(DataError, match=r"row 3.*graded 2 here but 1 in row 1"):
        merge_extra_judgments(adi, path)


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (["no-such-query", "1", "1"], "query_id", "not among the evaluation's queries"),
        (["1", "no-such-item", "1"], "item_id", "not in the catalog"),
        (["1", "1", "relevant"], "grade", "not an integer >= 0"),
        (["1", "1", "-1"], "grade", "not an integer >= 0"),
        (["", "1", "1"], "query_id", "missing or empty"),
    ],
)
def test_bad_rows_name_the_row(adi, tmp_path, row, field, message):
    q, d = unjudged_pair(adi)
    path = write_csv(tmp_path / "extra.csv", ["query_id", "item_id", "grade"], [[q, d, "1"], row])
    with pytest.raises(DataError, match=message) as err:
        merge_extra_judgments(adi, path)
    assert (err.value.file, err.value.row, err.value.field) == (str(path), 2, field)


def test_missing_file_and_columns(adi, tmp_path):
    with pytest.raises(DataError, match="file not found"):
        merge_extra_judgments(adi, tmp_path / "nope.csv")
    path = write_csv(tmp_path / "x.csv", ["q", "doc", "rel"], [["1", "1", "1"]])
    with pytest.raises(DataError, match="columns query_id, item_id, grade"):
        merge_extra_judgments(adi, path)


def test_the_key_never_reaches_the_loader():
    cfg = OmegaConf.create(
        {
            "root": "x",
            "dataset": {"repo": "${root}", "p": {"path": "${..repo}"}, "extra_judgments": "f.csv"},
        }
    )
    node, extra = split_dataset_config(cfg.dataset)
    assert extra == "f.csv" and "extra_judgments" not in node
    assert node.p.path == "x" and "extra_judgments" in cfg.dataset
    node, extra = split_dataset_config(OmegaConf.create({"a": 1, "extra_judgments": None}).a)
    assert extra is None


def read_rows(path):
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def parent_run(db: str):
    client = MlflowClient(tracking_uri=db)
    exp = client.get_experiment_by_name("evalkit")
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string="tags.mlflow.parentRunId IS NULL",
        order_by=["attributes.start_time DESC"],
    )
    return client, runs[0]


def test_worklist_round_trip_through_the_cli(shared_data, shared_cache, tmp_path):
    """Write the worklist, fill in grades, rerun with dataset.extra_judgments: the judgments,
    the fingerprint and the metrics change, and the judged pairs leave the worklist."""
    common = [
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "dataset.text_field=title",
        "models=[use_m3,e5_small]",
        f"cache.dir={shared_cache}",
        "latency.probe=0",
        "compare.reindex=false",
        "compare.worklist_size=40",
    ]
    db = f"sqlite:///{tmp_path}/mlflow.db"
    first = run_evalkit(*common, f"tracking.uri={db}", work=tmp_path, out_name="first")
    assert first.returncode in (0, 3, 4), first.stderr[-2000:]
    worklist = first.out_dir / WORKLIST_FILE
    rows = read_rows(worklist)
    assert 0 < len(rows) <= 40
    assert f"judging worklist: {len(rows)} items -> {worklist}" in " ".join(first.stdout.split())
    client, run1 = parent_run(db)
    assert WORKLIST_FILE in [a.path for a in client.list_artifacts(run1.info.run_id)]
    # The team judges the first 15 rows: every one relevant (grade 1), the rest left blank.
    filled = tmp_path / "filled.csv"
    judged = {(r["query_id"], r["item_id"]) for r in rows[:15]}
    for r in rows:
        r["grade"] = "1" if (r["query_id"], r["item_id"]) in judged else ""
    write_csv(filled, COLUMNS, [[r[c] for c in COLUMNS] for r in rows])

    second = run_evalkit(
        *common,
        f"tracking.uri={db}",
        f"dataset.extra_judgments={filled}",
        work=tmp_path,
        out_name="second",
    )
    assert second.returncode in (0, 3, 4), second.stderr[-2000:]
    out = " ".join(second.stdout.split())
    assert f"extra judgments: {len(judged)} added from {filled}" in out
    client, run2 = parent_run(db)
    p1, p2 = run1.data.params, run2.data.params
    assert p2["dataset.extra_judgments"] == str(filled)
    assert int(p2["dataset.extra_judgments.added"]) == len(judged)
    assert int(p2["dataset.judgments"]) == int(p1["dataset.judgments"]) + len(judged)
    assert p2["dataset.fingerprint.judgments"] != p1["dataset.fingerprint.judgments"]
    assert p2["dataset.fingerprint.dataset"] != p1["dataset.fingerprint.dataset"]
    assert run2.data.metrics != run1.data.metrics
    second_pairs = {
        (r["query_id"], r["item_id"]) for r in read_rows(second.out_dir / WORKLIST_FILE)
    }
    assert not judged & second_pairs

    # A grade that contradicts ADI's own judgments: exit 1, one line naming the file and row.
    q, item = rows[-1]["query_id"], rows[-1]["item_id"]  # a fine row first
    held_q = "1"
    held_item = next(iter(load_beir(shared_data / "adi").judgments.qrels[held_q]))
    bad = write_csv(
        tmp_path / "bad.csv",
        ["query_id", "item_id", "grade"],
        [[q, item, "1"], [held_q, held_item, "0"]],
    )
    third = run_evalkit(
        *common, "tracking=none", f"dataset.extra_judgments={bad}", work=tmp_path, out_name="third"
    )
    assert third.returncode == 1
    assert f"{bad}, row 2, field 'grade'" in third.stderr
