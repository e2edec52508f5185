"""Score thresholds under the candidate: what a downstream similarity cut-off must become.

Systems downstream of the retriever often cut on similarity ("show items scoring >= 0.3").  A
new model has a new score scale, so the same number no longer means the same thing.  For each
configured threshold ``t`` (``compare.score_thresholds``, default ``[0.3]``) evalkit maps it by
quantile matching on the judged (query, item) pairs both versions scored:

- ``q`` = share of the baseline's pair scores strictly below ``t`` (what the cut drops today);
- the mapped threshold is the ``q``-quantile of the candidate's pair scores (numpy's default
  linear interpolation), so the cut drops the same share of pairs under both versions;

and reports "score >= threshold" as a relevance classifier (grade >= 1 is relevant) under the
baseline at ``t`` and under the candidate at the mapped value: precision (relevant share of the
pairs kept) and recall (kept share of the relevant pairs).

>>> b = np.array([0.1, 0.2, 0.35, 0.5, 0.7]); c = np.array([0.80, 0.82, 0.86, 0.9, 0.95])
>>> m = map_threshold(b, c, 0.3, relevant=np.array([False, False, True, True, True]))
>>> m.share_below, round(m.mapped, 3), m.baseline_precision, m.candidate_recall
(0.4, 0.844, 1.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from evalkit.errors import DataError


@dataclass(frozen=True)
class ThresholdMapping:
    """One threshold, its quantile-matched value under the candidate, and both classifiers."""

    threshold: float
    mapped: float
    share_below: float
    n_pairs: int
    n_relevant: int
    baseline_precision: float
    baseline_recall: float
    candidate_precision: float
    candidate_recall: float

    def to_dict(self) -> dict:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def _classifier(scores: np.ndarray, cut: float, relevant: np.ndarray | None) -> tuple[float, float]:
    if relevant is None:
        return math.nan, math.nan
    kept = scores >= cut
    n_kept, n_rel = int(kept.sum()), int(relevant.sum())
    precision = float((kept & relevant).sum() / n_kept) if n_kept else math.nan
    recall = float((kept & relevant).sum() / n_rel) if n_rel else math.nan
    return precision, recall


def map_threshold(
    baseline: np.ndarray,
    candidate: np.ndarray,
    threshold: float,
    relevant: np.ndarray | None = None,
) -> ThresholdMapping:
    """Quantile-match ``threshold`` from the baseline's score scale to the candidate's.

    ``baseline`` / ``candidate`` are the two versions' scores of the same pairs (aligned);
    ``relevant`` marks the relevant pairs (for precision / recall), or ``None``.
    """
    b = np.asarray(baseline, dtype=np.float64).ravel()
    c = np.asarray(candidate, dtype=np.float64).ravel()
    if b.shape != c.shape:
        raise DataError(
            f"pair scores have {b.size} (baseline) and {c.size} (candidate) values",
            field="pair_similarity",
            expected="both versions' scores of the same pairs",
        )
    rel = None if relevant is None else np.asarray(relevant, dtype=bool).ravel()
    if rel is not None and rel.shape != b.shape:
        raise DataError(
            f"{rel.size} relevance labels for {b.size} pairs",
            field="relevant",
            expected="one label per pair",
        )
    n = b.size
    if n == 0:
        nan = math.nan
        return ThresholdMapping(float(threshold), nan, nan, 0, 0, nan, nan, nan, nan)
    share = float(np.count_nonzero(b < threshold) / n)
    mapped = float(np.quantile(c, share))
    bp, br = _classifier(b, threshold, rel)
    cp, cr = _classifier(c, mapped, rel)
    return ThresholdMapping(
        threshold=float(threshold),
        mapped=mapped,
        share_below=share,
        n_pairs=n,
        n_relevant=int(rel.sum()) if rel is not None else 0,
        baseline_precision=bp,
        baseline_recall=br,
        candidate_precision=cp,
        candidate_recall=cr,
    )


def relevance_of_pairs(
    pair_ids: Sequence[tuple[str, str]], qrels: Mapping[str, Mapping[str, int]]
) -> np.ndarray:
    """``grade >= 1`` for each (query, item) pair (unjudged pairs are not relevant).

    >>> relevance_of_pairs([("q", "a"), ("q", "b")], {"q": {"a": 2, "b": 0}}).tolist()
    [True, False]
    """
    return np.fromiter(
        (qrels.get(q, {}).get(i, 0) >= 1 for q, i in pair_ids), dtype=bool, count=len(pair_ids)
    )


def map_thresholds(
    baseline: np.ndarray,
    candidate: np.ndarray,
    thresholds: Sequence[float],
    relevant: np.ndarray | None = None,
) -> list[ThresholdMapping]:
    """:func:`map_threshold` for every configured threshold."""
    return [map_threshold(baseline, candidate, float(t), relevant) for t in thresholds]


def threshold_key(t: float) -> str:
    """The MLflow-name form of a threshold: ``0.3`` -> ``0.3`` (``threshold_0.3_mapped``).

    >>> threshold_key(0.3), threshold_key(0.25)
    ('0.3', '0.25')
    """
    return f"{t:g}"
