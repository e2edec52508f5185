"""The online A/B's statistics: pure functions over the per-unit sums of
:mod:`evalkit.online.gateway_log`: sample ratio mismatch (:func:`srm_test`), ratio metrics
clustered by the randomization unit (delta method) with a fixed-horizon or always-valid
(mixture SPRT) interval (:func:`ratio_diff`), their calls, the units an inconclusive call needs,
and daily ratios.  Every interval is two-sided at ``1 - alpha`` and excludes 0 exactly when
``p < alpha``.  The procedures and their papers: docs/explanation/statistics.md.

>>> rng = np.random.default_rng(0)
>>> req_c, req_t = rng.integers(1, 6, 4000), rng.integers(1, 6, 4000)
>>> clk_c, clk_t = rng.binomial(req_c, 0.30), rng.binomial(req_t, 0.33)
>>> d = ratio_diff(clk_c, req_c, clk_t, req_t)
>>> round(d.control, 4), round(d.treatment, 4), round(d.delta, 4), d.p < 0.05
(0.3, 0.3352, 0.0353, True)
>>> str(diff_call(d, margin=0.01))
'better'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from evalkit.compare.calls import Quality, call
from evalkit.online.gateway_log import DailySums, UnitSums

#: SRM blocks below this p (the rule of the large experimentation platforms).
SRM_ALPHA = 0.001

#: Ratio metrics of :class:`~evalkit.online.gateway_log.UnitSums`: name -> (numerator, denominator).
METRICS: dict[str, tuple[str, str]] = {
    "request_ctr": ("clicked_requests", "requests"),
    "impression_ctr": ("clicks", "impressions"),
    "first_click_mrr": ("first_click_rr", "requests"),
    "score_click_auc": ("auc_u", "auc_pairs"),
}

#: The sequential interval's mixing sd tau, as a multiple of the metric's margin (:func:`default_tau`).
TAU_PER_MARGIN = 1.0


@dataclass(frozen=True)
class SRM:
    """Sample ratio mismatch: units per arm against the planned split (flagged: it blocks)."""

    units_control: int
    units_treatment: int
    split: float  # planned share of units for the treatment
    chi2: float
    p: float
    expected_control: float
    expected_treatment: float
    observed_share: float

    @property
    def flagged(self) -> bool:
        return bool(self.p < SRM_ALPHA)


def srm_test(units_control: int, units_treatment: int, split: float = 0.5) -> SRM:
    """Chi-square test (1 dof) of the units per arm against ``split``; no units: ``p = 1``."""
    if not 0.0 < split < 1.0:
        raise ValueError(f"split={split} (expected 0 < split < 1)")
    nc, nt = int(units_control), int(units_treatment)
    total = nc + nt
    exp_c, exp_t = total * (1.0 - split), total * split
    if total == 0:
        return SRM(0, 0, split, 0.0, 1.0, 0.0, 0.0, math.nan)
    res = stats.chisquare([nc, nt], [exp_c, exp_t])
    return SRM(nc, nt, split, float(res.statistic), float(res.pvalue), exp_c, exp_t, nt / total)


@dataclass(frozen=True)
class Ratio:
    """One arm's ratio over ``n`` units and its delta-method variance (:func:`ratio_estimate`)."""

    value: float
    var: float
    n: int

    @property
    def se(self) -> float:
        return math.sqrt(self.var) if self.var >= 0 else math.nan


def ratio_estimate(num: np.ndarray, den: np.ndarray) -> Ratio:
    """A ratio of per-unit sums ``R = sum(num) / sum(den)`` and its delta-method variance,
    clustered by the unit: ``sum((num_i - R den_i)**2) / sum(den)**2`` (Deng, Knoblich & Lu
    2018).  NaN when ``sum(den) == 0`` or fewer than 2 units."""
    x = np.asarray(num, dtype=np.float64).ravel()
    y = np.asarray(den, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"numerator and denominator differ in length: {x.size} vs {y.size}")
    n = int(x.size)
    total = float(y.sum())
    if n == 0 or total == 0.0:
        return Ratio(math.nan, math.nan, n)
    value = float(x.sum()) / total
    if n < 2:
        return Ratio(value, math.nan, n)
    resid = x - value * y
    return Ratio(value, float(resid @ resid) / total**2, n)


