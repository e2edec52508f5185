"""Score thresholds under the candidate: what a downstream similarity cut-off must become.

:func:`map_threshold` maps a cut-off ``t`` to the quantile of B's scores at the share of A's
scores below ``t`` on a :class:`ScorePopulation` (None when that share is 0 or 1).  For users:
docs/explanation/verdict.md ("The checklist and the actions").

>>> pop = ScorePopulation.of(np.array([0.1, 0.2, 0.35, 0.5, 0.7]),
...                          np.array([0.80, 0.82, 0.86, 0.9, 0.95]),
...                          grades=np.array([0, 0, 1, 2, 1]))
>>> m = map_threshold(pop, 0.3)
>>> m.share_below, round(m.mapped, 3), m.baseline_precision, m.candidate_recall
(0.4, 0.844, 1.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.compare.status import jsonable
from evalkit.errors import DataError

UNJUDGED = -1  #: the grade of a retrieved pair nobody judged


@dataclass(frozen=True)
class ScorePopulation:
    """Both versions' scores of the same pairs, aligned, with each pair's grade (``UNJUDGED`` for
    a retrieved pair); ``k``: the cut-off of the retrieved pairs (0: none, ``note`` says why)."""

    baseline: np.ndarray
    candidate: np.ndarray
    grades: np.ndarray
    k: int = 0
    n_queries: int = 0
    note: str = ""

    @classmethod
    def of(
        cls,
        baseline: np.ndarray,
        candidate: np.ndarray,
        grades: np.ndarray | None = None,
        *,
        k: int = 0,
        n_queries: int = 0,
        note: str = "",
    ) -> ScorePopulation:
        """Check and wrap the arrays (``grades=None``: every pair unjudged)."""
        b = np.asarray(baseline, dtype=np.float64).ravel()
        c = np.asarray(candidate, dtype=np.float64).ravel()
        if b.shape != c.shape:
            raise DataError(
                f"pair scores have {b.size} (baseline) and {c.size} (candidate) values",
                field="pair_similarity",
                expected="both versions' scores of the same pairs",
            )
        g = (
            np.full(b.size, UNJUDGED, dtype=np.int64)
            if grades is None
            else np.asarray(grades, dtype=np.int64).ravel()
        )
        if g.shape != b.shape:
            raise DataError(
                f"{g.size} grades for {b.size} pairs", field="grades", expected="one per pair"
            )
        ok = np.isfinite(b) & np.isfinite(c)  # a pair one version could not score is left out
        return cls(b[ok], c[ok], g[ok], int(k), int(n_queries), note)

    @property
    def n_pairs(self) -> int:
        return int(self.baseline.size)

    @property
    def n_judged(self) -> int:
        return int((self.grades >= 0).sum())

    @property
    def n_relevant(self) -> int:
        return int((self.grades >= 1).sum())

    @property
    def n_nonrelevant(self) -> int:
        return int((self.grades == 0).sum())

    @property
    def n_retrieved(self) -> int:
        return self.n_pairs - self.n_judged

    def describe(self) -> str:
        """``1,234 pairs scored by both versions: 300 judged (120 grade 0) + 934 unjudged ...``."""
        text = (
            f"{self.n_pairs:,} pairs scored by both versions: {self.n_judged:,} judged "
            f"({self.n_nonrelevant:,} grade 0)"
        )
        if self.k:
            text += f" + {self.n_retrieved:,} unjudged top-{self.k} pairs of A and B"
            if self.n_queries:
                text += f" on {self.n_queries:,} judged queries"
        if self.note:
            text += f" ({self.note})"
        return text


@dataclass(frozen=True)
class ThresholdMapping:
    """One threshold, its quantile-matched value under the candidate (None: no mapping), and
    "score >= cut" as a relevance classifier under both (NaN without the pairs to tell)."""

    threshold: float
    mapped: float | None
    share_below: float
    n_pairs: int
    n_judged: int
    n_relevant: int
    n_nonrelevant: int
    k: int
    baseline_range: tuple[float, float]  # (min, max) of A's scores
    candidate_range: tuple[float, float]
    baseline_precision: float
    baseline_recall: float
    candidate_precision: float
    candidate_recall: float
    population: str

    def no_mapping_reason(self) -> str:
        """``no mapping: the cut-off lies outside A's scores (A: 0.41 to 0.93)``."""
        if self.n_pairs == 0:
            return "no mapping: no pair was scored by both versions"
        return (
            f"no mapping: the cut-off lies outside A's scores (A: {self.baseline_range[0]:.2f} to "
            f"{self.baseline_range[1]:.2f})"
        )

    def to_dict(self) -> dict:
        """The fields for verdict.json (NaN -> None), with a ``note`` when there is no mapping."""
        out = jsonable(self)
        if self.mapped is None:
            out["note"] = self.no_mapping_reason()
        return out


