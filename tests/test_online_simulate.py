"""The simulated canary log (evalkit.online.simulate) and the online plots (evalkit.online.canary_plots)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalkit.data.click_simulation import ClickModel
from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.errors import ConfigError
from evalkit.online.canary_plots import (
    plot_daily_ctr,
    plot_latency_cdf,
    plot_position_ctr,
    plot_score_ctr,
)
from evalkit.online.gateway_log import DEFAULT_COLUMNS
from evalkit.online.simulate import SIMULATED_KEY, simulate_canary
from evalkit.retrieve.ranking import Ranking

N_ITEMS, N_QUERIES, K = 40, 8, 10
LATENCY = {"control": np.array([8.0, 9.5, 11.0, 30.0]), "treatment": np.array([12.0, 13.0, 40.0])}
VERSIONS = {"control": "model-a", "treatment": "model-b"}


def _data() -> EvalData:
    rng = np.random.default_rng(7)
    items = [f"d{i:02d}" for i in range(N_ITEMS)]
    qids = [f"q{i}" for i in range(N_QUERIES)]
    qrels = {
        q: {items[j]: int(rng.integers(0, 4)) for j in rng.choice(N_ITEMS, 15, replace=False)}
        for q in qids
    }
    return EvalData(
        "tiny",
        Catalog(items, [f"item {i}" for i in items]),
        Queries(qids, [f"query {q}" for q in qids], frequency=[8, 4, 2, 2, 1, 1, 1, 1]),
        Judgments(qrels),
    )


def _ranking(seed: int, item_ids: list[str]) -> Ranking:
    """Random top-K lists with descending scores; query q7 has only 4 results (padded)."""
    rng = np.random.default_rng(seed)
    rows = np.stack([rng.choice(N_ITEMS, K, replace=False) for _ in range(N_QUERIES)])
    scores = np.sort(rng.random((N_QUERIES, K)).astype(np.float32), axis=1)[:, ::-1] * (seed + 1)
    rows[7, 4:] = -1
    scores[7, 4:] = 0
    qids = [f"q{i}" for i in range(N_QUERIES)]
    return Ranking(qids, rows.astype(np.int64), np.ascontiguousarray(scores), item_ids)


@pytest.fixture(scope="module")
def setup():
    data = _data()
    rankings = {
        "control": _ranking(1, data.catalog.ids),
        "treatment": _ranking(2, data.catalog.ids),
    }
    return data, rankings


def _simulate(setup, out, **kw):
    data, rankings = setup
    kw = {"users": 4000, "days": 3, "split": 0.3, "seed": 0, **kw}
    return simulate_canary(data, rankings, VERSIONS, LATENCY, out, **kw)


@pytest.fixture(scope="module")
def log(setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("canary")
    parts = _simulate(setup, out)
    return parts, pq.read_table(parts).to_pandas()


def test_parts_columns_and_dtypes(log):
    parts, _ = log
    assert [p.name for p in parts] == [
        "part-2026-11-23.parquet",
        "part-2026-11-24.parquet",
        "part-2026-11-25.parquet",
    ]
    expected = {
        "request_id": pa.string(),
        "ab_group": pa.string(),
        "model_version": pa.string(),
        "query": pa.string(),
        "item_id": pa.string(),
        "position": pa.int32(),
        "similarity_score": pa.float32(),
        "clicked": pa.int8(),
        "latency_ms": pa.float64(),
        "user_id": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    assert list(expected) == list(DEFAULT_COLUMNS.values())
    for part in parts:
        schema = pq.read_schema(part)
        assert schema.names == list(expected)
        assert [schema.field(n).type for n in expected] == list(expected.values())
        assert pq.read_metadata(part).metadata[SIMULATED_KEY.encode()] == b"true"


def test_timestamps_fall_in_their_part_day(log):
    parts, _ = log
    for day, part in enumerate(parts):
        ts = pq.read_table(part).column("timestamp").to_pandas()
        start = pd.Timestamp("2026-11-23", tz="UTC") + pd.Timedelta(days=day)
        assert len(ts) > 0
        assert (ts >= start).all() and (ts < start + pd.Timedelta(days=1)).all()
        assert ts.is_monotonic_increasing


def test_treatment_share_of_users_near_split(log):
    _, df = log
    arms = df.groupby("user_id").ab_group.nunique()
    assert (arms == 1).all()  # a user stays in one arm
    per_user = df.groupby("user_id").ab_group.first()
    n = len(per_user)
    share = float((per_user == "treatment").mean())
    assert abs(share - 0.3) <= 4.5 * np.sqrt(0.3 * 0.7 / n)
    # Poisson(3) requests per user: users without any never appear
    assert 4000 * (1 - np.exp(-3)) * 0.95 < n <= 4000


def test_requests_show_their_arms_top_k_in_order(setup, log):
    data, rankings = setup
    _, df = log
    per_request = df.groupby("request_id")
    for col in ("ab_group", "model_version", "query", "user_id", "timestamp"):
        assert (per_request[col].nunique() == 1).all(), col
    assert (df.model_version == df.ab_group.map(VERSIONS)).all()
    # row order: each request's impressions together, positions 1..n
    first = per_request.cumcount()
    assert (df.position == first + 1).all()
    assert (df.request_id.ne(df.request_id.shift()).cumsum() == per_request.ngroup() + 1).all()
    qrow = df["query"].map({t: i for i, t in enumerate(data.queries.texts)}).to_numpy()
    pos = df.position.to_numpy() - 1
    for arm, r in rankings.items():
        m = (df.ab_group == arm).to_numpy()
        rows = r.indices[qrow[m], pos[m]]
        assert (rows >= 0).all()
        assert df.item_id[m].tolist() == [r.item_ids[i] for i in rows]
        np.testing.assert_array_equal(df.similarity_score[m], r.scores[qrow[m], pos[m]])
        shown = per_request.size()[per_request.ab_group.first() == arm]
        queries = (
            per_request["query"]
            .first()[shown.index]
            .map({t: i for i, t in enumerate(data.queries.texts)})
        )
        np.testing.assert_array_equal(shown.to_numpy(), (r.indices[queries] >= 0).sum(axis=1))
    assert per_request.size().min() == 4  # q7's padded list: 4 impressions


def test_latency_per_request_from_its_arm(log):
    _, df = log
    assert (df.groupby("request_id").latency_ms.nunique() == 1).all()
    for arm, values in LATENCY.items():
        seen = df.loc[df.ab_group == arm].groupby("request_id").latency_ms.first()
        assert set(seen.unique()) <= set(values.tolist())
        assert set(seen.unique()) == set(values.tolist())  # every value is drawn at this size


def test_queries_follow_frequency(setup, log):
    data, _ = setup
    _, df = log
    per_request = df.groupby("request_id").query.first()
    n = len(per_request)
    p = 8 / 20  # q0's frequency share
    share = float((per_request == data.queries.texts[0]).mean())
    assert abs(share - p) <= 4.5 * np.sqrt(p * (1 - p) / n)


def test_clicks_follow_the_position_based_model(setup, log):
    data, _ = setup
    _, df = log
    qrels = data.judgments.qrels
    text_to_id = dict(zip(data.queries.texts, data.queries.ids))
    qid = df["query"].map(text_to_id)
    grade = np.array([qrels[q].get(i, 0) for q, i in zip(qid, df.item_id)])
    by_pos = df.groupby("position").clicked.mean()
    assert by_pos[1] > by_pos[10]
    assert df.clicked[grade >= 1].mean() > df.clicked[grade == 0].mean()
    # every (position, grade) cell: CTR = 1 / position * attractiveness(grade), binomially
    model = ClickModel()
    cells = pd.DataFrame({"pos": df.position, "grade": grade, "clicked": df.clicked})
    stats = cells.groupby(["pos", "grade"]).clicked.agg(["mean", "size"]).reset_index()
    stats = stats[stats["size"] >= 200]
    assert len(stats) >= 15
    p = model.attractiveness(stats.grade.to_numpy(), 3) / stats.pos.to_numpy()
    bound = 4.5 * np.sqrt(p * (1 - p) / stats["size"].to_numpy())
    assert np.all(np.abs(stats["mean"].to_numpy() - p) <= bound)


def test_same_seed_same_files_other_seed_differs(setup, tmp_path):
    a = _simulate(setup, tmp_path / "a", users=500, seed=3)
    b = _simulate(setup, tmp_path / "b", users=500, seed=3)
    c = _simulate(setup, tmp_path / "c", users=500, seed=4)
    for pa_, pb in zip(a, b):
        assert pq.read_table(pa_).equals(pq.read_table(pb))
        assert pa_.read_bytes() == pb.read_bytes()
    assert not pq.read_table(a).equals(pq.read_table(c))


def test_cascade_model_at_most_one_click(setup, tmp_path):
    parts = _simulate(setup, tmp_path, users=500, click_model=ClickModel(kind="cascade"))
    df = pq.read_table(parts).to_pandas()
    assert df.groupby("request_id").clicked.sum().max() == 1


def test_rewrite_removes_stale_parts_and_refuses_real_logs(setup, tmp_path):
    _simulate(setup, tmp_path, users=200, days=4)
    parts = _simulate(setup, tmp_path, users=200, days=2)
    assert sorted(tmp_path.iterdir()) == parts  # the 4-day run's last two parts are gone
    real = tmp_path / "part-2020-01-01.parquet"
    pq.write_table(pa.table({"request_id": ["r1"]}), real)
    with pytest.raises(ConfigError, match="not a simulated log"):
        _simulate(setup, tmp_path, users=200, days=2)
    assert real.exists()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"split": 1.0}, "split"),
        ({"users": 0}, "users"),
        ({"requests_per_user": 0}, "requests_per_user"),
        ({"start": "not a date"}, "start"),
    ],
)
def test_bad_arguments(setup, tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match):
        _simulate(setup, tmp_path, **kw)


def test_bad_arms_latency_and_judgments(setup, tmp_path):
    data, rankings = setup
    with pytest.raises(ConfigError, match="treatment"):
        simulate_canary(data, {"control": rankings["control"]}, VERSIONS, LATENCY, tmp_path)
    with pytest.raises(ConfigError, match="latency_ms"):
        simulate_canary(data, rankings, VERSIONS, {**LATENCY, "treatment": []}, tmp_path)
    bare = EvalData("bare", data.catalog, data.queries, None)
    with pytest.raises(ConfigError, match="no judgments"):
        simulate_canary(bare, rankings, VERSIONS, LATENCY, tmp_path)


def test_default_size_writes_in_seconds(setup, tmp_path):
    data, rankings = setup
    t0 = time.perf_counter()
    parts = simulate_canary(data, rankings, VERSIONS, LATENCY, tmp_path)
    seconds = time.perf_counter() - t0
    assert len(parts) == 14
    assert sum(pq.read_metadata(p).num_rows for p in parts) > 20_000 * 3 * 9 * 0.9
    assert seconds < 30  # ~1 s idle; generous on shared cores


def test_plots_write_png(tmp_path):
    png = b"\x89PNG\r\n\x1a\n"
    days = np.arange(20415, 20418)  # int days since 1970-01-01, as the aggregate keeps them
    band = (np.array([0.3, 0.32, 0.31]), np.array([0.28, 0.3, 0.29]), np.array([0.32, 0.34, 0.33]))
    rng = np.random.default_rng(0)
    outs = [
        plot_daily_ctr(
            days, {"control": band, "treatment": band}, tmp_path / "d.png", simulated=True
        ),
        plot_score_ctr(
            {
                "control": (np.linspace(0.2, 0.8, 10), np.linspace(0.05, 0.4, 10), np.full(10, 50)),
                "treatment": (np.linspace(3, 9, 10), np.linspace(0.05, 0.3, 10), np.full(10, 60)),
            },
            tmp_path / "s.png",
            simulated=True,
        ),
        plot_latency_cdf(
            {"control": rng.gamma(4, 5, 5000), "treatment": rng.gamma(4, 6, 3000)},
            tmp_path / "sub" / "l.png",
            simulated=True,
        ),
        plot_position_ctr(
            {"control": (np.arange(1, 11), 0.5 / np.arange(1, 11))}, tmp_path / "p.png"
        ),
    ]
    for out in outs:
        data = out.read_bytes()
        assert out.exists() and data.startswith(png) and len(data) > 1000
    assert all(b"simulated" in out.read_bytes() for out in outs[:3])
    assert b"simulated" not in outs[3].read_bytes()
