"""The online A/B's statistics: pure functions over the per-unit sums of
:mod:`evalkit.online.gateway_log`.

- :func:`srm_test` - sample ratio mismatch: chi-square test of units per arm against the split.
- :func:`ratio_estimate` / :func:`ratio_diff` / :func:`metric_diff` - ratio metrics (CTR, MRR of
  the first click, within-request AUC) clustered by the randomization unit: delta method on
  per-unit sums (Deng, Knoblich & Lu 2018), the difference B - A absolute and relative, with a
  fixed-horizon z-interval or (``sequential=True``) the always-valid mixture-SPRT interval of
  :func:`sequential_interval` (Johari, Koomen, Pekelis & Walsh 2017/2022).
- :func:`diff_call` - better / no worse / worse / inconclusive (:func:`evalkit.compare.calls.call`).
- :func:`units_needed` - the units per arm an inconclusive call needs at the observed variance.
- :func:`daily_ratio` / :func:`daily_metric` - a ratio per day with its delta-method interval.

Every interval here is two-sided at ``1 - alpha`` and agrees with its p-value: it excludes 0
exactly when ``p < alpha`` (one procedure gives both, as :mod:`evalkit.compare.intervals`).

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

#: The mixing standard deviation tau of the sequential interval, as a multiple of the metric's
#: non-inferiority margin (see :func:`default_tau`).
TAU_PER_MARGIN = 1.0


# --------------------------------------------------------------------------------------------
# Sample ratio mismatch


@dataclass(frozen=True)
class SRM:
    """Sample ratio mismatch: units per arm against the planned split.

    ``observed_share`` is the treatment's share of units; ``flagged`` is ``p < SRM_ALPHA``
    (the verdict blocks: "traffic split broken, no other figure can be trusted").
    """

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
    """Chi-square goodness of fit of the units per arm against ``split`` (1 degree of freedom).

    ``expected = N * (1 - split, split)``, ``chi2 = sum((observed - expected)**2 / expected)``,
    ``p = P(chi2_1 >= chi2)`` (:func:`scipy.stats.chisquare`).  No units: ``p = 1`` (nothing to
    test; the empty arm is refused elsewhere).

    >>> s = srm_test(50_500, 49_500)
    >>> round(s.chi2, 2), f"{s.p:.1e}", s.flagged, s.observed_share
    (10.0, '1.6e-03', False, 0.495)
    >>> srm_test(51_000, 49_000).flagged
    True
    """
    if not 0.0 < split < 1.0:
        raise ValueError(f"split={split} (expected 0 < split < 1)")
    nc, nt = int(units_control), int(units_treatment)
    total = nc + nt
    exp_c, exp_t = total * (1.0 - split), total * split
    if total == 0:
        return SRM(0, 0, split, 0.0, 1.0, 0.0, 0.0, math.nan)
    res = stats.chisquare([nc, nt], [exp_c, exp_t])
    return SRM(nc, nt, split, float(res.statistic), float(res.pvalue), exp_c, exp_t, nt / total)


# --------------------------------------------------------------------------------------------
# Ratio metrics clustered by unit (delta method)


@dataclass(frozen=True)
class Ratio:
    """One arm's ratio ``value = sum(num) / sum(den)`` over ``n`` units and its delta-method
    variance ``var`` (:func:`ratio_estimate`)."""

    value: float
    var: float
    n: int

    @property
    def se(self) -> float:
        return math.sqrt(self.var) if self.var >= 0 else math.nan

    @property
    def unit_var(self) -> float:
        """The per-unit variance ``n * var`` (what ``n`` more units divide)."""
        return self.n * self.var


def ratio_estimate(num: np.ndarray, den: np.ndarray) -> Ratio:
    """A ratio of per-unit sums and its variance by the delta method, clustered by the unit.

    ``R = sum(num) / sum(den)`` and (Deng, Knoblich & Lu 2018, "Applying the delta method in
    metric analytics: a practical guide with novel ideas", KDD, section 3)::

        Var(R) ~ 1 / (n * mean_den**2) * (s_num**2 - 2 R s_num_den + R**2 s_den**2)
               = sum((num_i - R den_i)**2) / sum(den)**2

    with sample moments over the ``n`` units taken with divisor ``n`` (the second line is the
    same number).  This is the CR0 cluster-robust variance of the impression-level mean (a
    weighted regression on an intercept, clustered by unit), and with one request per unit the
    Wald variance ``p (1 - p) / n`` of a proportion.  Units with ``den = 0`` (no click pair for
    the AUC) add nothing.  NaN when ``sum(den) == 0`` or fewer than 2 units.

    >>> r = ratio_estimate(np.array([1.0, 0, 2, 1]), np.array([2.0, 1, 3, 2]))
    >>> round(r.value, 4), round(r.var, 6), r.n
    (0.5, 0.007812, 4)
    """
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
    """The difference B - A of a ratio metric, clustered by unit (:func:`ratio_diff`).

    ``control`` / ``treatment``: each arm's ratio; ``delta = treatment - control`` with standard
    error ``se`` and the two-sided ``confidence`` interval ``[ci_low, ci_high]`` and p;
    ``rel_delta = treatment / control - 1`` with ``[rel_ci_low, rel_ci_high]``.  ``sequential``:
    the interval and p are always-valid (mixture SPRT with mixing sd ``tau``, ``tau_rel`` on the
    relative scale), else fixed-horizon z.  ``var_control`` / ``var_treatment``: Var of each
    arm's ratio.  ``procedure``: one line naming the method.
    """

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
    procedure: str
    var_control: float = math.nan
    var_treatment: float = math.nan
    rel_se: float = math.nan
    rel_p: float = math.nan
    confidence: float = 0.95
    sequential: bool = False
    tau: float | None = None


def z_interval(delta: float, se: float, alpha: float = 0.05) -> tuple[float, float, float]:
    """Fixed-horizon two-sided z-test and interval: ``delta -+ z_{1-alpha/2} se`` and
    ``p = 2 (1 - Phi(|delta| / se))``.  ``se == 0``: the point, ``p = 1`` when ``delta == 0``
    else 0; NaN in, NaN out.

    >>> [round(v, 4) for v in z_interval(0.02, 0.01)]
    [0.0004, 0.0396, 0.0455]
    """
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
    """Always-valid interval and p-value of an asymptotically normal difference (mixture SPRT).

    Johari, Koomen, Pekelis & Walsh, "Always valid inference: continuous monitoring of A/B
    tests", Operations Research 70(3), 2022 (arXiv:1512.04922, 2015/2017; Optimizely's stats
    engine).  With ``V = se**2`` the variance of the estimate ``delta`` at the current look and a
    normal mixture ``theta ~ N(theta0, tau**2)`` over the alternative, the mixture likelihood
    ratio against ``theta0`` is::

        Lambda(theta0) = sqrt(V / (V + tau**2)) * exp(tau**2 (delta - theta0)**2 / (2 V (V + tau**2)))

    and ``{theta0 : Lambda(theta0) < 1 / alpha}`` is ``delta -+ h``::

        h = sqrt( V (V + tau**2) / tau**2 * ( log((V + tau**2) / V) + 2 log(1 / alpha) ) )

    The always-valid p-value is ``min(1, 1 / Lambda(0))``; the interval excludes 0 exactly when
    ``p < alpha``.  Coverage holds simultaneously over every look (P(some look misses) <= alpha,
    asymptotically), so the canary may be read every day and stopped at any of them.  A caller
    holding earlier looks may intersect their intervals and keep the running minimum of p.

    ``tau`` is the mixing standard deviation, on the scale of ``delta`` (:func:`default_tau`).
    ``se == 0``: the point, p 1 or 0 as :func:`z_interval`.

    >>> low, high, p = sequential_interval(0.02, 0.005, tau=0.01)
    >>> round(low, 4), round(high, 4), round(p, 4)
    (0.0046, 0.0354, 0.0037)
    >>> z_interval(0.02, 0.005)[0] > low  # wider than the fixed-horizon interval
    True
    """
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
    """The default mixing sd of :func:`sequential_interval`: ``TAU_PER_MARGIN * margin``.

    Why the margin: for a given ``V`` the half-width ``h`` is smallest at ``tau**2 ~ 8 V``
    (alpha 0.05), and the call is decided where ``h`` is about the margin.  With ``tau =
    margin``, at the look where ``h = margin`` the interval is within 0.1% of the narrowest any
    tau gives there (``h = 3.036 se`` against the best 3.035 se; a fixed-horizon interval is
    1.96 se).  Too small a tau widens late looks, too large a tau early ones.

    >>> default_tau(0.01)
    0.01
    """
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
    """B - A of a ratio metric from per-unit sums of each arm, clustered by unit.

    Each arm: ``R`` and ``Var(R)`` by :func:`ratio_estimate`; arms independent::

        delta = R_t - R_c,   se = sqrt(Var(R_t) + Var(R_c))
        rel = R_t / R_c - 1, se_rel = sqrt(Var(R_t) / R_c**2 + R_t**2 Var(R_c) / R_c**4)

    (the second by the delta method on ``R_t / R_c``).  Fixed horizon (default): z-test and
    ``1 - alpha`` z-interval (:func:`z_interval`); with one request per unit this is the Wald
    two-proportion test.  ``sequential=True``: the always-valid interval and p of
    :func:`sequential_interval` with mixing sd ``tau`` (required), and ``tau / R_c`` for the
    relative difference.

    >>> d = ratio_diff([1, 0, 2, 1], [2, 1, 3, 2], [2, 1, 2, 1], [2, 2, 3, 2])
    >>> round(d.delta, 4), round(d.se, 4), round(d.rel_delta, 4)
    (0.1667, 0.1267, 0.3333)
    >>> s = ratio_diff([1, 0, 2, 1], [2, 1, 3, 2], [2, 1, 2, 1], [2, 2, 3, 2], sequential=True,
    ...                tau=0.1)
    >>> s.ci_high - s.ci_low > d.ci_high - d.ci_low
    True
    """
    c = ratio_estimate(num_control, den_control)
    t = ratio_estimate(num_treatment, den_treatment)
    delta = t.value - c.value
    se = math.sqrt(c.var + t.var) if math.isfinite(c.var + t.var) else math.nan
    rel, rel_se = _relative_diff(c, t)
    if sequential and tau is None:
        raise ValueError("sequential=True needs tau (default_tau(margin))")
    low, high, p, rlow, rhigh, rp = _diff_intervals(
        delta, se, rel, rel_se, c.value, alpha, tau if sequential else None
    )
    confidence = round(1.0 - alpha, 12)
    return RatioDiff(
        control=c.value,
        treatment=t.value,
        delta=delta,
        ci_low=low,
        ci_high=high,
        p=p,
        rel_delta=rel,
        rel_ci_low=rlow,
        rel_ci_high=rhigh,
        n_control=c.n,
        n_treatment=t.n,
        se=se,
        procedure=_diff_procedure(c.n, t.n, confidence, tau if sequential else None),
        var_control=c.var,
        var_treatment=t.var,
        rel_se=rel_se,
        rel_p=rp,
        confidence=confidence,
        sequential=sequential,
        tau=tau if sequential else None,
    )


def _relative_diff(c: Ratio, t: Ratio) -> tuple[float, float]:
    """``R_t / R_c - 1`` and its delta-method standard error (NaN when ``R_c`` is 0 or NaN)."""
    if math.isfinite(c.value) and c.value != 0.0:
        rel = t.value / c.value - 1.0
        rel_var = t.var / c.value**2 + t.value**2 * c.var / c.value**4
        return rel, math.sqrt(rel_var) if math.isfinite(rel_var) else math.nan
    return math.nan, math.nan


def _diff_intervals(
    delta: float,
    se: float,
    rel: float,
    rel_se: float,
    control: float,
    alpha: float,
    tau: float | None,
) -> tuple[float, float, float, float, float, float]:
    """``(low, high, p)`` of the absolute then of the relative difference: fixed-horizon z when
    ``tau`` is None, else always-valid with mixing sd ``tau`` (``tau / R_c`` relative)."""
    if tau is None:
        return (*z_interval(delta, se, alpha), *z_interval(rel, rel_se, alpha))
    low, high, p = sequential_interval(delta, se, alpha, tau=tau)
    if math.isfinite(rel) and control > 0:
        rlow, rhigh, rp = sequential_interval(rel, rel_se, alpha, tau=tau / abs(control))
    else:
        rlow = rhigh = rp = math.nan
    return low, high, p, rlow, rhigh, rp


def _diff_procedure(n_control: int, n_treatment: int, confidence: float, tau: float | None) -> str:
    """The one-line method of a :class:`RatioDiff` (``tau`` None: fixed-horizon z)."""
    base = (
        f"delta method on per-unit sums clustered by unit (Deng, Knoblich & Lu 2018); "
        f"{n_control:,} vs {n_treatment:,} units"
    )
    if tau is None:
        return f"fixed-horizon {100 * confidence:.3g}% z-interval; {base}"
    return (
        f"always-valid {100 * confidence:.3g}% interval, mixture SPRT (Johari et al. 2022) "
        f"with tau={tau:.4g}; {base}"
    )


def metric_diff(
    control: UnitSums,
    treatment: UnitSums,
    metric: str,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tau: float | None = None,
) -> RatioDiff:
    """:func:`ratio_diff` of a named metric of :data:`METRICS` (``request_ctr``,
    ``impression_ctr``, ``first_click_mrr``, ``score_click_auc``: the within-request AUC of score
    vs click is ``auc_u / auc_pairs``, clustered the same way).

    >>> one = np.ones(3)
    >>> a = UnitSums(one, np.array([1.0, 0, 0]), one, np.array([1.0, 0, 0]), np.array([1.0, 0, 0]),
    ...              np.array([3.0, 0, 1]), np.array([4.0, 0, 2]))
    >>> round(metric_diff(a, a, "score_click_auc").control, 4)
    0.6667
    """
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} (expected one of {', '.join(METRICS)})")
    num, den = METRICS[metric]
    return ratio_diff(
        getattr(control, num),
        getattr(control, den),
        getattr(treatment, num),
        getattr(treatment, den),
        alpha=alpha,
        sequential=sequential,
        tau=tau,
    )


def diff_call(diff: RatioDiff, *, margin: float, alpha: float = 0.05) -> Quality:
    """better / no worse / worse / inconclusive of ``diff`` against an absolute ``margin``
    (:func:`evalkit.compare.calls.call` on its interval; ``better`` needs ``p < alpha``).

    >>> d = RatioDiff(0.3, 0.299, -0.001, -0.02, 0.018, 0.9, 0, 0, 0, 10, 10, 0.01, "")
    >>> str(diff_call(d, margin=0.01))
    'inconclusive'
    """
    return call(diff.delta, diff.ci_low, diff.ci_high, margin=margin, p_value=diff.p, alpha=alpha)


# --------------------------------------------------------------------------------------------
# Units needed


@dataclass(frozen=True)
class UnitsPlan:
    """Units per arm for ``call`` (``no worse``, ``worse`` or ``better``) at ``power``, and how
    many more each arm needs than it has (``more_* = max(0, needed - current)``)."""

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
    """The units per arm that would decide an ``inconclusive`` (or ``no_worse``, not better) call.

    The call planned is the nearer one, as :func:`evalkit.compare.power.plan_queries`: ``no
    worse`` (lower bound > -margin, effect ``e = delta + margin``) when inconclusive with
    ``delta > -margin``, ``worse`` (upper bound < 0, ``e = -delta``) otherwise, ``better`` (lower
    bound > 0, ``e = delta``) from ``no_worse``.  At the observed per-unit variances
    ``v_c = n_c Var(R_c)``, ``v_t = n_t Var(R_t)`` and ``n_t = ratio * n_c`` (default: the
    current ratio of units), a bound of the two-sided ``1 - alpha`` interval clears its value
    with probability ``power`` when (one-sided z-test at ``alpha / 2``)::

        n_c = (z_{1 - alpha/2} + z_{power})**2 * (v_c + v_t / ratio) / e**2

    (statsmodels ``NormalIndPower().solve_power(e / sd, alpha=alpha / 2, power=power,
    ratio=ratio, alternative="larger")`` with ``sd**2 = (v_c + v_t / ratio) / (1 + 1 / ratio)``
    gives the same), rounded up.  With ``tau`` (the sequential interval's mixing sd) the plan is
    for the always-valid interval instead: the variance ``V`` where ``h(V) + z_{power} sqrt(V) =
    e`` (``h``: :func:`sequential_interval`'s half-width), ``n_c = (v_c + v_t / ratio) / V``.
    ``tau`` defaults to ``diff.tau`` when ``diff`` is sequential (the plan is for the interval
    the call reads).  None when no call can be planned (a decided call, ``e <= 0``, or an unknown
    variance).

    >>> d = RatioDiff(0.30, 0.298, -0.002, -0.014, 0.010, 0.7, 0, 0, 0, 20_000, 20_000,
    ...               0.0061, "", var_control=1.8e-5, var_treatment=1.9e-5)
    >>> p = units_needed(d, margin=0.01)
    >>> p.call, p.needed_control, p.more_control
    ('no worse', 90753, 70753)
    """
    status = status or str(diff_call(diff, margin=margin, alpha=alpha))
    if tau is None and diff.sequential:
        tau = diff.tau
    planned = _planned_call(diff, margin, status)
    if planned is None:
        return None
    call_name, effect = planned
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


def _planned_call(diff: RatioDiff, margin: float, status: str) -> tuple[str, float] | None:
    """The nearer call to plan from ``status`` and the effect it needs (None: nothing to plan)."""
    if status == "inconclusive":
        call_name = "no worse" if diff.delta > -margin else "worse"
    elif status == "no_worse" and diff.delta > 0:
        call_name = "better"
    else:
        return None
    effect = {"no worse": diff.delta + margin, "worse": -diff.delta, "better": diff.delta}[
        call_name
    ]
    return call_name, effect


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


# --------------------------------------------------------------------------------------------
# Days (latency: evalkit.online.served_latency)


@dataclass(frozen=True)
class DailyRatio:
    """A ratio per day of one arm: ``day`` (days since 1970-01-01), ``value``, its
    ``[ci_low, ci_high]`` and the units active that day (``n_units``)."""

    day: np.ndarray
    value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_units: np.ndarray
    confidence: float = 0.95


def daily_ratio(
    day: np.ndarray, num: np.ndarray, den: np.ndarray, *, alpha: float = 0.05
) -> DailyRatio:
    """Per day ``d``: ``R_d = sum(num) / sum(den)`` over the (day, unit) rows of that day, and
    the delta-method z-interval ``R_d -+ z_{1-alpha/2} sqrt(sum((num - R_d den)**2)) / sum(den)``
    (:func:`ratio_estimate` per day, clustered by unit).  A day without a denominator is NaN.

    >>> r = daily_ratio(np.array([0, 0, 1, 1, 1]), np.array([1.0, 0, 1, 1, 0]),
    ...                 np.array([2.0, 1, 1, 2, 1]))
    >>> r.day.tolist(), [round(float(v), 4) for v in r.value], r.n_units.tolist()
    ([0, 1], [0.3333, 0.5], [2, 3])
    """
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
    """:func:`daily_ratio` of a named metric of :data:`METRICS` over one arm's per-(day, unit)
    sums.

    >>> from evalkit.online.gateway_log import RequestSums
    >>> s = RequestSums(np.ones(2), np.ones(2))
    >>> daily_metric(DailySums(np.array([5, 6]), s)).value.tolist()
    [1.0, 1.0]
    """
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} (expected one of {', '.join(METRICS)})")
    num, den = METRICS[metric]
    if not all(hasattr(daily.sums, f) for f in (num, den)):
        kept = ", ".join(type(daily.sums).FIELDS)
        raise ValueError(f"metric={metric!r}: the daily sums hold {kept} only")
    return daily_ratio(daily.day, getattr(daily.sums, num), getattr(daily.sums, den), alpha=alpha)