def _classifier(scores: np.ndarray, cut: float | None, grades: np.ndarray) -> tuple[float, float]:
    """Precision (needs judged grade-0 pairs) and recall of ``score >= cut`` on judged pairs."""
    if cut is None:
        return math.nan, math.nan
    judged = grades >= 0
    s, relevant = scores[judged], grades[judged] >= 1
    kept = s >= cut
    n_kept, n_rel = int(kept.sum()), int(relevant.sum())
    hits = int((kept & relevant).sum())
    has_nonrelevant = bool((~relevant).any())
    precision = hits / n_kept if n_kept and has_nonrelevant else math.nan
    recall = hits / n_rel if n_rel else math.nan
    return float(precision), float(recall)


def map_threshold(population: ScorePopulation, threshold: float) -> ThresholdMapping:
    """Quantile-match ``threshold`` from A's scale to B's (only when ``0 < share below < 1``), with
    the cut's recall and (given grade-0 judgments) precision on the judged pairs."""
    b, c, g = population.baseline, population.candidate, population.grades
    t = float(threshold)
    n = b.size
    nan = math.nan
    share = float(np.count_nonzero(b < t) / n) if n else nan
    mapped: float | None = None
    if n and 0.0 < share < 1.0:
        # numpy's linear interpolation lies between two order statistics of B; the clip only
        # guards against a last-bit rounding outside them.
        mapped = float(np.clip(np.quantile(c, share), c.min(), c.max()))
    bp, br = _classifier(b, t if mapped is not None else None, g)
    cp, cr = _classifier(c, mapped, g)
    return ThresholdMapping(
        threshold=t,
        mapped=mapped,
        share_below=share,
        n_pairs=n,
        n_judged=population.n_judged,
        n_relevant=population.n_relevant,
        n_nonrelevant=population.n_nonrelevant,
        k=population.k,
        baseline_range=(float(b.min()), float(b.max())) if n else (nan, nan),
        candidate_range=(float(c.min()), float(c.max())) if n else (nan, nan),
        baseline_precision=bp,
        baseline_recall=br,
        candidate_precision=cp,
        candidate_recall=cr,
        population=population.describe(),
    )


def grades_of_pairs(
    pair_ids: Sequence[tuple[str, str]], qrels: Mapping[str, Mapping[str, int]]
) -> np.ndarray:
    """Each (query, item) pair's grade, ``UNJUDGED`` (-1) where nobody judged it."""
    return np.fromiter(
        (qrels.get(q, {}).get(i, UNJUDGED) for q, i in pair_ids),
        dtype=np.int64,
        count=len(pair_ids),
    )


def _topk(ranking: Any, queries: Sequence[str], k: int) -> set[tuple[str, str]]:
    if ranking is None:
        return set()
    present = set(ranking.query_ids)
    return {(q, i) for q in queries if q in present for i in ranking.top(q, k)}


def population_of(
    baseline: Any,
    candidate: Any,
    pair_ids: Sequence[tuple[str, str]],
    pair_b: np.ndarray,
    pair_c: np.ndarray,
    qrels: Mapping[str, Mapping[str, int]],
) -> ScorePopulation:
    """The judged pairs (``pair_ids``, aligned scores) plus the unjudged pairs in A's or B's top-k
    of a judged query that both versions scored (:mod:`evalkit.run.retrieved_pairs`)."""
    grades = grades_of_pairs(pair_ids, qrels)
    k = min(baseline.retrieved_k, candidate.retrieved_k)
    if baseline.retrieved_similarity is None or candidate.retrieved_similarity is None or not k:
        missing = [v.name for v in (baseline, candidate) if v.retrieved_similarity is None] or [
            baseline.name
        ]
        note = (
            f"no unjudged top-k pairs: not scored for {' and '.join(missing)}"
            if qrels
            else "no judgments"
        )
        return ScorePopulation.of(pair_b, pair_c, grades, note=note)
    b_at = {p: j for j, p in enumerate(baseline.retrieved_pair_ids)}
    judged = set(pair_ids)
    queries = [q for q, items in qrels.items() if items]
    wanted = _topk(baseline.ranking, queries, k) | _topk(candidate.ranking, queries, k)
    rows_b, rows_c = [], []
    for j, p in enumerate(candidate.retrieved_pair_ids):
        if p in wanted and p not in judged and p in b_at:
            rows_b.append(b_at[p])
            rows_c.append(j)
    rb = np.asarray(baseline.retrieved_similarity, dtype=np.float64)[rows_b]
    rc = np.asarray(candidate.retrieved_similarity, dtype=np.float64)[rows_c]
    return ScorePopulation.of(
        np.concatenate([np.asarray(pair_b, dtype=np.float64), rb]),
        np.concatenate([np.asarray(pair_c, dtype=np.float64), rc]),
        np.concatenate([grades, np.full(rb.size, UNJUDGED, dtype=np.int64)]),
        k=k,
        n_queries=len({q for q, _ in wanted}),
    )


def metric_cutoff(metric: str, default: int) -> int:
    """The cut-off of a ranx metric string (``ndcg@10`` -> 10), ``default`` without one."""
    _, _, k = metric.partition("@")
    return int(k) if k.isdigit() and int(k) > 0 else int(default)


def threshold_key(t: float) -> str:
    """The MLflow-name form of a threshold (``threshold_0.3_mapped``).

    >>> threshold_key(0.3), threshold_key(0.25)
    ('0.3', '0.25')
    """
    return f"{t:g}"
