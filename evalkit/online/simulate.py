"""A simulated canary: the gateway log of an A/B between two rankings of the same data (the demo's),
one Parquet part per day marked ``evalkit.simulated=true``.  The model: docs/how-to/online-ab.md
("The demo canary").

>>> import tempfile, numpy as np, pyarrow.parquet as pq
>>> from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
>>> from evalkit.retrieve.ranking import Ranking
>>> data = EvalData("tiny", Catalog(["d1", "d2", "d3"], ["red shoe", "blue shoe", "hat"]),
...                 Queries(["q1", "q2"], ["red shoe", "hat"], frequency=[3.0, 1.0]),
...                 Judgments({"q1": {"d1": 3, "d2": 1}, "q2": {"d3": 2}}))
>>> def ranking(rows, scores):
...     return Ranking(["q1", "q2"], np.array(rows), np.array(scores, np.float32), ["d1", "d2", "d3"])
>>> a = ranking([[0, 1], [2, -1]], [[0.9, 0.5], [0.8, 0.0]])
>>> b = ranking([[1, 0], [2, 1]], [[0.7, 0.6], [0.9, 0.1]])
>>> parts = simulate_canary(data, {"control": a, "treatment": b}, {"control": "A", "treatment": "B"},
...                         {"control": [10.0, 12.0], "treatment": [14.0]}, tempfile.mkdtemp(),
...                         users=300, days=2, top_k=2)
>>> [p.name for p in parts], pq.read_metadata(parts[0]).metadata[b"evalkit.simulated"]
(['part-2026-11-23.parquet', 'part-2026-11-24.parquet'], b'true')
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from evalkit.data.click_simulation import ClickModel, grade_matrix
from evalkit.errors import ConfigError
from evalkit.online.gateway_log import DEFAULT_COLUMNS

__all__ = ["ARMS", "SCHEMA", "SIMULATED_KEY", "simulate_canary"]

#: The two arms, in the order of the ``ab_group`` values (index 0 = control).
ARMS = ("control", "treatment")
#: The Parquet file-metadata key that marks a log as simulated.
SIMULATED_KEY = "evalkit.simulated"
_DAY_US = 86_400 * 1_000_000

#: The written columns and their types (the gateway's own names, ``DEFAULT_COLUMNS``).
SCHEMA = pa.schema(
    [
        (DEFAULT_COLUMNS["request"], pa.string()),
        (DEFAULT_COLUMNS["arm"], pa.string()),
        (DEFAULT_COLUMNS["version"], pa.string()),
        (DEFAULT_COLUMNS["query"], pa.string()),
        (DEFAULT_COLUMNS["item"], pa.string()),
        (DEFAULT_COLUMNS["position"], pa.int32()),
        (DEFAULT_COLUMNS["score"], pa.float32()),
        (DEFAULT_COLUMNS["clicked"], pa.int8()),
        (DEFAULT_COLUMNS["latency"], pa.float64()),
        (DEFAULT_COLUMNS["user"], pa.string()),
        (DEFAULT_COLUMNS["timestamp"], pa.timestamp("us", tz="UTC")),
    ]
)


def simulate_canary(
    data,
    rankings: Mapping[str, object],
    versions: Mapping[str, str],
    latency_ms: Mapping[str, Sequence[float] | np.ndarray],
    out_dir: str | Path,
    *,
    users: int = 20_000,
    days: int = 14,
    split: float = 0.5,
    requests_per_user: float = 3.0,
    top_k: int = 10,
    seed: int = 0,
    start: str | dt.date = "2026-11-23",
    click_model: ClickModel | None = None,
) -> list[Path]:
    """Write a simulated canary log of ``data`` (with judgments) to ``out_dir``, one Parquet part
    per day; the parts' paths in day order.  ``rankings`` / ``versions`` / ``latency_ms`` (per
    request, to resample from) are keyed ``control`` / ``treatment``; ``top_k`` results shown per
    request.  An earlier simulation's parts are removed; a part not marked simulated is refused.
    """
    _check_args(rankings, versions, latency_ms, users, days, split, requests_per_user, top_k)
    if data.judgments is None or not data.judgments.qrels:
        raise ConfigError(
            f"dataset {data.name!r} has no judgments: a simulated canary draws its clicks from "
            "graded judgments"
        )
    model = click_model or ClickModel(depth=top_k)
    try:
        day0 = np.datetime64(start, "D")
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"simulate_canary: start={start!r} is not a date (expected YYYY-MM-DD)"
        ) from e
    lat = {arm: _latencies(arm, latency_ms[arm]) for arm in ARMS}
    pool, prob = _query_pool(data, rankings)
    pool_ids = [data.queries.ids[i] for i in pool]
    items, scores, click_p, item_ids = _shown(
        rankings, pool_ids, data.judgments.qrels, top_k, model
    )
    rng = np.random.default_rng(seed)
    requests = _draw_requests(rng, users, days, split, requests_per_user, prob, lat)
    texts = _texts(data, pool, item_ids, versions)
    schema = SCHEMA.with_metadata(_metadata(data, versions, model, split, seed))
    start_us = int(day0.astype("datetime64[us]").astype(np.int64))
    width = max(8, len(str(max(len(requests.user), users) - 1)))
    tables = _day_tables(
        days, (items, scores, click_p), requests, model, rng, texts, schema, start_us, width
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [f"part-{day0 + d}.parquet" for d in range(days)]
    _clear_stale(out, set(names))
    return _write_parts(out, names, tables)


@dataclass(frozen=True)
class _Requests:
    """The requests in time order: user, arm (1 = treatment), pool query, latency (ms) and
    microseconds since the start; day ``d``'s requests are ``bounds[d]:bounds[d + 1]``."""

    user: np.ndarray
    arm: np.ndarray
    query: np.ndarray
    latency: np.ndarray
    us: np.ndarray
    bounds: np.ndarray


