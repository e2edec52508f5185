"""Tests whose interval agrees with their p-value: one procedure gives both.

A :class:`DualTest` holds a difference's estimate, its two-sided p for "the difference is 0" and
its interval at any confidence, built by test inversion so that the ``1 - g`` interval excludes 0
exactly when ``p < g``.  The method: docs/explanation/statistics.md ("Quality calls").

>>> import numpy as np
>>> d = np.array([0.10, 0.02, 0.08, -0.01, 0.05, 0.07, 0.03, 0.06])
>>> t = student(d)
>>> bool(t.interval(0.95)[0] > 0) == bool(t.p_value < 0.05)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

_STEPS = 60  # bisection steps of the randomization interval
_BLOCK_CELLS = 1 << 22  # cells of a block of sign assignments


@dataclass(frozen=True)
class DualTest:
    """A difference, its two-sided p for "no difference" and its interval at any confidence
    (excluding 0 exactly when ``p_value < 1 - confidence``)."""

    estimate: float
    p_value: float
    procedure: str
    n: int
    _interval: Callable[[float], tuple[float, float]] = field(repr=False, compare=False)

    def interval(self, confidence: float) -> tuple[float, float]:
        """The two-sided interval at ``confidence`` (NaN when it cannot be computed)."""
        if not 0.0 < confidence <= 1.0:
            raise ValueError(f"confidence={confidence} (expected 0 < confidence <= 1)")
        return self._interval(confidence)


def _nan_interval(_: float) -> tuple[float, float]:
    return math.nan, math.nan


def level_of(confidence: float) -> float:
    """``1 - confidence`` without the float residue (``1 - 0.95`` is ``0.05000000000000004``).

    >>> level_of(0.95)
    0.05
    """
    return round(1.0 - confidence, 12)


def student(differences: np.ndarray) -> DualTest:
    """Paired Student t-test of ``differences`` (candidate - baseline per query)."""
    d = np.asarray(differences, dtype=np.float64).ravel()
    n = int(d.size)
    if n < 2:
        return DualTest(float(d.mean()) if n else math.nan, math.nan, "paired t", n, _nan_interval)
    mean = float(d.mean())
    if np.all(d == d[0]):  # zero variance: t is 0/0 or infinite
        p = 1.0 if d[0] == 0.0 else 0.0
        return DualTest(mean, p, "paired t", n, lambda _c: (mean, mean))
    res = stats.ttest_1samp(d, 0.0, alternative="two-sided")

    def interval(confidence: float) -> tuple[float, float]:
        if confidence >= 1.0:
            return -math.inf, math.inf
        ci = res.confidence_interval(confidence_level=confidence)
        return float(ci.low), float(ci.high)

    return DualTest(mean, float(res.pvalue), "paired t", n, interval)


def sign_blocks(n: int, permutations: int, seed: int):
    """Yield boolean swap matrices (True = swap the pair): all 2**n, or ``permutations`` drawn."""
    rows = max(1, _BLOCK_CELLS // max(n, 1))
    if n < 63 and (1 << n) <= permutations:
        total, bits = 1 << n, np.arange(n, dtype=np.int64)
        for start in range(0, total, rows):
            codes = np.arange(start, min(start + rows, total), dtype=np.int64)
            yield ((codes[:, None] >> bits) & 1).astype(bool)
        return
    rng = np.random.default_rng(seed)
    for start in range(0, permutations, rows):
        yield rng.random((min(rows, permutations - start), n)) < 0.5


def sign_matrix(n: int, permutations: int, seed: int) -> np.ndarray:
    """The randomization test's ``(rows, n)`` +1 / -1 sign assignments (:func:`sign_blocks`)."""
    blocks = [1.0 - 2.0 * b for b in sign_blocks(n, permutations, seed)]
    return np.concatenate(blocks, axis=0) if blocks else np.empty((0, n))


