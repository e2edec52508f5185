"""Shadow drift of similarity scores on the judged / logged (query, item) pairs.

Each version's mean cosine similarity on the same pairs and the shift (candidate - baseline), and
the share of pairs scoring strictly below a low-score threshold and its change.

>>> d = similarity_drift(np.array([0.5, 0.2, 0.8]), np.array([0.25, 0.1, 0.8]), threshold=0.3)
>>> round(d.mean_shift, 3), round(d.low_share_delta, 3), d.n_pairs
(-0.117, 0.333, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from evalkit.errors import DataError


@dataclass(frozen=True)
class SimilarityDrift:
    """Mean cosine and low-score share per version on the same pairs, with histograms for plots."""

    n_pairs: int
    threshold: float
    baseline_mean: float
    candidate_mean: float
    mean_shift: float
    baseline_low_share: float
    candidate_low_share: float
    low_share_delta: float
    hist_edges: list[float] = field(default_factory=list)
    baseline_hist: list[int] = field(default_factory=list)
    candidate_hist: list[int] = field(default_factory=list)


def similarity_drift(
    baseline: np.ndarray, candidate: np.ndarray, threshold: float = 0.3, bins: int = 40
) -> SimilarityDrift:
    """Drift between two versions' similarities of the same pairs (aligned 1-D arrays)."""
    b = np.asarray(baseline, dtype=np.float64).ravel()
    c = np.asarray(candidate, dtype=np.float64).ravel()
    if b.shape != c.shape:
        raise DataError(
            f"pair similarities have {b.size} (baseline) and {c.size} (candidate) values",
            field="pair_similarity",
            expected="one similarity per judged/logged pair for both versions",
        )
    for side, arr in (("baseline", b), ("candidate", c)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise DataError(
                f"{side} pair similarity {int(np.argmax(bad)) + 1} is {arr[np.argmax(bad)]}",
                row=int(np.argmax(bad)) + 1,
                field="pair_similarity",
                expected="finite cosine similarities",
            )
    n = b.size
    if n == 0:
        nan = math.nan
        return SimilarityDrift(0, threshold, nan, nan, nan, nan, nan, nan)
    b_mean, c_mean = float(b.mean()), float(c.mean())
    b_low = float(np.count_nonzero(b < threshold) / n)
    c_low = float(np.count_nonzero(c < threshold) / n)
    lo = float(min(b.min(), c.min(), threshold))
    hi = float(max(b.max(), c.max(), threshold))
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, bins + 1)
    return SimilarityDrift(
        n_pairs=n,
        threshold=threshold,
        baseline_mean=b_mean,
        candidate_mean=c_mean,
        mean_shift=c_mean - b_mean,
        baseline_low_share=b_low,
        candidate_low_share=c_low,
        low_share_delta=c_low - b_low,
        hist_edges=edges.tolist(),
        baseline_hist=np.histogram(b, edges)[0].tolist(),
        candidate_hist=np.histogram(c, edges)[0].tolist(),
    )


def align_pairs(
    baseline_ids: Sequence[tuple[str, str]],
    baseline_sim: np.ndarray,
    candidate_ids: Sequence[tuple[str, str]],
    candidate_sim: np.ndarray,
) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Both versions' similarities matched by pair id, in the baseline's order."""
    b = np.asarray(baseline_sim, dtype=np.float64).ravel()
    c = np.asarray(candidate_sim, dtype=np.float64).ravel()
    for side, ids, sim in (("baseline", baseline_ids, b), ("candidate", candidate_ids, c)):
        if len(ids) != sim.size:
            raise DataError(
                f"{side} has {len(ids)} pair ids but {sim.size} similarities",
                field="pair_similarity",
                expected="one similarity per pair id",
            )
    if list(baseline_ids) == list(candidate_ids):
        return list(baseline_ids), b, c
    where = {tuple(p): i for i, p in enumerate(candidate_ids)}
    missing = [p for p in baseline_ids if tuple(p) not in where]
    if missing or len(where) != len(baseline_ids):
        example = missing[0] if missing else "(candidate has extra pairs)"
        raise DataError(
            f"the versions scored different (query, item) pairs, e.g. {example}",
            field="pair_ids",
            expected="the same judged/logged pairs for every version",
        )
    order = np.fromiter((where[tuple(p)] for p in baseline_ids), dtype=np.int64, count=b.size)
    return list(baseline_ids), b, c[order]
