"""Click-log ingestion: both shapes, every bad input's error message, skip mode, text-only logs,
the warning for (query, item) pairs repeated in an aggregated log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalkit.clicks.ingest import ClickColumns, load_click_log
from evalkit.errors import ConfigError, DataError

CATALOG = ["d1", "d2", "d3"]
QUERIES = ["q1", "q2"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def events(**override) -> list[dict]:
    rows = [
        {"query_id": "q1", "item_id": "d1", "position": 1, "clicked": 1, "session_id": "s1"},
        {"query_id": "q1", "item_id": "d2", "position": 2, "clicked": 0, "session_id": "s1"},
        {"query_id": "q1", "item_id": "d1", "position": 2, "clicked": 0, "session_id": "s2"},
        {"query_id": "q2", "item_id": "d3", "position": 1, "clicked": 1, "session_id": "s3"},
    ]
    for k, v in override.items():
        row, field = k.split("__")
        rows[int(row[1:])][field] = v
    return rows


def load(path, **kw):
    kw.setdefault("catalog_ids", CATALOG)
    kw.setdefault("query_ids", QUERIES)
    return load_click_log(path, **kw)


def test_event_log_aggregates_pairs_and_positions(tmp_path):
    log, new = load(write_jsonl(tmp_path / "c.jsonl", events()), shape="event")
    assert new == {}
    assert log.pairs() == [("q1", "d1"), ("q1", "d2"), ("q2", "d3")]
    assert log.clicks.tolist() == [1.0, 0.0, 1.0]
    assert log.impressions.tolist() == [2.0, 1.0, 1.0]
    assert log.mean_position.tolist() == [1.5, 2.0, 1.0]
    assert log.measure == "click_rate" and not log.simulated
    p = log.positions
    assert list(
        zip(p.pair.tolist(), p.position.tolist(), p.impressions.tolist(), p.clicks.tolist())
    ) == [
        (0, 1, 1.0, 1.0),
        (0, 2, 1.0, 0.0),
        (1, 2, 1.0, 0.0),
        (2, 1, 1.0, 1.0),
    ]
    np.testing.assert_allclose(log.rate(), [0.5, 0.0, 1.0])


def test_a_zero_based_log_reads_with_position_base_0(tmp_path):
    """Issue 26: a log counting positions from 0 is named as such, and position_base=0 reads
    it as the same log as its 1-based copy."""
    zero = [{**r, "position": r["position"] - 1} for r in events()]
    path = write_jsonl(tmp_path / "zero.jsonl", zero)
    with pytest.raises(DataError, match=r"positions look 0-based .* clicks.position_base=0"):
        load(path, shape="event")
    log, _ = load(path, shape="event", position_base=0)
    want, _ = load(write_jsonl(tmp_path / "one.jsonl", events()), shape="event")
    assert log.pairs() == want.pairs()
    assert log.mean_position.tolist() == want.mean_position.tolist()
    assert log.positions.position.tolist() == want.positions.position.tolist()
    with pytest.raises(ConfigError, match="clicks.position_base=2"):
        load(path, shape="event", position_base=2)


def test_csv_parquet_tsv_and_renamed_columns_give_the_same_log(tmp_path):
    df = pd.DataFrame(events()).rename(
        columns={"query_id": "qid", "item_id": "doc", "clicked": "click"}
    )
    df["click"] = df["click"].astype(bool)
    df.to_csv(tmp_path / "c.csv", index=False)
    df.to_parquet(tmp_path / "c.parquet")
    df.to_csv(tmp_path / "c.tsv", index=False, sep="\t")
    cols = {"query_id": "qid", "item_id": "doc", "clicked": "click"}
    logs = [
        load(tmp_path / f"c.{ext}", shape="event", columns=cols)[0]
        for ext in ("csv", "parquet", "tsv")
    ]
    for log in logs:
        assert log.pairs() == [("q1", "d1"), ("q1", "d2"), ("q2", "d3")]
        assert log.clicks.tolist() == [1.0, 0.0, 1.0]
    # The content digest (for EvalData.fingerprint) ignores the file format, row order and path.
    assert len({log.digest() for log in logs}) == 1
    shuffled = tmp_path / "shuffled.parquet"
    df.iloc[::-1].to_parquet(shuffled)
    assert load(shuffled, shape="event", columns=cols)[0].digest() == logs[0].digest()
    df.loc[0, "click"] = False
    df.to_parquet(shuffled)
    assert load(shuffled, shape="event", columns=cols)[0].digest() != logs[0].digest()


def test_aggregated_log_with_impressions_and_duplicates(tmp_path):
    rows = [
        {"query_id": "q1", "item_id": "d1", "clicks": 3, "impressions": 10, "avg_position": 1.0},
        {"query_id": "q1", "item_id": "d1", "clicks": 1, "impressions": 10, "avg_position": 3.0},
        {"query_id": "q1", "item_id": "d2", "clicks": 0, "impressions": 5, "avg_position": 2.0},
    ]
    log, _ = load(write_jsonl(tmp_path / "a.jsonl", rows), shape="aggregated")
    assert log.measure == "click_rate" and log.positions is None
    assert log.clicks.tolist() == [4.0, 0.0] and log.impressions.tolist() == [20.0, 5.0]
    assert log.mean_position.tolist() == [2.0, 2.0]


def test_aggregated_log_without_impressions_is_click_share(tmp_path):
    rows = [
        {"query_id": "q1", "item_id": "d1", "clicks": 3, "avg_position": 1.2},
        {"query_id": "q1", "item_id": "d2", "clicks": 1, "avg_position": 2.0},
    ]
    log, _ = load(write_jsonl(tmp_path / "a.jsonl", rows), shape="aggregated")
    assert log.impressions is None and log.measure == "click_share"
    assert log.measure_label == "click share"
    assert log.rate().tolist() == [0.75, 0.25]


def test_new_queries_take_their_text_from_the_log(tmp_path):
    rows = events() + [
        {
            "query_id": "q7",
            "query": "  wing flutter ",
            "item_id": "d2",
            "position": 1,
            "clicked": 1,
        },
        {"query_id": "q7", "query": "", "item_id": "d1", "position": 2, "clicked": 0},
    ]
    log, new = load(write_jsonl(tmp_path / "c.jsonl", rows), shape="event")
    assert new == {"q7": "wing flutter"}
    assert ("q7", "d2") in log.pairs()


def test_text_only_log_is_matched_to_the_query_table_by_text(tmp_path):
    rows = [
        {"query": "red shoes", "item_id": "d1", "position": 1, "clicked": 1},
        {"query": "blue hat", "item_id": "d2", "position": 1, "clicked": 0},
    ]
    log, new = load(
        write_jsonl(tmp_path / "c.jsonl", rows),
        shape="event",
        query_ids=["q1"],
        query_texts=["red shoes"],
    )
    ((new_id, text),) = new.items()
    assert text == "blue hat" and new_id.startswith("log-")
    assert sorted(log.pairs()) == sorted([("q1", "d1"), (new_id, "d2")])


def test_rows_are_numbered_per_file_across_several_files(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", events())
    b = write_jsonl(tmp_path / "b.jsonl", events(r1__position=0))
    with pytest.raises(DataError) as err:
        load([a, b], shape="event")
    assert str(err.value).startswith(f"{b}, row 2, field 'position'")


# --- every bad input has a clear message ------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "shape", "expected"),
    [
        (
            [{"query_id": "q1", "item_id": "d1", "clicks": -1, "impressions": 4}],
            "aggregated",
            "row 1, field 'clicks': count is negative (expected a click count >= 0)",
        ),
        (
            [
                {"query_id": "q1", "item_id": "d1", "clicks": 1, "impressions": 4},
                {"query_id": "q1", "item_id": "d2", "clicks": 1, "impressions": -4},
            ],
            "aggregated",
            "row 2, field 'impressions': count is negative (expected an impression count >= 0)",
        ),
        (
            [
                {"query_id": "q1", "item_id": "d1", "clicks": 1, "impressions": 4},
                {"query_id": "q1", "item_id": "d2", "clicks": 5, "impressions": 4},
            ],
            "aggregated",
            "row 2, field 'clicks': clicks exceed impressions (expected clicks <= impressions)",
        ),
        (
            [{"query_id": "q1", "item_id": "d1", "clicks": 1, "avg_position": 0.5}],
            "aggregated",
            "row 1, field 'avg_position': average position is below 1 (expected an average "
            "position >= 1 (1 = top))",
        ),
        (
            events(r2__position=0),
            "event",
            "row 3, field 'position': positions look 0-based (a position 0): add 1, or set "
            "clicks.position_base=0 (expected an integer position >= 1 (1 = top))",
        ),
        (
            events(r1__position=1.5),
            "event",
            "row 2, field 'position': position must be a whole number >= 1",
        ),
        (
            events(r3__item_id="d99"),
            "event",
            "row 4, field 'item_id': item id is not in the catalog (expected a catalog item id)",
        ),
        (
            events(r3__query_id="q404"),
            "event",
            "row 4, field 'query': query id is not in the query table and the log gives no text "
            "for it (expected a query-table id, or the query text in column 'query')",
        ),
        (
            events(r0__clicked=2),
            "event",
            "row 1, field 'clicked': clicked is not 0/1 (expected 0 or 1 (or true/false))",
        ),
        (
            events(r1__clicked="yes please"),
            "event",
            "row 2, field 'clicked': value is missing or not a number (expected 0 or 1",
        ),
        (
            events(r2__item_id=""),
            "event",
            "row 3, field 'item_id': item id is empty (expected an item id)",
        ),
        (
            events(r0__query_id=None),
            "event",
            "row 1, field 'query_id': query id is empty (expected a query id)",
        ),
        (
            [
                {"query_id": "q1", "item_id": "d1", "clicks": 1, "impressions": 3},
                {"query_id": "q1", "item_id": "d2", "clicks": None, "impressions": 3},
            ],
            "aggregated",
            "row 2, field 'clicks': value is missing or not a number (expected a click count >= 0)",
        ),
    ],
)
def test_bad_rows_raise_data_error_naming_file_row_and_field(tmp_path, rows, shape, expected):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as err:
        load(path, shape=shape)
    assert str(err.value).startswith(f"{path}, {expected}")


def test_the_earliest_bad_row_is_reported_with_a_count(tmp_path):
    rows = events(r3__item_id="zz", r1__item_id="zz", r2__position=-1)
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as err:
        load(path, shape="event")
    assert str(err.value).startswith(
        f"{path}, row 2, field 'item_id': item id is not in the catalog; 2 rows fail this check"
    )


def test_csv_rows_do_not_count_the_header(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame(events(r2__item_id="nope")).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"bad\.csv, row 3, field 'item_id'"):
        load(path, shape="event")


@pytest.mark.parametrize(
    ("rows", "shape", "kw", "expected"),
    [
        (
            [{"query_id": "q1", "doc": "d1", "position": 1, "clicked": 1}],
            "event",
            {},
            "field 'item_id': column 'item_id' is missing (columns present: ['clicked', 'doc', "
            "'position', 'query_id']) (expected a column 'item_id', or set clicks.columns.item_id",
        ),
        (
            [{"query_id": "q1", "item_id": "d1", "clicked": 1}],
            "event",
            {},
            "field 'position': column 'position' is missing",
        ),
        (
            [{"qid": "q1", "item_id": "d1", "position": 1, "clicked": 1}],
            "event",
            {},
            "field 'query_id': column 'query_id' is missing",
        ),
        (
            [{"query_id": "q1", "item_id": "d1", "clicks": 1}],
            "aggregated",
            {},
            "field 'impressions': aggregated click log has neither an impressions column",
        ),
        (
            [{"query_id": "q1", "item_id": "d1", "impressions": 1}],
            "aggregated",
            {"columns": {"clicks": "n_clicks"}},
            "field 'n_clicks': column 'n_clicks' is missing",
        ),
    ],
)
def test_missing_columns_are_named(tmp_path, rows, shape, kw, expected):
    path = write_jsonl(tmp_path / "cols.jsonl", rows)
    with pytest.raises(DataError) as err:
        load(path, shape=shape, **kw)
    assert str(err.value).startswith(f"{path}, {expected}")


def test_missing_file_and_bad_config(tmp_path):
    with pytest.raises(DataError, match="click-log file not found"):
        load(tmp_path / "nope.jsonl", shape="event")
    path = write_jsonl(tmp_path / "c.jsonl", events())
    with pytest.raises(ConfigError, match="clicks.shape='wide' is unknown"):
        load(path, shape="wide")
    with pytest.raises(ConfigError, match="clicks.on_invalid='ignore' is unknown"):
        load(path, shape="event", on_invalid="ignore")
    with pytest.raises(ConfigError, match="clicks.columns has unknown keys doc"):
        ClickColumns.from_mapping({"doc": "d"})
    odd = tmp_path / "c.xyz"
    odd.write_text("x")
    with pytest.raises(ConfigError, match="cannot tell the format"):
        load(odd, shape="event")


def test_skip_mode_drops_and_counts_bad_rows(tmp_path):
    rows = events(r1__item_id="zz", r2__position=0, r3__query_id="q404") + [
        {"query_id": "q2", "item_id": "d1", "position": 1, "clicked": 7},
    ]
    log, _ = load(write_jsonl(tmp_path / "c.jsonl", rows), shape="event", on_invalid="skip")
    assert log.pairs() == [("q1", "d1")]
    assert log.skipped == {
        "bad_position": 1,
        "bad_clicked": 1,
        "unknown_item": 1,
        "query_without_text": 1,
    }


# --- repeated (query, item) rows of an aggregated log ------------------------------------------


def random_aggregated(seed: int, n_rows: int = 2_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    imps = rng.integers(1, 50, n_rows)
    return pd.DataFrame(
        {
            "query_id": [f"q{i}" for i in rng.integers(0, 60, n_rows)],
            "item_id": [f"d{i}" for i in rng.integers(0, 40, n_rows)],  # many pairs repeat
            "clicks": rng.integers(0, imps + 1),
            "impressions": imps,
        }
    )


def load_frame(df: pd.DataFrame, path: Path, **kw):
    df.to_csv(path, index=False)
    kw.setdefault("catalog_ids", [f"d{i}" for i in range(40)])
    kw.setdefault("query_ids", [f"q{i}" for i in range(60)])
    return load_click_log(path, shape="aggregated", **kw)


def test_repeated_pairs_are_summed_and_warned_with_their_count(tmp_path, caplog):
    df = random_aggregated(0)
    path = tmp_path / "agg.csv"
    with caplog.at_level(logging.WARNING, logger="evalkit.clicks.ingest"):
        log, _ = load_frame(df, path)
    sizes = df.groupby(["query_id", "item_id"]).size()
    repeated = int((sizes > 1).sum())
    assert repeated > 100 and log.duplicate_pairs == repeated
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(
        f"{path}: {repeated:,} (query, item) pairs appear on more than one row "
        f"({len(df):,} rows); their clicks/impressions were summed"
    )
    summed = df.groupby(["query_id", "item_id"])[["clicks", "impressions"]].sum()
    got = pd.DataFrame(
        {"clicks": log.clicks, "impressions": log.impressions},
        index=pd.MultiIndex.from_tuples(log.pairs(), names=["query_id", "item_id"]),
    )
    pd.testing.assert_frame_equal(got.sort_index(), summed.astype(float).sort_index())
    assert log.describe()["duplicate_pairs"] == repeated


def test_no_warning_without_repeats_and_none_for_event_logs(tmp_path, caplog):
    df = random_aggregated(1).drop_duplicates(["query_id", "item_id"])
    with caplog.at_level(logging.WARNING, logger="evalkit.clicks.ingest"):
        log, _ = load_frame(df, tmp_path / "agg.csv")
        events_log, _ = load(write_jsonl(tmp_path / "e.jsonl", events()), shape="event")
    assert not caplog.records and log.duplicate_pairs == 0
    assert "duplicate_pairs" not in log.describe() and events_log.duplicate_pairs == 0


def test_repeats_are_counted_per_file_and_across_files_only_at_info(tmp_path, caplog):
    a, b = random_aggregated(2), random_aggregated(3)
    b_unique = b.drop_duplicates(["query_id", "item_id"])
    pa_, pb = tmp_path / "a.csv", tmp_path / "b.csv"
    a.to_csv(pa_, index=False)
    b_unique.to_csv(pb, index=False)
    with caplog.at_level(logging.INFO, logger="evalkit.clicks.ingest"):
        log, _ = load_click_log(
            [pa_, pb],
            shape="aggregated",
            catalog_ids=[f"d{i}" for i in range(40)],
            query_ids=[f"q{i}" for i in range(60)],
        )
    in_a = int((a.groupby(["query_id", "item_id"]).size() > 1).sum())
    keys_a = set(zip(a.query_id, a.item_id))
    across = len(keys_a & set(zip(b_unique.query_id, b_unique.item_id)))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"{pa_}: {in_a:,} (query, item) pairs")
    assert f"({len(a):,} rows)" in warnings[0]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(f"{across:,} (query, item) pairs appear in more than one file" in m for m in infos)
    assert log.duplicate_pairs == in_a
    assert log.n_clicks == a.clicks.sum() + b_unique.clicks.sum()