@dataclass(frozen=True)
class RatioDiff:
    """The difference B - A of a ratio metric, clustered by unit (:func:`ratio_diff`): each arm's
    ratio, ``delta`` with ``se``, interval and p, ``rel_delta = treatment / control - 1`` with its
    interval; ``sequential``: always-valid (mixing sd ``tau``), else fixed-horizon z."""

    control: float
    treatment: float
    delta: float
    ci_low: float
    ci_high: float
    p: float
    rel_delta: float
    rel_ci_low: float
    rel_ci_high: float
    n_control: int
    n_treatment: int
    se: float
    var_control: float = math.nan
    var_treatment: float = math.nan
    rel_se: float = math.nan
    confidence: float = 0.95
    sequential: bool = False
    tau: float | None = None


def z_interval(delta: float, se: float, alpha: float = 0.05) -> tuple[float, float, float]:
    """Fixed-horizon two-sided z-interval ``delta -+ z_{1-alpha/2} se`` and its p; ``se == 0``:
    the point, ``p = 1`` when ``delta == 0`` else 0; NaN in, NaN out."""
    if not (math.isfinite(delta) and math.isfinite(se)) or se < 0:
        return math.nan, math.nan, math.nan
    if se == 0.0:
        return delta, delta, 1.0 if delta == 0.0 else 0.0
    half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * se
    p = float(2.0 * stats.norm.sf(abs(delta) / se))
    return delta - half, delta + half, p


def sequential_interval(
    delta: float, se: float, alpha: float = 0.05, *, tau: float
) -> tuple[float, float, float]:
    """Always-valid interval and p-value (``min(1, 1 / Lambda(0))``) of an asymptotically normal
    difference: mixture SPRT (Johari et al. 2022) with mixing sd ``tau``, valid over every look."""
    if not tau > 0:
        raise ValueError(f"tau={tau} (expected tau > 0)")
    if not (math.isfinite(delta) and math.isfinite(se)) or se < 0:
        return math.nan, math.nan, math.nan
    if se == 0.0:
        return delta, delta, 1.0 if delta == 0.0 else 0.0
    v, t2 = se * se, tau * tau
    half = math.sqrt(v * (v + t2) / t2 * (math.log((v + t2) / v) + 2.0 * math.log(1.0 / alpha)))
    log_lambda = 0.5 * math.log(v / (v + t2)) + t2 * delta * delta / (2.0 * v * (v + t2))
    p = 1.0 if log_lambda <= 0.0 else math.exp(-log_lambda)
    return delta - half, delta + half, p


def default_tau(margin: float) -> float:
    """The default mixing sd of :func:`sequential_interval`: ``TAU_PER_MARGIN * margin``."""
    if not margin > 0:
        raise ValueError(f"margin={margin} (expected margin > 0)")
    return TAU_PER_MARGIN * margin


def ratio_diff(
    num_control: np.ndarray,
    den_control: np.ndarray,
    num_treatment: np.ndarray,
    den_treatment: np.ndarray,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tau: float | None = None,
) -> RatioDiff:
    """B - A of a ratio metric from each arm's per-unit sums, clustered by unit: fixed-horizon
    z-interval, or with ``sequential=True`` the always-valid one (mixing sd ``tau`` required)."""
    c = ratio_estimate(num_control, den_control)
    t = ratio_estimate(num_treatment, den_treatment)
    if sequential and tau is None:
        raise ValueError("sequential=True needs tau (default_tau(margin))")
    tau = tau if sequential else None
    return RatioDiff(
        control=c.value,
        treatment=t.value,
        n_control=c.n,
        n_treatment=t.n,
        var_control=c.var,
        var_treatment=t.var,
        confidence=round(1.0 - alpha, 12),
        sequential=sequential,
        tau=tau,
        **_diff_fields(c, t, alpha, tau),
    )


