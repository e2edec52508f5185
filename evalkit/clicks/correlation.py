"""How well one model version's cosine similarities track users' clicks, with bootstrap intervals.

Pooled Spearman, Kendall (tau-b) and Pearson plus the mean within-query Spearman, each with a
percentile interval from a bootstrap over queries that depends only on ``seed``, ``n_boot`` and
the query count, so :func:`difference` of two versions on the same pairs is paired.  The method:
docs/explanation/statistics.md ("Clicks and similarity").

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> q = np.repeat(np.arange(40), 5)
>>> rate = rng.random(200)
>>> base = click_correlation(rate + rng.normal(0, 0.5, 200), rate, q, n_boot=200)
>>> cand = click_correlation(rate + rng.normal(0, 0.1, 200), rate, q, n_boot=200)
>>> d = difference(cand, base)
>>> cand.spearman.value > base.spearman.value, d.spearman.low > 0
(True, True)
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import astuple, dataclass, field

import numba
import numpy as np
from scipy import stats

STATISTICS = ("spearman", "kendall", "pearson", "spearman_within")


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class ClickCorrelation:
    """Similarity-vs-click correlations of one model version (``measure``: ``click_rate`` or
    ``click_share``; ``replicates[stat]``: the bootstrap values, for :func:`difference`)."""

    spearman: Estimate
    kendall: Estimate
    pearson: Estimate
    spearman_within: Estimate
    n_pairs: int
    n_queries: int
    n_queries_within: int
    n_dropped: int
    measure: str
    n_boot: int
    confidence: float
    seed: int
    min_pairs: int
    replicates: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    plan: str = field(repr=False, default="")

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: ``click_<stat>``, ``click_<stat>_ci_low``, ``click_<stat>_ci_high``."""
        return _metric_dict(self, "click_")

    def params(self) -> dict[str, str | int | float]:
        """What the numbers mean: the click measure, pair/query counts, bootstrap settings."""
        return {
            "click_measure": self.measure,
            "click_pairs": self.n_pairs,
            "click_queries": self.n_queries,
            "click_queries_within": self.n_queries_within,
            "click_pairs_dropped": self.n_dropped,
            "click_bootstrap": self.n_boot,
            "click_confidence": self.confidence,
            "click_min_pairs": self.min_pairs,
        }

    def summary(self) -> str:
        """One line per statistic, naming the click measure."""
        label = self.measure.replace("_", " ")
        pct = round(100 * self.confidence)
        return "\n".join(
            f"similarity vs {label}: {s} = {e.value:.4f} [{pct}% CI {e.low:.4f}, {e.high:.4f}]"
            for s, e in ((s, getattr(self, s)) for s in STATISTICS)
        )


