"""Simulated click logs from graded judgments over a ranking (for teams without logs, and the demo).

:func:`simulate_clicks` shows each query's top ``depth`` items to its sessions and returns a
:class:`~evalkit.data.click_log.ClickLog` with ``simulated=True``; :class:`ClickModel`: ``pbm`` or
``cascade``, attractiveness by ERR's gain mapping of the grade (docs/explanation/statistics.md).

>>> import numpy as np
>>> from evalkit.retrieve.ranking import Ranking
>>> r = Ranking(["q1"], np.array([[0, 1, 2]]), np.zeros((1, 3), np.float32), ["d1", "d2", "d3"])
>>> log = simulate_clicks(r, {"q1": {"d3": 3}}, sessions=2000, seed=0)
>>> log.measure, log.simulated, log.impressions.tolist()
('click_rate', True, [2000.0, 2000.0, 2000.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from evalkit.data.click_log import ClickLog, from_position_counts
from evalkit.errors import ConfigError
from evalkit.retrieve.bm25 import bm25_ranking

MODELS = ("pbm", "cascade")


class ShownLists(Protocol):
    """What each query was shown: catalog ``rows`` per query (``-1`` = nothing), best first."""

    @property
    def query_ids(self) -> list[str]: ...

    @property
    def indices(self) -> np.ndarray: ...

    @property
    def item_ids(self) -> list[str]: ...


@dataclass(frozen=True)
class ClickModel:
    """Click-model parameters: ``kind`` (``pbm`` or ``cascade``), ``depth`` (results shown per
    session), ``eta`` (PBM: ``P(examine rank r) = 1 / r**eta``), ``alpha_min`` / ``alpha_max``
    (attractiveness of grade 0 / the top grade), ``max_grade`` (default: the judgments' largest)
    and ``stop_prob`` (cascade: the chance a click ends the session)."""

    kind: str = "pbm"
    depth: int = 10
    eta: float = 1.0
    alpha_min: float = 0.05
    alpha_max: float = 0.95
    max_grade: int | None = None
    stop_prob: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in MODELS:
            raise ConfigError(f"clicks.simulate.kind={self.kind!r} is unknown (expected {MODELS})")
        if self.depth < 1:
            raise ConfigError(f"clicks.simulate.depth={self.depth} must be >= 1")
        if not (0 <= self.alpha_min <= self.alpha_max <= 1):
            raise ConfigError(
                f"clicks.simulate alpha_min={self.alpha_min}, alpha_max={self.alpha_max}: expected "
                "0 <= alpha_min <= alpha_max <= 1"
            )
        if not 0 <= self.stop_prob <= 1:
            raise ConfigError(f"clicks.simulate.stop_prob={self.stop_prob} must be in [0, 1]")
        if self.eta < 0:
            raise ConfigError(f"clicks.simulate.eta={self.eta} must be >= 0")

    def attractiveness(self, grades: np.ndarray, max_grade: int) -> np.ndarray:
        """Click probability of an examined item of each grade (negative grades count as 0)."""
        g = np.clip(np.asarray(grades, dtype=float), 0, None)
        top = max(int(self.max_grade if self.max_grade is not None else max_grade), 1)
        gain = (np.exp2(np.minimum(g, top)) - 1) / (2.0**top - 1)
        return self.alpha_min + (self.alpha_max - self.alpha_min) * gain

    def params(self) -> dict[str, float | int | str]:
        return {f"click_sim_{k}": v for k, v in self.__dict__.items() if v is not None}


def sessions_from_frequency(
    frequency: Sequence[float] | np.ndarray, mean_sessions: float = 100, min_sessions: int = 1
) -> np.ndarray:
    """Sessions per query proportional to its frequency, scaled to a mean of ``mean_sessions``."""
    f = np.asarray(frequency, dtype=float)
    f = np.where(np.isfinite(f) & (f > 0), f, 0.0)
    if f.sum() <= 0:
        return np.full(len(f), int(round(mean_sessions)), dtype=np.int64)
    s = np.rint(f / f.mean() * mean_sessions).astype(np.int64)
    return np.maximum(s, min_sessions)


def grade_matrix(
    ranking: ShownLists, qrels: Mapping[str, Mapping[str, int]], depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Catalog rows (``-1`` = none shown) and grades (unjudged = 0) of each query's top ``depth``."""
    rows = np.asarray(ranking.indices[:, :depth], dtype=np.int64)
    n_q, d = rows.shape
    flat = rows.ravel()
    items = np.asarray(ranking.item_ids, dtype=object)
    shown = pd.DataFrame(
        {
            "q": np.repeat(np.asarray(ranking.query_ids, dtype=object), d),
            "item": np.where(flat >= 0, items[np.maximum(flat, 0)], None),
        }
    )
    judged = pd.DataFrame(
        [(q, i, g) for q, js in qrels.items() for i, g in js.items()],
        columns=["q", "item", "grade"],
    ).drop_duplicates(["q", "item"])
    grades = shown.merge(judged, on=["q", "item"], how="left")["grade"]
    grades = grades.fillna(0).to_numpy(dtype=np.int64).reshape(n_q, d)
    return rows, np.where(rows >= 0, grades, -1)


def simulate_clicks(
    ranking: ShownLists,
    qrels: Mapping[str, Mapping[str, int]],
    *,
    model: ClickModel | None = None,
    sessions: int | Sequence[int] | np.ndarray | Mapping[str, int] = 100,
    seed: int = 0,
    judged_only: bool = True,
    source: str = "",
) -> ClickLog:
    """Simulate a click log of ``model`` over ``ranking`` with relevance from ``qrels``.

    ``sessions``: one number for every query, an array aligned with ``ranking.query_ids``, or a
    ``{query_id: sessions}`` mapping.  ``judged_only`` skips queries without any judgment.
    """
    model = model or ClickModel()
    rng = np.random.default_rng(seed)
    qids = list(ranking.query_ids)
    if isinstance(sessions, Mapping):
        n_sess = np.array([int(sessions.get(q, 0)) for q in qids], dtype=np.int64)
    else:
        n_sess = np.broadcast_to(np.asarray(sessions, dtype=np.int64), (len(qids),)).copy()
    if (n_sess < 0).any():
        raise ConfigError("clicks.simulate.sessions must be >= 0")
    if judged_only:
        n_sess[[q not in qrels or not qrels[q] for q in qids]] = 0
    rows, grades = grade_matrix(ranking, qrels, model.depth)
    top = max([g for js in qrels.values() for g in js.values()] or [1])
    attr = np.where(rows >= 0, model.attractiveness(grades, top), 0.0)
    if model.kind == "pbm":
        exam = 1.0 / np.arange(1, rows.shape[1] + 1, dtype=float) ** model.eta
        clicks = rng.binomial(n_sess[:, None], attr * exam[None, :]).astype(float)
    else:
        clicks = _cascade(n_sess, attr, model.stop_prob, rng)
    qi, ri = np.nonzero((rows >= 0) & (n_sess[:, None] > 0))
    items = np.asarray(ranking.item_ids, dtype=object)[rows[qi, ri]]
    return from_position_counts(
        np.asarray(qids, dtype=object)[qi],
        items,
        ri + 1,
        n_sess[qi].astype(float),
        clicks[qi, ri],
        measure="click_rate",
        simulated=True,
        source=source or f"simulated:{model.kind}(seed={seed})",
    )


def _cascade(
    n_sess: np.ndarray,
    attr: np.ndarray,
    stop_prob: float,
    rng: np.random.Generator,
    chunk: int = 200_000,
) -> np.ndarray:
    """Clicks per (query, rank) of the cascade / dependent click model, session by session."""
    n_q, d = attr.shape
    clicks = np.zeros(n_q * d)
    sess_q = np.repeat(np.arange(n_q), n_sess)
    for s in range(0, len(sess_q), chunk):
        q = sess_q[s : s + chunk]
        attractive = rng.random((len(q), d)) < attr[q]
        halts = attractive & (rng.random((len(q), d)) < stop_prob)
        # Examined = no halting click above: exclusive cumulative count of halts is 0.
        examined = (np.cumsum(halts, axis=1) - halts) == 0
        clicked = attractive & examined
        cell = (q[:, None] * d + np.arange(d)[None, :])[clicked]
        clicks += np.bincount(cell, minlength=n_q * d)
    return clicks.reshape(n_q, d)


def simulate_demo_clicks(
    data,
    seed: int = 0,
    *,
    model: ClickModel | None = None,
    sessions: int = 100,
) -> ClickLog:
    """A simulated click log for an ``EvalData`` over a BM25 title ranking (favouring neither
    model), sessions per query following its frequency."""
    if data.judgments is None or not data.judgments.qrels:
        raise ConfigError(
            f"dataset {data.name!r} has no judgments to simulate clicks from (clicks.simulate "
            "needs graded judgments)"
        )
    model = model or ClickModel()
    q = data.queries
    ranking = bm25_ranking(data.catalog.ids, data.catalog.titles, q.ids, q.texts, k=model.depth)
    per_query = sessions
    if q.frequency is not None:
        per_query = sessions_from_frequency(q.frequency, mean_sessions=sessions)
    return simulate_clicks(
        ranking,
        data.judgments.qrels,
        model=model,
        sessions=per_query,
        seed=seed,
        source=f"simulated:{model.kind} clicks over a BM25 title ranking (seed={seed})",
    )