def _diff_fields(c: Ratio, t: Ratio, alpha: float, tau: float | None) -> dict[str, float]:
    """B - A and ``R_t / R_c - 1`` with their se and intervals (fixed-horizon z when ``tau`` is
    None, else always-valid with ``tau / R_c`` relative); the relative one NaN when ``R_c`` is 0."""
    delta = t.value - c.value
    se = math.sqrt(c.var + t.var) if math.isfinite(c.var + t.var) else math.nan
    rel = rel_se = math.nan
    if math.isfinite(c.value) and c.value != 0.0:
        rel = t.value / c.value - 1.0
        rel_var = t.var / c.value**2 + t.value**2 * c.var / c.value**4
        rel_se = math.sqrt(rel_var) if math.isfinite(rel_var) else math.nan
    if tau is None:
        low, high, p = z_interval(delta, se, alpha)
        rlow, rhigh, _ = z_interval(rel, rel_se, alpha)
    else:
        low, high, p = sequential_interval(delta, se, alpha, tau=tau)
        rlow = rhigh = math.nan
        if math.isfinite(rel) and c.value > 0:
            rlow, rhigh, _ = sequential_interval(rel, rel_se, alpha, tau=tau / abs(c.value))
    return {
        "delta": delta,
        "se": se,
        "ci_low": low,
        "ci_high": high,
        "p": p,
        "rel_delta": rel,
        "rel_se": rel_se,
        "rel_ci_low": rlow,
        "rel_ci_high": rhigh,
    }