def _draw_requests(
    rng: np.random.Generator,
    users: int,
    days: int,
    split: float,
    requests_per_user: float,
    prob: np.ndarray,
    lat: dict[str, np.ndarray],
) -> _Requests:
    """Each user's arm and requests, each request's time, query (pool index) and latency."""
    treated = rng.random(users) < split
    per_user = rng.poisson(requests_per_user, users)
    req_user = np.repeat(np.arange(users, dtype=np.int64), per_user)
    n_req = len(req_user)
    req_time = rng.random(n_req) * days  # in days since start
    req_query = rng.choice(len(prob), size=n_req, p=prob)
    draw = rng.random(n_req)
    order = np.argsort(req_time, kind="stable")
    req_user, req_time, req_query, draw = (x[order] for x in (req_user, req_time, req_query, draw))
    req_arm = treated[req_user].astype(np.int64)
    lat_t, lat_c = _resample(lat["treatment"], draw), _resample(lat["control"], draw)
    req_us = np.minimum((req_time * _DAY_US).astype(np.int64), days * _DAY_US - 1)
    return _Requests(
        user=req_user,
        arm=req_arm,
        query=req_query,
        latency=np.where(req_arm == 1, lat_t, lat_c),
        us=req_us,
        bounds=np.searchsorted(req_us // _DAY_US, np.arange(days + 1)),
    )


def _texts(data, pool: np.ndarray, item_ids: np.ndarray, versions) -> tuple[pa.Array, ...]:
    """The string values the columns take: pool query texts, item ids, arms, versions."""
    texts = np.asarray(data.queries.texts, dtype=object)
    return (
        pa.array(texts[pool], type=pa.string()),
        pa.array(np.asarray(item_ids, dtype=object), type=pa.string()),
        pa.array(list(ARMS), type=pa.string()),
        pa.array([str(versions[a]) for a in ARMS], type=pa.string()),
    )


def _metadata(data, versions, model: ClickModel, split: float, seed: int) -> dict[str, str]:
    """The parts' file metadata: the simulated mark, the source and the versions."""
    return {
        SIMULATED_KEY: "true",
        "evalkit.source": (
            f"simulated canary of {data.name}: {model.kind} clicks (eta={model.eta}, "
            f"alpha={model.alpha_min}..{model.alpha_max}), split={split}, seed={seed}"
        ),
        "evalkit.versions": f"control={versions['control']},treatment={versions['treatment']}",
    }


def _day_tables(
    days: int,
    shown: tuple[np.ndarray, np.ndarray, np.ndarray],
    req: _Requests,
    model: ClickModel,
    rng: np.random.Generator,
    texts: tuple[pa.Array, ...],
    schema: pa.Schema,
    start_us: int,
    width: int,
):
    """Each day's impressions (request order, then position), their clicks drawn as it is built
    (``shown``: :func:`_shown`'s arrays; ``start_us``: Unix microseconds; ``width``: id digits)."""
    items, scores, click_p = shown
    query_text, item_text, arm_text, version_text = texts
    for d in range(days):
        s, e = int(req.bounds[d]), int(req.bounds[d + 1])
        arm, q = req.arm[s:e], req.query[s:e]
        on = items[arm, q]  # (requests, width), -1 = nothing shown
        clicked = _clicks(click_p[arm, q], on >= 0, model, rng)
        ri, ci = np.nonzero(on >= 0)  # row-major: request order, then position
        g = ri + s  # the impressions' requests (global, time order)
        columns = [
            _ids("r", pa.array(g), width),
            arm_text.take(pa.array(arm[ri])),
            version_text.take(pa.array(arm[ri])),
            query_text.take(pa.array(q[ri])),
            item_text.take(pa.array(on[ri, ci])),
            pa.array((ci + 1).astype(np.int32)),
            pa.array(scores[arm[ri], q[ri], ci].astype(np.float32)),
            pa.array(clicked[ri, ci].astype(np.int8)),
            pa.array(req.latency[g].astype(np.float64)),
            _ids("u", pa.array(req.user[g]), width),
            pa.array(start_us + req.us[g]).cast(pa.timestamp("us", tz="UTC")),
        ]
        yield pa.Table.from_arrays(columns, schema=schema)


def _write_parts(out: Path, names: list[str], tables) -> list[Path]:
    """Write ``tables`` to temporary names, then rename them all (on a failure: remove them)."""
    tmps = [out / f".{name}.tmp" for name in names]
    try:
        for table, tmp in zip(tables, tmps, strict=True):
            pq.write_table(table, tmp)
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise
    written = [out / name for name in names]
    for tmp, path in zip(tmps, written):  # every part written before any is renamed
        os.replace(tmp, path)
    return written


def _check_args(rankings, versions, latency_ms, users, days, split, requests_per_user, top_k):
    for what, m in (("rankings", rankings), ("versions", versions), ("latency_ms", latency_ms)):
        missing = [a for a in ARMS if a not in m]
        if missing:
            raise ConfigError(f"simulate_canary: {what} has no {missing} (keys: {sorted(m)})")
    if not 0 < split < 1:
        raise ConfigError(f"simulate_canary: split={split} must lie strictly between 0 and 1")
    if users < 1 or days < 1 or top_k < 1:
        raise ConfigError(
            f"simulate_canary: users={users}, days={days}, top_k={top_k} must each be >= 1"
        )
    if not requests_per_user > 0:
        raise ConfigError(f"simulate_canary: requests_per_user={requests_per_user} must be > 0")


def _resample(values: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``values[floor(u * n)]``: a uniform draw with replacement for each ``u`` in [0, 1)."""
    return values[np.minimum((u * len(values)).astype(np.int64), len(values) - 1)]


def _latencies(arm: str, values) -> np.ndarray:
    lat = np.asarray(values, dtype=np.float64).ravel()
    if len(lat) == 0 or not np.all(np.isfinite(lat)) or (lat < 0).any():
        raise ConfigError(
            f"simulate_canary: latency_ms[{arm!r}] must hold at least one finite latency >= 0 "
            f"(got {len(lat)} values)"
        )
    return lat


def _query_pool(data, rankings) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``data.queries`` both rankings hold, and their draw probabilities."""
    held = [set(rankings[a].query_ids) for a in ARMS]
    pool = np.array(
        [i for i, q in enumerate(data.queries.ids) if q in held[0] and q in held[1]],
        dtype=np.int64,
    )
    if len(pool) == 0:
        raise ConfigError(
            f"simulate_canary: no query of {data.name!r} is ranked by both arms' rankings"
        )
    freq = data.queries.frequency
    w = np.ones(len(pool)) if freq is None else np.asarray(freq, dtype=float)[pool]
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    if w.sum() <= 0:
        w = np.ones(len(pool))
    return pool, w / w.sum()


def _shown(rankings, pool_ids: list[str], qrels, top_k: int, model: ClickModel):
    """Per arm and pool query: the shown items (indices into the returned item ids, ``-1`` =
    nothing shown), their scores, and their click probabilities (PBM: examination x
    attractiveness) or attractiveness (cascade); arrays of shape ``(2, len(pool_ids), top_k)``."""
    items = np.full((2, len(pool_ids), top_k), -1, dtype=np.int64)
    scores = np.zeros((2, len(pool_ids), top_k), dtype=np.float32)
    prob = np.zeros((2, len(pool_ids), top_k), dtype=np.float64)
    top = max([g for js in qrels.values() for g in js.values()] or [1])
    exam = 1.0 / np.arange(1, top_k + 1, dtype=float) ** model.eta
    control, treatment = (rankings[a] for a in ARMS)
    same = control.item_ids is treatment.item_ids or control.item_ids == treatment.item_ids
    ids = [np.asarray(control.item_ids, dtype=object)]
    if not same:
        ids.append(np.asarray(treatment.item_ids, dtype=object))
    for a, r in enumerate((control, treatment)):
        offset = 0 if a == 0 or same else len(control.item_ids)
        row_of = {q: i for i, q in enumerate(r.query_ids)}
        sel = np.array([row_of[q] for q in pool_ids], dtype=np.int64)
        rows_all, grades_all = grade_matrix(r, qrels, top_k)
        rows, w = rows_all[sel], rows_all.shape[1]
        attr = np.where(rows >= 0, model.attractiveness(grades_all[sel], top), 0.0)
        items[a, :, :w] = np.where(rows >= 0, rows + offset, -1)
        scores[a, :, :w] = np.asarray(r.scores, dtype=np.float32)[sel, :w]
        prob[a, :, :w] = attr * exam[None, :w] if model.kind == "pbm" else attr
    return items, scores, prob, np.concatenate(ids)


def _clicks(
    prob: np.ndarray, shown: np.ndarray, model: ClickModel, rng: np.random.Generator
) -> np.ndarray:
    """Clicked impressions of ``(requests, width)`` shown lists: PBM, independent per impression
    with probability ``prob``; cascade, scanned from the top with attractiveness ``prob``."""
    if model.kind == "pbm":
        return (rng.random(prob.shape) < prob) & shown
    attractive = (rng.random(prob.shape) < prob) & shown
    halts = attractive & (rng.random(prob.shape) < model.stop_prob)
    examined = (np.cumsum(halts, axis=1) - halts) == 0  # no halting click above
    return attractive & examined


def _ids(prefix: str, numbers: pa.Array, width: int) -> pa.Array:
    """``prefix`` + the zero-padded numbers, as strings (``r00000012``)."""
    digits = pc.utf8_lpad(numbers.cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _clear_stale(out: Path, keep: set[str]) -> None:
    """Remove an earlier simulation's other parts; refuse a part not marked simulated."""
    for old in sorted(out.glob("part-*.parquet")):
        try:
            meta = pq.read_metadata(old).metadata or {}
        except (OSError, pa.ArrowException):
            meta = {}
        if meta.get(SIMULATED_KEY.encode()) != b"true":
            where = (
                f"{old} exists and is" if old.name in keep else f"{out} holds {old.name}, which is"
            )
            raise ConfigError(
                f"simulate_canary: {where} not a simulated log; choose another out_dir"
            )
        if old.name not in keep:
            old.unlink()
