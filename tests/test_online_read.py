"""aggregate_log against an independent pandas / numpy computation, and its one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from evalkit.compare.slices import frequency_bands
from evalkit.errors import DataError
from evalkit.online.gateway_log import RequestSums, UnitSums
from evalkit.online.online_settings import OnlineSettings
from evalkit.online.read import aggregate_log

CUTS = (0.5, 0.3)


def make_log(seed: int = 0, requests: int = 80, users: int = 20) -> pd.DataFrame:
    """A small gateway log: 1-6 positions per request, tied scores, 3 days, two arms by user."""
    rng = np.random.default_rng(seed)
    queries = ["a", "b c", "d e f", "g h i j", "k", "l m"]
    rows = []
    for r in range(requests):
        user = int(rng.integers(0, users))
        arm = "treatment" if user % 2 else "control"
        n = int(rng.integers(1, 7))
        q = queries[int(rng.choice(6, p=[0.4, 0.2, 0.15, 0.1, 0.1, 0.05]))]
        ts = pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(hours=float(rng.uniform(0, 72)))
        lat = float(rng.lognormal(3, 0.3))
        device = ["ios", "android", None][int(rng.integers(0, 3))]
        for p in range(1, n + 1):
            rows.append(
                {
                    "request_id": f"r{r}",
                    "ab_group": arm,
                    "model_version": "B" if arm == "treatment" else "A",
                    "query": q,
                    "item_id": f"i{rng.integers(0, 50)}",
                    "position": p,
                    "similarity_score": float(np.round(rng.uniform(0, 1), 1)),  # ties
                    "clicked": int(rng.random() < 0.35 / p**0.5),
                    "latency_ms": lat,
                    "user_id": f"u{user:02d}",
                    "timestamp": ts,
                    "device": device,
                }
            )
    return pd.DataFrame(rows)


def write(df: pd.DataFrame, folder: Path, fmt: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        half = len(df) // 2
        df.iloc[:half].to_parquet(folder / "part-0.parquet", index=False)
        df.iloc[half:].to_parquet(folder / "part-1.parquet", index=False)
        return str(folder)
    out = df.copy()
    if "timestamp" in out:
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if fmt == "json":
        out.to_json(folder / "log.jsonl", orient="records", lines=True)
        return str(folder / "log.jsonl")
    sep = "\t" if fmt == "tsv" else ","
    out.to_csv(folder / f"log.{fmt}", sep=sep, index=False)
    return str(folder / f"log.{fmt}")


def per_request(df: pd.DataFrame, score: bool = True) -> pd.DataFrame:
    """One row per request, computed independently with pandas / scipy."""
    out = []
    for rid, g in df.groupby("request_id", sort=False):
        c = g["clicked"].to_numpy()
        k, n = int(c.sum()), len(g)
        pos = g["position"].to_numpy() if "position" in g else np.ones(n)
        row = {
            "request_id": rid,
            "arm": g["ab_group"].iloc[0],
            "unit": g["user_id"].iloc[0] if "user_id" in g else rid,
            "requests": 1.0,
            "clicked_requests": float(k > 0),
            "impressions": float(n),
            "clicks": float(k),
            "first_click_rr": 1.0 / pos[c == 1].min() if k else 0.0,
            "auc_u": 0.0,
            "auc_pairs": 0.0,
        }
        if score and 0 < k < n:
            ranks = rankdata(g["similarity_score"].to_numpy(), method="average")
            row["auc_u"] = ranks[c == 1].sum() - k * (k + 1) / 2
            row["auc_pairs"] = float(k * (n - k))
        if "latency_ms" in g:
            row["latency"] = g["latency_ms"].max()
        if "timestamp" in g:
            row["day"] = int(g["timestamp"].min().timestamp() // 86400)
        if "query" in g:
            row["query"] = g["query"].iloc[0]
        if "device" in g:
            row["device"] = "(missing)" if pd.isna(g["device"].iloc[0]) else g["device"].iloc[0]
        out.append(row)
    return pd.DataFrame(out)


def expected_units(req: pd.DataFrame, arm: str, by: list[str] | None = None) -> pd.DataFrame:
    keys = [*(by or []), "unit"]
    sub = req[req["arm"] == arm]
    return sub.groupby(keys, sort=True)[list(UnitSums.FIELDS)].sum().reset_index()


def assert_sums(got: UnitSums | RequestSums, want: pd.DataFrame) -> None:
    """Every field the reader keeps (all of UnitSums per unit; RequestSums per day / slice)."""
    for f in type(got).FIELDS:
        np.testing.assert_allclose(getattr(got, f), want[f].to_numpy(), err_msg=f)


@pytest.mark.parametrize("fmt", ["parquet", "json", "csv", "tsv"])
def test_every_aggregate_matches_pandas(tmp_path: Path, fmt: str) -> None:
    df = make_log()
    path = write(df, tmp_path / fmt, fmt)
    agg = aggregate_log(OnlineSettings(path=path, slices=("device",)), CUTS)
    req = per_request(df)
    assert agg.rows == len(df)
    assert agg.unit == "user_id"
    assert agg.missing == {}
    for arm_agg, cut in zip(agg.arms(), CUTS, strict=True):
        arm = arm_agg.arm
        sub = df[df["ab_group"] == arm]
        want = expected_units(req, arm)
        assert arm_agg.unit_ids.tolist() == want["unit"].tolist()
        assert_sums(arm_agg.units, want)
        assert arm_agg.versions == {("B" if arm == "treatment" else "A"): len(sub)}
        # latency: one value (the max of its rows) per request
        lat = req[req["arm"] == arm].sort_values("request_id")["latency"].to_numpy()
        assert np.allclose(np.sort(arm_agg.latency_ms), np.sort(lat))
        assert len(arm_agg.latency_ms) == int(arm_agg.units.total("requests"))
        # daily sums per (day, unit)
        daily = expected_units(req, arm, ["day"])
        assert arm_agg.daily.day.tolist() == daily["day"].tolist()
        assert_sums(arm_agg.daily.sums, daily)
        # positions
        pos = sub.groupby("position")["clicked"].agg(["size", "sum"])
        assert arm_agg.positions.position.tolist() == pos.index.tolist()
        assert arm_agg.positions.impressions.tolist() == pos["size"].tolist()
        assert arm_agg.positions.clicks.tolist() == pos["sum"].tolist()
        # clicks at or above the arm's own cut-off
        above = sub[(sub["similarity_score"] >= cut) & (sub["clicked"] == 1)]
        assert arm_agg.clicks_above == {cut: float(len(above))}
        # score bins: counts re-derived from the returned edges on the raw scores
        bins = arm_agg.score_bins
        s = sub["similarity_score"].to_numpy()
        assert bins.edges[0] == s.min() and bins.edges[-1] == s.max()
        idx = np.minimum(np.searchsorted(bins.edges, s, side="right") - 1, len(bins.edges) - 2)
        k = len(bins.edges) - 1
        assert bins.impressions.tolist() == np.bincount(idx, minlength=k).tolist()
        clicks = np.bincount(idx, weights=sub["clicked"].to_numpy(), minlength=k)
        assert bins.clicks.tolist() == clicks.tolist()
        mean = np.bincount(idx, weights=s, minlength=k) / np.bincount(idx, minlength=k)
        np.testing.assert_allclose(bins.mean_score, mean)


def test_slices_match_pandas(tmp_path: Path) -> None:
    df = make_log(seed=3, requests=120)
    agg = aggregate_log(OnlineSettings(path=write(df, tmp_path, "parquet"), slices=("device",)))
    req = per_request(df)
    tokens = req["query"].str.split().str.len()
    req["length"] = np.where(tokens <= 1, "1", np.where(tokens <= 3, "2-3", "4+"))
    freq = req.groupby("query").size()
    band = dict(zip(freq.index, frequency_bands(freq.to_numpy()), strict=True))
    req["frequency"] = req["query"].map(band)
    for arm_agg in agg.arms():
        got_keys = set(arm_agg.slices)
        want_keys = set()
        for dim in ("length", "frequency", "device"):
            want = expected_units(req, arm_agg.arm, [dim])
            for value, part in want.groupby(dim):
                want_keys.add((dim, value))
                got = arm_agg.slices[(dim, value)]
                assert_sums(got, part.sort_values("unit"))
        assert got_keys == want_keys
        assert {v for d, v in got_keys if d == "frequency"} <= {"head", "torso", "tail"}


def test_one_row_per_request_is_position_one(tmp_path: Path) -> None:
    df = make_log(seed=1)
    top = df[df["position"] == 1].drop(columns=["position"])
    agg = aggregate_log(OnlineSettings(path=write(top, tmp_path, "csv")))
    assert agg.control.positions is None
    assert "position" in agg.missing
    req = per_request(top)
    for arm_agg in agg.arms():
        want = expected_units(req, arm_agg.arm)
        assert_sums(arm_agg.units, want)
        # the first click of a one-row request is at position 1: rr = clicks
        assert arm_agg.units.first_click_rr.tolist() == arm_agg.units.clicks.tolist()


def test_missing_optional_columns_turn_their_analysis_off(tmp_path: Path) -> None:
    df = make_log(seed=2).drop(
        columns=["latency_ms", "timestamp", "similarity_score", "query", "user_id"]
    )
    agg = aggregate_log(OnlineSettings(path=write(df, tmp_path, "parquet"), slices=("shop",)))
    assert set(agg.missing) == {"latency", "timestamp", "score", "query", "user", "slice:shop"}
    assert "not measured" in agg.missing["latency"]
    assert agg.unit == "request_id"
    c = agg.control
    assert c.latency_ms is None and c.daily is None and c.score_bins is None
    assert c.slices == {} and c.clicks_above == {}
    req = per_request(df, score=False)
    assert_sums(c.units, expected_units(req, "control"))
    assert c.units.requests.tolist() == [1.0] * len(c.units)


def test_units_in_both_arms_are_counted_not_refused(tmp_path: Path) -> None:
    df = make_log(seed=4)
    moved = df["request_id"] == df["request_id"].iloc[0]
    user = df.loc[moved, "user_id"].iloc[0]
    other = "treatment" if df.loc[moved, "ab_group"].iloc[0] == "control" else "control"
    df.loc[moved, "ab_group"] = other
    agg = aggregate_log(OnlineSettings(path=write(df, tmp_path, "parquet")))
    assert agg.units_in_both == 1
    assert agg.units_in_both_examples == [user]


def test_other_arm_values_are_counted(tmp_path: Path) -> None:
    df = make_log(seed=5)
    df.loc[df["request_id"] == "r0", "ab_group"] = "holdout"
    agg = aggregate_log(OnlineSettings(path=write(df, tmp_path, "parquet")))
    assert agg.other_arms == {"holdout": int((df["request_id"] == "r0").sum())}
    assert agg.rows == len(df)


def test_fsspec_memory_url() -> None:
    import fsspec

    df = make_log(seed=6)
    fs = fsspec.filesystem("memory")
    with fs.open("/online-read-test/log.parquet", "wb") as f:
        df.to_parquet(f, index=False)
    agg = aggregate_log(OnlineSettings(path="memory://online-read-test/log.parquet"))
    req = per_request(df)
    assert_sums(agg.treatment.units, expected_units(req, "treatment"))
    fs.rm("/online-read-test", recursive=True)


# --- bad input: one line naming the file and the row -------------------------------------------


def _error(tmp_path: Path, df: pd.DataFrame, fmt: str = "csv", **kw) -> str:
    path = write(df, tmp_path, fmt)
    with pytest.raises(DataError) as err:
        aggregate_log(OnlineSettings(path=path, **kw))
    text = str(err.value)
    assert "\n" not in text
    return text


def test_missing_required_column(tmp_path: Path) -> None:
    text = _error(tmp_path, make_log().drop(columns=["clicked"]))
    assert "log.csv" in text and "'clicked'" in text
    assert "columns found: request_id, ab_group" in text and "online.columns.clicked" in text


def test_arm_values_not_found_lists_values_with_counts(tmp_path: Path) -> None:
    df = make_log()
    df["ab_group"] = df["ab_group"].map({"control": "A", "treatment": "B"})
    text = _error(tmp_path, df)
    n_a, n_b = (df["ab_group"] == "A").sum(), (df["ab_group"] == "B").sum()
    assert "log.csv" in text and f"'A' ({n_a} rows)" in text and f"'B' ({n_b} rows)" in text


def test_empty_arm(tmp_path: Path) -> None:
    df = make_log()
    text = _error(tmp_path, df[df["ab_group"] == "control"])
    assert "treatment arm 'treatment' is empty" in text and "'control' (" in text


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("clicked", "yes", "clicked is 'yes'"),
        ("latency_ms", -3.0, "latency is -3.0"),
        ("latency_ms", np.inf, "latency is inf"),
        ("position", 0, "position is 0"),
        ("timestamp", "not a time", "timestamp 'not a time' cannot be parsed"),
    ],
)
def test_bad_value_names_file_and_row(tmp_path: Path, column: str, value, words: str) -> None:
    df = make_log()
    df[column] = df[column].astype(object)
    if column == "timestamp":
        df[column] = df[column].map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    df.loc[17, column] = value
    path = tmp_path / "log.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        aggregate_log(OnlineSettings(path=str(path)))
    text = str(err.value)
    assert text.startswith(f"{path}, row 18, field '{column}'")
    assert words in text


def test_same_request_position_twice(tmp_path: Path) -> None:
    df = make_log()
    dup = df.iloc[[5]]
    df = pd.concat([df.iloc[:30], dup, df.iloc[30:]], ignore_index=True)
    text = _error(tmp_path, df)
    r, p = dup["request_id"].iloc[0], dup["position"].iloc[0]
    first = int(np.flatnonzero((df["request_id"] == r) & (df["position"] == p))[1]) + 1
    assert f"log.csv, row {first}" in text and f"request '{r}' has position {p} twice" in text


def test_one_request_under_two_arms(tmp_path: Path) -> None:
    df = make_log()
    r = df["request_id"].iloc[0]
    rows = np.flatnonzero(df["request_id"] == r)
    assert len(rows) >= 2 or pytest.skip("request r0 has one row")
    other = "treatment" if df.loc[rows[0], "ab_group"] == "control" else "control"
    df.loc[rows[-1], "ab_group"] = other
    text = _error(tmp_path, df, "parquet")
    part = "part-0.parquet" if rows[-1] < len(df) // 2 else "part-1.parquet"
    row = rows[-1] + 1 - (0 if part == "part-0.parquet" else len(df) // 2)
    assert f"{part}, row {row}" in text and f"request '{r}' is under two arms" in text


def test_parts_with_different_schemas(tmp_path: Path) -> None:
    df = make_log()
    tmp_path.mkdir(exist_ok=True)
    df.iloc[:100].to_parquet(tmp_path / "part-0.parquet", index=False)
    df.iloc[100:].drop(columns=["device"]).to_parquet(tmp_path / "part-1.parquet", index=False)
    with pytest.raises(DataError) as err:
        aggregate_log(OnlineSettings(path=str(tmp_path)))
    assert str(err.value).startswith(f"{tmp_path / 'part-1.parquet'}: this part's schema differs")
    assert "device" in str(err.value)


def test_no_file_found(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no log file found"):
        aggregate_log(OnlineSettings(path=str(tmp_path / "nothing-*.parquet")))


def test_positions_past_64_are_checked_exactly(tmp_path: Path) -> None:
    df = make_log(seed=7)
    sizes = df.groupby("request_id").size()
    rid = sizes[sizes >= 2].index[0]
    first = df["request_id"] == rid
    df.loc[first, "position"] = df.loc[first, "position"] + 70  # 71, 72, ...
    agg = aggregate_log(OnlineSettings(path=write(df, tmp_path / "ok", "parquet")))
    arm = agg.control if df.loc[first, "ab_group"].iloc[0] == "control" else agg.treatment
    assert 71 in arm.positions.position.tolist()
    df.loc[first, "position"] = 80  # every row of that request at position 80
    text = _error(tmp_path / "bad", df, "parquet")
    assert f"request '{rid}' has position 80 twice" in text


# --- the part-by-part path (evalkit.online.parts) against the global one ----------------------


def write_parts(df: pd.DataFrame, folder: Path, n: int = 3) -> str:
    """Parquet parts cut between requests (a gateway writes a request's rows together)."""
    folder.mkdir(parents=True, exist_ok=True)
    run = df["request_id"].ne(df["request_id"].shift()).cumsum().to_numpy()
    cuts = [0, *(int(np.searchsorted(run, run[len(df) * i // n])) for i in range(1, n)), len(df)]
    for i, (lo, hi) in enumerate(zip(cuts, cuts[1:], strict=False)):
        df.iloc[lo:hi].to_parquet(folder / f"part-{i}.parquet", index=False)
    return str(folder)


def same(got, want, where: str = "agg") -> None:
    """Two aggregates field by field (latency compared sorted: the paths keep other orders)."""
    import dataclasses

    if dataclasses.is_dataclass(got):
        for f in dataclasses.fields(got):
            a, b = getattr(got, f.name), getattr(want, f.name)
            if f.name == "seconds":
                continue
            if f.name == "latency_ms" and a is not None:
                np.testing.assert_allclose(np.sort(a), np.sort(b), err_msg=where)
                continue
            same(a, b, f"{where}.{f.name}")
    elif isinstance(got, dict):
        assert list(map(str, sorted(got))) == list(map(str, sorted(want))), where
        for k in got:
            same(got[k], want[k], f"{where}[{k}]")
    elif isinstance(got, np.ndarray) or isinstance(want, np.ndarray):
        a, b = np.asarray(got), np.asarray(want)
        assert a.shape == b.shape, where
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, err_msg=where)
        else:
            assert a.tolist() == b.tolist(), where
    else:
        assert got == want, where


def both_paths(monkeypatch, path: str, **kw):
    """The aggregate by the part-by-part path (and whether it held) and by the global path."""
    from evalkit.online import combine as parts

    held = []
    combine = parts.combine

    def spy(*a, **k):
        out = combine(*a, **k)
        held.append(out is not None)
        return out

    monkeypatch.setattr(parts, "combine", spy)
    fast = aggregate_log(OnlineSettings(path=path, **kw), CUTS)
    monkeypatch.setenv("EVALKIT_ONLINE_PARTS", "0")
    slow = aggregate_log(OnlineSettings(path=path, **kw), CUTS)
    monkeypatch.delenv("EVALKIT_ONLINE_PARTS")
    return fast, slow, held


@pytest.mark.parametrize("seed", [0, 3])
def test_part_by_part_equals_global_and_pandas(tmp_path: Path, monkeypatch, seed: int) -> None:
    df = make_log(seed=seed, requests=150)
    fast, slow, held = both_paths(monkeypatch, write_parts(df, tmp_path), slices=("device",))
    assert held == [True]
    same(fast, slow)
    req = per_request(df)
    for arm_agg in fast.arms():
        want = expected_units(req, arm_agg.arm)
        assert arm_agg.unit_ids.tolist() == want["unit"].tolist()
        assert_sums(arm_agg.units, want)


def test_part_by_part_other_arm_units_in_both_and_shuffled_positions(
    tmp_path: Path, monkeypatch
) -> None:
    df = make_log(seed=4, requests=120)
    df.loc[df["request_id"] == "r1", "ab_group"] = "holdout"
    moved = df["request_id"] == "r2"
    df.loc[moved, "ab_group"] = np.where(
        df.loc[moved, "ab_group"] == "control", "treatment", "control"
    )
    df = df.sample(frac=1.0, random_state=0).sort_values("request_id", kind="stable")  # positions
    df["user_id"] = df["user_id"].str[1:].astype("int64")  # integer units
    df["request_id"] = df["request_id"].str[1:].astype("int64")
    fast, slow, held = both_paths(monkeypatch, write_parts(df, tmp_path, 2))
    assert held == [True]
    same(fast, slow)
    assert fast.units_in_both >= 1 and "holdout" in fast.other_arms


def test_part_by_part_long_requests_auc_against_rankdata(tmp_path: Path, monkeypatch) -> None:
    """Requests of 70-300 rows (past 64: the compiled scan compares every clicked row with
    every non-clicked one), tied scores, a position gap: the fast path holds, equals the global
    path, and each unit's AUC sums equal scipy's ranks (per_request)."""
    rng = np.random.default_rng(11)
    parts = []
    for r in range(12):
        n = int(rng.integers(70, 300))
        parts.append(
            pd.DataFrame(
                {
                    "request_id": r,
                    "ab_group": "treatment" if r % 3 else "control",
                    "user_id": r % 5,
                    "position": np.arange(1, n + 1) + (np.arange(n) >= n // 2),  # a gap
                    "similarity_score": np.round(rng.uniform(0, 1, n), 1),
                    "clicked": (rng.random(n) < 0.2).astype("int64"),
                    "latency_ms": float(rng.lognormal(3, 0.3)),
                }
            )
        )
    df = pd.concat(parts, ignore_index=True)
    fast, slow, held = both_paths(monkeypatch, write_parts(df, tmp_path, 2))
    assert held == [True]
    same(fast, slow)
    req = per_request(df)
    for arm_agg in fast.arms():
        assert_sums(arm_agg.units, expected_units(req, arm_agg.arm))


def test_a_request_in_two_parts_takes_the_global_path(tmp_path: Path, monkeypatch) -> None:
    df = make_log(seed=5)
    rid = df["request_id"].iloc[0]
    inside = np.flatnonzero(df["request_id"] == rid)
    assert len(inside) >= 2 or pytest.skip("request r0 has one row")
    cut = int(inside[0]) + 1  # r0's rows in two parts
    tmp_path.mkdir(exist_ok=True)
    df.iloc[:cut].to_parquet(tmp_path / "part-0.parquet", index=False)
    df.iloc[cut:].to_parquet(tmp_path / "part-1.parquet", index=False)
    fast, slow, held = both_paths(monkeypatch, str(tmp_path))
    assert held == [False]
    same(fast, slow)
    assert_sums(fast.control.units, expected_units(per_request(df), "control"))


def test_ray_equals_local(tmp_path: Path, monkeypatch) -> None:
    ray = pytest.importorskip("ray")
    from evalkit.online import combine as parts
    from evalkit.online.read import aggregate_log_ray

    held = []
    combine = parts.combine
    monkeypatch.setattr(parts, "combine", lambda *a, **k: held.append(combine(*a, **k)) or held[-1])

    df = make_log(seed=6, requests=150)
    settings = OnlineSettings(path=write_parts(df, tmp_path), slices=("device",))
    local = aggregate_log(settings, CUTS)
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        distributed = aggregate_log_ray(settings, CUTS)
    finally:
        ray.shutdown()
    assert all(h is not None for h in held) and len(held) == 2
    same(distributed, local)