def randomization(
    differences: np.ndarray,
    permutations: int = 1000,
    seed: int = 42,
    signs: np.ndarray | None = None,
) -> DualTest:
    """Fisher's paired randomization test of ``differences``, with its inverted interval: ``p``
    is the share of sign assignments whose ``|sum|`` is at least the observed one (ranx's
    convention).  ``signs`` (:func:`sign_matrix`) shares one set of assignments between metrics."""
    d = np.asarray(differences, dtype=np.float64).ravel()
    n = int(d.size)
    if n < 1:
        return DualTest(math.nan, math.nan, "randomization", 0, _nan_interval)
    if signs is None:
        signs = sign_matrix(n, permutations, seed)
    # For a shift s the permuted sums are A - s * B and the observed one is D - n * s.
    a = signs @ d
    b = signs.sum(axis=1)
    total, rows = float(d.sum()), signs.shape[0]

    def p_at(s: float) -> float:
        tolerance = 1e-9 * float(np.abs(d - s).sum())
        observed = abs(total - n * s)
        return float(np.count_nonzero(np.abs(a - s * b) >= observed - tolerance)) / rows

    estimate = total / n
    p0 = p_at(0.0)
    scale = float(np.ptp(d)) or abs(estimate) or 1.0

    def bound(direction: float, level: float) -> float:
        # accepted: p >= level.  Anchor at 0 when 0 is accepted and lies on this side of the
        # estimate, so an accepted 0 stays inside the interval (and a rejected 0 outside).
        on_side = (0.0 - estimate) * direction >= 0
        accepted = 0.0 if (p0 >= level and on_side) else estimate
        rejected = None
        if p0 < level and on_side:
            rejected = 0.0
        else:
            step = scale
            for _ in range(64):
                x = accepted + direction * step
                if p_at(x) < level:
                    rejected = x
                    break
                accepted, step = x, step * 2.0
            if rejected is None:
                return direction * math.inf
        for _ in range(_STEPS):
            mid = 0.5 * (accepted + rejected)
            if mid in (accepted, rejected):
                break
            if p_at(mid) >= level:
                accepted = mid
            else:
                rejected = mid
        return accepted

    def interval(confidence: float) -> tuple[float, float]:
        level = level_of(confidence)
        if level <= 0.0:
            return -math.inf, math.inf
        return bound(-1.0, level), bound(1.0, level)

    return DualTest(estimate, p0, "randomization", n, interval)


def bootstrap(estimate: float, replicates: np.ndarray) -> DualTest:
    """A bootstrap difference: percentile interval, ``p = 2 * min(#(r <= 0), #(r >= 0)) / B``."""
    r = np.asarray(replicates, dtype=np.float64).ravel()
    r = np.sort(r[np.isfinite(r)])
    b = int(r.size)
    if b == 0 or not math.isfinite(estimate):
        return DualTest(float(estimate), math.nan, "bootstrap", b, _nan_interval)
    below = int(np.searchsorted(r, 0.0, side="right"))  # r <= 0
    above = b - int(np.searchsorted(r, 0.0, side="left"))  # r >= 0
    p = min(1.0, 2.0 * min(below, above) / b)

    def interval(confidence: float) -> tuple[float, float]:
        j = math.ceil(round(level_of(confidence) * b / 2.0, 9))
        if j < 1:
            return float(r[0]), float(r[-1])
        if j > b:
            return math.nan, math.nan
        return float(r[j - 1]), float(r[b - j])

    return DualTest(float(estimate), p, "bootstrap", b, interval)


def adjusted_confidence(alpha: float, p_value: float, p_adjusted: float) -> float:
    """The confidence whose interval agrees with an adjusted p: ``1 - alpha * p / p_adjusted``
    (it excludes 0 exactly when ``p_adjusted < alpha``); unadjusted or 0: ``1 - alpha``.

    >>> adjusted_confidence(0.05, 0.01, 0.03)  # third of three: tested at alpha / 3
    0.9833333333333333
    """
    finite = math.isfinite(p_value) and math.isfinite(p_adjusted)
    if not finite or p_adjusted <= 0.0 or p_adjusted <= p_value:
        return 1.0 - alpha
    return 1.0 - alpha * p_value / p_adjusted