def metric_diff(
    control: UnitSums,
    treatment: UnitSums,
    metric: str,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tau: float | None = None,
) -> RatioDiff:
    """:func:`ratio_diff` of a named metric of :data:`METRICS`."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} (expected one of {', '.join(METRICS)})")
    num, den = METRICS[metric]
    sums = (getattr(arm, name) for arm in (control, treatment) for name in (num, den))
    return ratio_diff(*sums, alpha=alpha, sequential=sequential, tau=tau)


def diff_call(diff: RatioDiff, *, margin: float, alpha: float = 0.05) -> Quality:
    """better / no worse / worse / inconclusive of ``diff`` against an absolute ``margin``."""
    return call(diff.delta, diff.ci_low, diff.ci_high, margin=margin, p_value=diff.p, alpha=alpha)


@dataclass(frozen=True)
class UnitsPlan:
    """Units per arm for ``call`` at ``power``, and how many more each arm needs than it has."""

    call: str
    needed_control: int
    needed_treatment: int
    more_control: int
    more_treatment: int
    alpha: float  # the one-sided level the call's bound tests at (alpha / 2)
    power: float
    sequential: bool = False


def units_needed(
    diff: RatioDiff,
    *,
    margin: float,
    alpha: float = 0.05,
    power: float = 0.8,
    status: str | None = None,
    ratio: float | None = None,
    tau: float | None = None,
) -> UnitsPlan | None:
    """The units per arm that would decide an ``inconclusive`` (or ``no_worse``, not better) call
    at the observed per-unit variances (the nearer call; with ``tau``, default ``diff.tau`` when
    sequential, for the always-valid interval), as :func:`evalkit.compare.power.plan_queries`;
    None when no call can be planned."""
    status = status or str(diff_call(diff, margin=margin, alpha=alpha))
    if tau is None and diff.sequential:
        tau = diff.tau
    if status == "inconclusive" and diff.delta > -margin:  # the nearer call, its effect
        call_name, effect = "no worse", diff.delta + margin
    elif status == "inconclusive":
        call_name, effect = "worse", -diff.delta
    elif status == "no_worse" and diff.delta > 0:
        call_name, effect = "better", diff.delta
    else:
        return None
    nc, nt = diff.n_control, diff.n_treatment
    v_c, v_t = nc * diff.var_control, nt * diff.var_treatment
    if ratio is None:
        ratio = nt / nc if nc > 0 and nt > 0 else 1.0
    spread = v_c + v_t / ratio  # Var(delta) * n_c
    if not (math.isfinite(effect) and math.isfinite(spread)) or effect <= 0 or spread <= 0:
        return None
    z_power = float(stats.norm.ppf(power))
    if tau is None:
        z_alpha = float(stats.norm.ppf(1.0 - alpha / 2.0))
        n_c = (z_alpha + z_power) ** 2 * spread / effect**2
    else:
        var = _sequential_variance(effect, alpha, z_power, tau)
        if var is None:
            return None
        n_c = spread / var
    need_c = max(2, math.ceil(n_c - 1e-9))
    need_t = max(2, math.ceil(ratio * n_c - 1e-9))
    return UnitsPlan(
        call_name,
        need_c,
        need_t,
        max(0, need_c - nc),
        max(0, need_t - nt),
        alpha / 2.0,
        power,
        tau is not None,
    )


def _sequential_variance(effect: float, alpha: float, z_power: float, tau: float) -> float | None:
    """The variance ``V`` where ``h(V) + z_power sqrt(V) = effect`` (``h``: the always-valid
    half-width at mixing sd ``tau``), or None when none down to ``effect**2 * exp(-60)`` is."""

    def gap(log_v: float) -> float:
        v = math.exp(log_v)
        low, high, _ = sequential_interval(0.0, math.sqrt(v), alpha, tau=tau)
        return high + z_power * math.sqrt(v) - effect

    lo, hi = math.log(effect**2) - 60.0, math.log(effect**2)
    if gap(lo) >= 0:
        return None
    return math.exp(optimize.brentq(gap, lo, hi, xtol=1e-12))


@dataclass(frozen=True)
class DailyRatio:
    """One arm's ratio per ``day`` (since 1970-01-01), its interval and the units active."""

    day: np.ndarray
    value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_units: np.ndarray
    confidence: float = 0.95


def daily_ratio(
    day: np.ndarray, num: np.ndarray, den: np.ndarray, *, alpha: float = 0.05
) -> DailyRatio:
    """Per day: the ratio over that day's (day, unit) rows and its delta-method z-interval
    (clustered by unit); a day without a denominator is NaN."""
    d = np.asarray(day).ravel()
    x = np.asarray(num, dtype=np.float64).ravel()
    y = np.asarray(den, dtype=np.float64).ravel()
    days, inv = np.unique(d, return_inverse=True)
    k = days.size
    sx = np.bincount(inv, weights=x, minlength=k)
    sy = np.bincount(inv, weights=y, minlength=k)
    units = np.bincount(inv, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(sy > 0, sx / np.where(sy > 0, sy, 1.0), np.nan)
        resid = x - value[inv] * y
        var = np.bincount(inv, weights=resid * resid, minlength=k) / sy**2
    var = np.where(units >= 2, var, np.nan)
    half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * np.sqrt(var)
    return DailyRatio(days, value, value - half, value + half, units, round(1.0 - alpha, 12))


def daily_metric(
    daily: DailySums, metric: str = "request_ctr", *, alpha: float = 0.05
) -> DailyRatio:
    """:func:`daily_ratio` of a named metric of :data:`METRICS` over one arm's per-(day, unit) sums."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} (expected one of {', '.join(METRICS)})")
    num, den = METRICS[metric]
    if not all(hasattr(daily.sums, f) for f in (num, den)):
        kept = ", ".join(type(daily.sums).FIELDS)
        raise ValueError(f"metric={metric!r}: the daily sums hold {kept} only")
    return daily_ratio(daily.day, getattr(daily.sums, num), getattr(daily.sums, den), alpha=alpha)