@dataclass(frozen=True)
class CorrelationDifference:
    """Candidate minus baseline for each statistic, with paired bootstrap intervals."""

    spearman: Estimate
    kendall: Estimate
    pearson: Estimate
    spearman_within: Estimate
    measure: str
    confidence: float

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: ``delta_click_<stat>`` with ``_ci_low`` / ``_ci_high``."""
        return _metric_dict(self, "delta_click_")


def click_correlation(
    similarity: np.ndarray,
    rate: np.ndarray,
    query_index: np.ndarray,
    *,
    measure: str = "click_rate",
    min_pairs: int = 3,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ClickCorrelation:
    """Correlations of ``similarity`` with ``rate`` and their query-bootstrap intervals; pairs
    whose rate or similarity is not finite are dropped and counted in ``n_dropped``."""
    sim = np.asarray(similarity, dtype=np.float64).reshape(-1)
    y = np.asarray(rate, dtype=np.float64).reshape(-1)
    qi = np.asarray(query_index).reshape(-1)
    if not (len(sim) == len(y) == len(qi)):
        raise ValueError(
            f"similarity ({len(sim)}), rate ({len(y)}) and query_index ({len(qi)}) differ in length"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    keep = np.isfinite(sim) & np.isfinite(y)
    n_dropped = int((~keep).sum())
    x, y = sim[keep], y[keep]
    _, q = np.unique(qi[keep], return_inverse=True)
    q = q.reshape(-1).astype(np.int64)
    n_q = int(q.max() + 1) if len(q) else 0

    point, rho_q, eligible = _point_estimates(x, y, q, n_q, min_pairs)
    reps = _bootstrap(x, y, q, n_q, rho_q, eligible, n_boot, seed)
    return ClickCorrelation(
        **{s: _estimate(point[s], reps[s], confidence) for s in STATISTICS},
        n_pairs=len(x),
        n_queries=n_q,
        n_queries_within=int(eligible.sum()),
        n_dropped=n_dropped,
        measure=measure,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        min_pairs=min_pairs,
        replicates=reps,
        plan=_plan_key(keep, qi, y, seed, n_boot, min_pairs),
    )


def difference(candidate: ClickCorrelation, baseline: ClickCorrelation) -> CorrelationDifference:
    """Candidate minus baseline with a paired percentile interval (same resampled queries)."""
    if candidate.plan != baseline.plan:
        raise ValueError(
            "click correlations are not paired: compute both on the same pairs, rates, query "
            "index, seed and n_boot"
        )
    out = {
        s: _estimate(
            getattr(candidate, s).value - getattr(baseline, s).value,
            candidate.replicates[s] - baseline.replicates[s],
            candidate.confidence,
        )
        for s in STATISTICS
    }
    return CorrelationDifference(**out, measure=candidate.measure, confidence=candidate.confidence)


def _estimate(value: float, reps: np.ndarray, confidence: float) -> Estimate:
    """``value`` with the percentile interval of the finite replicates (NaN when none are)."""
    alpha = (1 - confidence) / 2
    finite = reps[np.isfinite(reps)]
    lo, hi = np.quantile(finite, [alpha, 1 - alpha]) if len(finite) else (np.nan, np.nan)
    return Estimate(float(value), float(lo), float(hi))


def _point_estimates(
    x: np.ndarray, y: np.ndarray, q: np.ndarray, n_q: int, min_pairs: int
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """The four statistics, each query's Spearman (0 where not eligible) and the eligible mask."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input -> NaN is reported as NaN
        pooled = (stats.spearmanr, stats.kendalltau, stats.pearsonr)
        sp, kt, pr = [f(x, y).statistic for f in pooled] if len(x) >= 2 else [np.nan] * 3
    rho_q = per_query_spearman(x, y, q, n_q)
    eligible = (np.bincount(q, minlength=n_q) >= max(min_pairs, 2)) & np.isfinite(rho_q)
    within = float(rho_q[eligible].mean()) if eligible.any() else np.nan
    point = dict(zip(STATISTICS, (float(sp), float(kt), float(pr), within)))
    return point, np.where(eligible, rho_q, 0.0), eligible


def per_query_spearman(x: np.ndarray, y: np.ndarray, q: np.ndarray, n_q: int) -> np.ndarray:
    """Spearman of x and y within each query (NaN for fewer than 2 pairs or constant input)."""
    if len(x) == 0:
        return np.full(n_q, np.nan)
    rx = _within_ranks(x, q)
    ry = _within_ranks(y, q)
    m = np.bincount(q, minlength=n_q).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(q, weights=rx, minlength=n_q) / m
        my = np.bincount(q, weights=ry, minlength=n_q) / m
        dx, dy = rx - mx[q], ry - my[q]
        sxy = np.bincount(q, weights=dx * dy, minlength=n_q)
        sxx = np.bincount(q, weights=dx * dx, minlength=n_q)
        syy = np.bincount(q, weights=dy * dy, minlength=n_q)
        rho = sxy / np.sqrt(sxx * syy)
    return np.where((sxx > 0) & (syy > 0), np.clip(rho, -1.0, 1.0), np.nan)


def _within_ranks(v: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Average (mid) ranks of ``v`` within each query group, 1-based."""
    order = np.lexsort((v, q))
    vs, qs = v[order], q[order]
    n = len(v)
    new_q = np.r_[True, qs[1:] != qs[:-1]]
    new_g = new_q | np.r_[True, vs[1:] != vs[:-1]]
    q_start = np.maximum.accumulate(np.where(new_q, np.arange(n), 0))
    g_starts = np.flatnonzero(new_g)
    g_ends = np.r_[g_starts[1:], n]
    gid = np.cumsum(new_g) - 1
    # 0-based positions within the query: group covers [start, end) -> mid rank (start+end+1)/2
    mid = (g_starts - q_start[g_starts] + g_ends - q_start[g_starts] + 1) / 2.0
    ranks = np.empty(n)
    ranks[order] = mid[gid]
    return ranks


#: Replicates generated per random block; fixed so the resampling plan never depends on memory.
_BLOCK = 16


def resample_counts(
    n_queries: int, n_boot: int, seed: int, start: int = 0, stop: int | None = None
):
    """How often each query is drawn in replicates ``start..stop`` (int64, ``(reps, n_queries)``);
    replicate ``r`` depends only on ``(seed, r, n_queries)``."""
    stop = n_boot if stop is None else stop
    rows = []
    for block in range(start // _BLOCK, (stop + _BLOCK - 1) // _BLOCK):
        rng = np.random.default_rng([seed, block])
        draws = rng.integers(0, n_queries, size=(_BLOCK, n_queries))
        offs = (np.arange(_BLOCK) * n_queries)[:, None]
        counts = np.bincount((draws + offs).ravel(), minlength=_BLOCK * n_queries)
        rows.append(counts.reshape(_BLOCK, n_queries))
    allc = np.concatenate(rows) if rows else np.zeros((0, n_queries), dtype=np.int64)
    first = (start // _BLOCK) * _BLOCK
    return allc[start - first : stop - first].astype(np.int64)


def _bootstrap(
    x: np.ndarray,
    y: np.ndarray,
    q: np.ndarray,
    n_q: int,
    rho_q: np.ndarray,
    eligible: np.ndarray,
    n_boot: int,
    seed: int,
) -> dict[str, np.ndarray]:
    reps = {s: np.full(n_boot, np.nan) for s in STATISTICS}
    if n_boot <= 0 or n_q == 0:
        return reps
    # Sorted orders and tie groups computed once; replicates only change the query weights.
    ox = np.lexsort((y, x))
    xs = x[ox]
    x_starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1], True]).astype(np.int64)
    oy = np.argsort(y, kind="stable")
    ys = y[oy]
    y_starts = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1], True]).astype(np.int64)
    dense = np.cumsum(np.r_[True, ys[1:] != ys[:-1]])
    y_rank = np.empty(len(y), dtype=np.int64)
    y_rank[oy] = dense
    y_rank = y_rank[ox]  # dense 1-based rank of y, in x order
    n_y = int(dense[-1]) if len(dense) else 0
    # Per-query sums for Pearson (centred for numerical stability).
    xc, yc = x - x.mean(), y - y.mean()
    weights = (np.ones_like(xc), xc, yc, xc * xc, yc * yc, xc * yc)
    sums = np.stack([np.bincount(q, weights=w, minlength=n_q) for w in weights], axis=1)
    step = max(_BLOCK, (4_000_000 // max(n_q, 1)) // _BLOCK * _BLOCK)
    elig = eligible.astype(np.float64)
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        counts = resample_counts(n_q, n_boot, seed, start, stop)
        w = counts.astype(np.float64)
        s = w @ sums
        n, sx, sy, sxx, syy, sxy = s.T
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sxy - sx * sy / n
            reps["pearson"][start:stop] = cov / np.sqrt((sxx - sx * sx / n) * (syy - sy * sy / n))
            reps["spearman_within"][start:stop] = (w @ rho_q) / (w @ elig)
        big = w.shape[0] * len(x) >= PARALLEL_WORK
        spearman, kendall = _PARALLEL if big else _SERIAL
        reps["spearman"][start:stop] = spearman(w, q[ox], q[oy], ox, oy, x_starts, y_starts)
        reps["kendall"][start:stop] = kendall(w, q[ox], x_starts, y_rank, n_y)
    return reps


@numba.njit(cache=True)
def _midranks(w_sorted, starts, out):  # pragma: no cover - compiled
    """Weighted average ranks of sorted elements with tie groups ``starts`` (plus end)."""
    before = 0.0
    for g in range(len(starts) - 1):
        a, e = starts[g], starts[g + 1]
        gw = 0.0
        for i in range(a, e):
            gw += w_sorted[i]
        mid = before + (gw + 1.0) / 2.0
        for i in range(a, e):
            out[i] = mid
        before += gw


def _spearman_reps_py(w, q_x, q_y, ox, oy, x_starts, y_starts):  # pragma: no cover - compiled
    """Spearman of each replicate: weighted Pearson of weighted mid-ranks (copies = weights)."""
    n = len(ox)
    out = np.empty(w.shape[0])
    for r in numba.prange(w.shape[0]):
        wx = np.empty(n)
        wy = np.empty(n)
        rxs = np.empty(n)
        rys = np.empty(n)
        rx = np.empty(n)
        ry = np.empty(n)
        wt = np.empty(n)
        for i in range(n):
            wx[i] = w[r, q_x[i]]
            wy[i] = w[r, q_y[i]]
        _midranks(wx, x_starts, rxs)
        _midranks(wy, y_starts, rys)
        for i in range(n):
            rx[ox[i]] = rxs[i]
            wt[ox[i]] = wx[i]
            ry[oy[i]] = rys[i]
        tot = 0.0
        for i in range(n):
            tot += wt[i]
        mean = (tot + 1.0) / 2.0  # mean of ranks 1..N
        sxy = 0.0
        sxx = 0.0
        syy = 0.0
        for i in range(n):
            if wt[i] > 0:
                dx = rx[i] - mean
                dy = ry[i] - mean
                sxy += wt[i] * dx * dy
                sxx += wt[i] * dx * dx
                syy += wt[i] * dy * dy
        out[r] = sxy / np.sqrt(sxx * syy) if sxx > 0 and syy > 0 else np.nan
    return out


def _kendall_reps_py(w, q_x, x_starts, y_rank, n_y):  # pragma: no cover - compiled
    """Kendall tau-b of each replicate: Fenwick-tree count of weighted (dis)concordant pairs, in
    ascending x one tie group at a time (queried before inserted: x ties count neither way)."""
    out = np.empty(w.shape[0])
    for r in numba.prange(w.shape[0]):
        tree = np.zeros(n_y + 1)
        ywt = np.zeros(n_y + 1)
        inserted = 0.0
        s = 0.0
        n1 = 0.0
        for g in range(len(x_starts) - 1):
            a, e = x_starts[g], x_starts[g + 1]
            gw = 0.0
            for i in range(a, e):
                wi = w[r, q_x[i]]
                if wi == 0:
                    continue
                k = y_rank[i] - 1
                less = 0.0
                while k > 0:
                    less += tree[k]
                    k -= k & (-k)
                k = y_rank[i]
                leq = 0.0
                while k > 0:
                    leq += tree[k]
                    k -= k & (-k)
                s += wi * (less - (inserted - leq))
                gw += wi
            for i in range(a, e):
                wi = w[r, q_x[i]]
                if wi == 0:
                    continue
                k = y_rank[i]
                ywt[k] += wi
                while k <= n_y:
                    tree[k] += wi
                    k += k & (-k)
            inserted += gw
            n1 += gw * (gw - 1.0) / 2.0
        n0 = inserted * (inserted - 1.0) / 2.0
        n2 = 0.0
        for k in range(1, n_y + 1):
            n2 += ywt[k] * (ywt[k] - 1.0) / 2.0
        den = (n0 - n1) * (n0 - n2)
        out[r] = s / np.sqrt(den) if den > 0 else np.nan
    return out


# Each kernel is compiled twice: threads over replicates pay off only for large inputs (and
# small ones would wait on busy cores); ``prange`` is a plain ``range`` in the serial build.
_SERIAL = tuple(numba.njit(cache=True)(f) for f in (_spearman_reps_py, _kendall_reps_py))
_PARALLEL = tuple(
    numba.njit(cache=True, parallel=True)(f) for f in (_spearman_reps_py, _kendall_reps_py)
)

#: Pairs x replicates above which the replicate loops run on all cores.
PARALLEL_WORK = 5_000_000


def _plan_key(
    keep: np.ndarray, qi: np.ndarray, y: np.ndarray, seed: int, n_boot: int, mp: int
) -> str:
    """Digest of everything that fixes the resampling, so unpaired differences are refused."""
    h = hashlib.sha256()
    h.update(f"{seed}:{n_boot}:{mp}:{len(keep)}".encode())
    h.update(np.ascontiguousarray(keep).tobytes())
    h.update(np.ascontiguousarray(qi, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    return h.hexdigest()


def _metric_dict(obj: ClickCorrelation | CorrelationDifference, prefix: str) -> dict[str, float]:
    ends = ("", "_ci_low", "_ci_high")
    return {
        f"{prefix}{s}{end}": v for s in STATISTICS for end, v in zip(ends, astuple(getattr(obj, s)))
    }
