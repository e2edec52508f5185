"""The online A/B's statistics (evalkit/online/stats.py) against independent computations: scipy's
chi-square, statsmodels' two-proportion Wald test, cluster-robust / heteroskedasticity-robust
regressions and NormalIndPower, a unit bootstrap, the mixture likelihood ratio by quadrature;
and seeded simulations of canaries (coverage of the fixed-horizon and always-valid intervals,
the SRM rule's power and false alarms)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import integrate, optimize, stats
from statsmodels.stats import proportion
from statsmodels.stats.power import NormalIndPower

from evalkit.compare.calls import Quality, call
from evalkit.online.gateway_log import DailySums, UnitSums
from evalkit.online.stats import (
    RatioDiff,
    daily_metric,
    daily_ratio,
    default_tau,
    diff_call,
    metric_diff,
    ratio_diff,
    ratio_estimate,
    sequential_interval,
    srm_test,
    units_needed,
    z_interval,
)

SEEDS = range(100)


# ---------------------------------------------------------------------------------------------
# Sample ratio mismatch


@pytest.mark.parametrize(("nc", "nt", "split"), [(50_500, 49_500, 0.5), (9_000, 1_100, 0.1)])
def test_srm_equals_scipy_chisquare(nc, nt, split) -> None:
    s = srm_test(nc, nt, split)
    n = nc + nt
    expected = np.array([n * (1 - split), n * split])
    chi2 = float((((np.array([nc, nt]) - expected) ** 2) / expected).sum())
    assert s.chi2 == pytest.approx(chi2, rel=1e-12)
    assert s.p == pytest.approx(float(stats.chi2.sf(chi2, 1)), rel=1e-9)
    assert (s.expected_control, s.expected_treatment) == pytest.approx(tuple(expected))
    assert s.observed_share == pytest.approx(nt / n)


def test_srm_flags_a_51_49_split_and_not_a_fair_one() -> None:
    """100k units assigned by a seeded binomial: a 51/49 split is flagged (p < 0.001) in at
    least 99 of 100 seeds, a true 50/50 one in at most 1."""
    broken = fair = 0
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        t = int(rng.binomial(100_000, 0.49))
        broken += srm_test(100_000 - t, t, 0.5).flagged
        t = int(rng.binomial(100_000, 0.50))
        fair += srm_test(100_000 - t, t, 0.5).flagged
    assert broken >= 99
    assert fair <= 1


# ---------------------------------------------------------------------------------------------
# Ratio metrics: fixed horizon against statsmodels / scipy


def test_one_request_per_unit_is_the_wald_two_proportion_test() -> None:
    """One request per unit: the request CTR difference is the two-proportion Wald z-test."""
    rng = np.random.default_rng(7)
    nc, nt = 3_000, 2_700
    yc, yt = rng.binomial(1, 0.31, nc).astype(float), rng.binomial(1, 0.335, nt).astype(float)
    for alpha in (0.05, 0.01):
        d = ratio_diff(yc, np.ones(nc), yt, np.ones(nt), alpha=alpha)
        low, high = proportion.confint_proportions_2indep(
            yt.sum(), nt, yc.sum(), nc, method="wald", compare="diff", alpha=alpha
        )
        res = proportion.test_proportions_2indep(
            yt.sum(), nt, yc.sum(), nc, method="wald", compare="diff"
        )
        assert d.delta == pytest.approx(yt.mean() - yc.mean(), rel=1e-12)
        assert (d.ci_low, d.ci_high) == pytest.approx((low, high), rel=1e-10)
        assert d.p == pytest.approx(res.pvalue, rel=1e-9)
        assert (d.ci_low > 0) == (d.p < alpha)


def _clustered_arm(rng, n_units, mean_p, kappa=3.0, mean_requests=4.0):
    """Per-unit sums of users with Poisson(+1) requests and a Beta click probability each."""
    requests = 1 + rng.poisson(mean_requests - 1, n_units)
    p = rng.beta(kappa * mean_p, kappa * (1 - mean_p), n_units)
    clicked = rng.binomial(requests, p)
    impressions = requests * 10
    clicks = clicked + rng.binomial(impressions - requests, p / 4)
    return requests.astype(float), clicked.astype(float), impressions.astype(float), clicks


def test_delta_method_equals_cluster_robust_regression() -> None:
    """Impression CTR: OLS of the impression-level click on (1, treatment) with CR0 standard
    errors clustered by unit gives the same delta, se, p and interval."""
    rng = np.random.default_rng(11)
    *_, imp_c, clk_c = _clustered_arm(rng, 400, 0.05)
    *_, imp_t, clk_t = _clustered_arm(rng, 350, 0.06)
    d = ratio_diff(clk_c, imp_c, clk_t, imp_t)
    rows, y, treat = [], [], []
    for arm, (imp, clk) in enumerate(((imp_c, clk_c), (imp_t, clk_t))):
        for u, (m, c) in enumerate(zip(imp.astype(int), clk.astype(int))):
            rows += [arm * 10_000 + u] * m
            y += [1.0] * c + [0.0] * (m - c)
            treat += [arm] * m
    x = sm.add_constant(np.array(treat, dtype=float))
    fit = sm.OLS(np.array(y), x).fit(
        cov_type="cluster",
        cov_kwds={"groups": np.array(rows), "use_correction": False},
        use_t=False,
    )
    assert d.delta == pytest.approx(fit.params[1], rel=1e-10)
    assert d.se == pytest.approx(fit.bse[1], rel=1e-8)
    assert d.p == pytest.approx(fit.pvalues[1], rel=1e-6)
    assert (d.ci_low, d.ci_high) == pytest.approx(tuple(fit.conf_int(0.05)[1]), rel=1e-8)


def test_delta_method_equals_weighted_regression_hc0_and_closed_form() -> None:
    """Any ratio of per-unit sums (the first click's reciprocal rank per request): WLS of
    num / den on (1, treatment) with weights den and HC0 errors; and the closed form of Deng et
    al. from sample moments, computed here independently, for each arm and the relative delta."""
    rng = np.random.default_rng(5)
    req_c, clicked_c, *_ = _clustered_arm(rng, 900, 0.3)
    req_t, clicked_t, *_ = _clustered_arm(rng, 1_000, 0.28)
    rr_c = clicked_c * rng.uniform(0.3, 1.0, req_c.size)
    rr_t = clicked_t * rng.uniform(0.3, 1.0, req_t.size)
    d = ratio_diff(rr_c, req_c, rr_t, req_t)

    y = np.concatenate([rr_c / req_c, rr_t / req_t])
    x = sm.add_constant(np.r_[np.zeros(req_c.size), np.ones(req_t.size)])
    fit = sm.WLS(y, x, weights=np.concatenate([req_c, req_t])).fit(cov_type="HC0")
    assert d.delta == pytest.approx(fit.params[1], rel=1e-10)
    assert d.se == pytest.approx(fit.bse[1], rel=1e-8)

    def closed_form(num, den):
        n = num.size
        r = num.sum() / den.sum()
        cov = np.cov(np.vstack([num, den]), ddof=0)
        return r, (cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (n * den.mean() ** 2)

    (rc, vc), (rt, vt) = closed_form(rr_c, req_c), closed_form(rr_t, req_t)
    assert ratio_estimate(rr_c, req_c).var == pytest.approx(vc, rel=1e-10)
    assert (d.var_control, d.var_treatment) == pytest.approx((vc, vt), rel=1e-10)
    # relative: the gradient of f(rc, rt) = rt / rc - 1, numerically
    h = 1e-7
    g = np.array([((rt / (rc + h)) - (rt / (rc - h))) / (2 * h), 1 / rc])
    rel_se = math.sqrt(g[0] ** 2 * vc + g[1] ** 2 * vt)
    assert d.rel_delta == pytest.approx(rt / rc - 1, rel=1e-12)
    assert d.rel_se == pytest.approx(rel_se, rel=1e-6)
    z = stats.norm.ppf(0.975)
    assert (d.rel_ci_low, d.rel_ci_high) == pytest.approx(
        (d.rel_delta - z * rel_se, d.rel_delta + z * rel_se), rel=1e-6
    )


def test_delta_method_matches_a_unit_bootstrap() -> None:
    """Large sample: the delta-method se of the absolute and relative difference is within 6%
    of the standard deviation of 2000 bootstrap replicates resampling units."""
    rng = np.random.default_rng(3)
    req_c, clicked_c, *_ = _clustered_arm(rng, 5_000, 0.3, kappa=1.5, mean_requests=6)
    req_t, clicked_t, *_ = _clustered_arm(rng, 5_000, 0.32, kappa=1.5, mean_requests=6)
    d = ratio_diff(clicked_c, req_c, clicked_t, req_t)
    b = 2_000
    ic = rng.integers(0, req_c.size, (b, req_c.size))
    it = rng.integers(0, req_t.size, (b, req_t.size))
    rc = clicked_c[ic].sum(1) / req_c[ic].sum(1)
    rt = clicked_t[it].sum(1) / req_t[it].sum(1)
    assert d.se == pytest.approx(np.std(rt - rc), rel=0.06)
    assert d.rel_se == pytest.approx(np.std(rt / rc - 1), rel=0.06)
    assert d.delta == pytest.approx(np.mean(rt - rc), abs=0.2 * d.se)


def test_within_request_auc_is_a_clustered_ratio() -> None:
    """AUC of score vs click within requests: the per-unit sums of Mann-Whitney U (scipy) and
    of clicked x not-clicked pairs give the pooled AUC, and its se is the HC0 one."""
    rng = np.random.default_rng(8)
    arms = []
    for shift in (0.6, 0.4):  # the control's scores track clicks better
        u_sum, pairs = [], []
        for _unit in range(300):
            u_unit = p_unit = 0.0
            for _req in range(int(rng.integers(1, 5))):
                clicked = rng.random(10) < 0.15
                scores = rng.normal(0, 1, 10) + shift * clicked
                if 0 < clicked.sum() < 10:
                    u_unit += stats.mannwhitneyu(scores[clicked], scores[~clicked]).statistic
                    p_unit += clicked.sum() * (~clicked).sum()
            u_sum.append(u_unit)
            pairs.append(p_unit)
        arms.append((np.array(u_sum), np.array(pairs)))
    (uc, pc), (ut, pt) = arms
    one = np.ones(uc.size)
    sums = [UnitSums(one, one, one, one, one, u, p) for u, p in arms]
    d = metric_diff(sums[0], sums[1], "score_click_auc")
    assert d.control == pytest.approx(uc.sum() / pc.sum())
    assert d.treatment == pytest.approx(ut.sum() / pt.sum())
    assert 0.6 < d.control < 0.75 and d.delta < 0
    keep_c, keep_t = pc > 0, pt > 0  # units without a pair add nothing
    y = np.concatenate([uc[keep_c] / pc[keep_c], ut[keep_t] / pt[keep_t]])
    x = sm.add_constant(np.r_[np.zeros(keep_c.sum()), np.ones(keep_t.sum())])
    w = np.concatenate([pc[keep_c], pt[keep_t]])
    fit = sm.WLS(y, x, weights=w).fit(cov_type="HC0")
    assert d.delta == pytest.approx(fit.params[1], rel=1e-10)
    assert d.se == pytest.approx(fit.bse[1], rel=1e-8)


def test_degenerate_ratios() -> None:
    zero = np.zeros(5)
    d = ratio_diff(zero, np.ones(5), zero, np.ones(5))
    assert (d.delta, d.ci_low, d.ci_high, d.p) == (0.0, 0.0, 0.0, 1.0)
    assert math.isnan(d.rel_delta)
    assert math.isnan(ratio_estimate(np.zeros(3), np.zeros(3)).value)
    assert math.isnan(ratio_estimate(np.ones(1), np.ones(1)).var)
    assert all(math.isnan(v) for v in z_interval(math.nan, 0.1))


def test_calls_are_compare_quality_calls() -> None:
    rng = np.random.default_rng(2)
    for shift in (-0.05, -0.005, 0.0, 0.03):
        req_c, clk_c, *_ = _clustered_arm(rng, 800, 0.3)
        req_t, clk_t, *_ = _clustered_arm(rng, 800, 0.3 + shift)
        d = ratio_diff(clk_c, req_c, clk_t, req_t)
        want = call(d.delta, d.ci_low, d.ci_high, margin=0.01, p_value=d.p, alpha=0.05)
        assert diff_call(d, margin=0.01) == want
    assert isinstance(want, Quality)


# ---------------------------------------------------------------------------------------------
# Always-valid interval


def _mixture_lr(delta: float, theta0: float, v: float, tau: float) -> float:
    """The mixture likelihood ratio by quadrature: int N(delta; t, V) N(t; theta0, tau^2) dt /
    N(delta; theta0, V)."""
    sd = math.sqrt(v)
    top, _ = integrate.quad(
        lambda t: stats.norm.pdf(delta, t, sd) * stats.norm.pdf(t, theta0, tau),
        theta0 - 12 * tau,
        theta0 + 12 * tau,
        points=[delta],
        epsabs=0,
        epsrel=1e-11,
        limit=200,
    )
    return top / stats.norm.pdf(delta, theta0, sd)


@pytest.mark.parametrize(("delta", "se", "tau"), [(0.02, 0.005, 0.01), (-0.003, 0.004, 0.02)])
def test_sequential_interval_inverts_the_mixture_likelihood_ratio(delta, se, tau) -> None:
    """The bounds are where the mixture likelihood ratio (by quadrature) reaches 1 / alpha, and
    the always-valid p is 1 / LR at 0."""
    alpha = 0.05
    low, high, p = sequential_interval(delta, se, alpha, tau=tau)
    v = se * se
    for bound in (low, high):
        assert _mixture_lr(delta, bound, v, tau) == pytest.approx(1 / alpha, rel=1e-6)
    assert p == pytest.approx(min(1.0, 1.0 / _mixture_lr(delta, 0.0, v, tau)), rel=1e-6)


def test_sequential_p_agrees_with_its_interval() -> None:
    rng = np.random.default_rng(0)
    for delta, se in zip(rng.normal(0, 0.02, 300), rng.uniform(0.001, 0.02, 300)):
        low, high, p = sequential_interval(float(delta), float(se), 0.05, tau=0.01)
        assert (low > 0 or high < 0) == (p < 0.05)
        assert low < z_interval(float(delta), float(se))[0]


def test_default_tau_is_near_the_narrowest_where_the_call_is_decided() -> None:
    """tau = margin: at the variance where the half-width equals the margin, no tau gives an
    interval more than 0.1% narrower."""
    margin, alpha = 0.01, 0.05
    tau = default_tau(margin)

    def half(v, t):
        low, high, _ = sequential_interval(0.0, math.sqrt(v), alpha, tau=t)
        return high

    v = optimize.brentq(lambda v: half(v, tau) - margin, 1e-10, margin**2)
    best = optimize.minimize_scalar(lambda lt: half(v, math.exp(lt)), bounds=(-12, 0)).fun
    assert margin <= best * 1.001


# ---------------------------------------------------------------------------------------------
# Coverage on simulated canaries

# Users of three kinds: requests per active day (Poisson rate), click probability mean per arm.
RATES = np.array([0.15, 0.5, 1.5])
SHARES = np.array([0.5, 0.35, 0.15])
MEAN_P = {"control": np.array([0.40, 0.30, 0.20]), "treatment": np.array([0.42, 0.31, 0.19])}
KAPPA = 4.0  # Beta(kappa m, kappa (1 - m)) per user: clicks strongly correlated within a user
DAYS, USERS = 14, 3_000


def _true_ctr(arm: str) -> float:
    """The ratio estimand E[clicked requests] / E[requests]: arrival is independent of the
    kind, so each look's estimand is sum(share * rate * mean_p) / sum(share * rate)."""
    return float((SHARES * RATES * MEAN_P[arm]).sum() / (SHARES * RATES).sum())


def _canary(seed: int):
    """Cumulative per-unit sums after each day, (USERS, DAYS) per arm: users arrive on a uniform
    day and then make Poisson(rate) requests a day, each clicked with the user's probability."""
    rng = np.random.default_rng(seed)
    out = []
    for arm in ("control", "treatment"):
        kind = rng.choice(3, USERS, p=SHARES)
        m = MEAN_P[arm][kind]
        p = rng.beta(KAPPA * m, KAPPA * (1 - m))
        active = np.arange(DAYS)[None, :] >= rng.integers(0, DAYS, USERS)[:, None]
        requests = rng.poisson(RATES[kind][:, None] * active)
        clicked = rng.binomial(requests, p[:, None])
        out.append((np.cumsum(requests, 1).astype(float), np.cumsum(clicked, 1).astype(float)))
    return out


def test_coverage_of_fixed_and_sequential_intervals_on_simulated_canaries() -> None:
    """100 seeded canaries: the 95% fixed-horizon interval at the end covers the true difference
    in at least 90, and the always-valid interval covers it at every one of 14 daily looks
    (cumulative data) in at least 90; the fixed one read every day does not (peeking)."""
    truth = _true_ctr("treatment") - _true_ctr("control")
    tau = default_tau(0.01)
    fixed_end = seq_all_days = fixed_all_days = 0
    for seed in SEEDS:
        (req_c, clk_c), (req_t, clk_t) = _canary(seed)
        seq_ok = fixed_ok = True
        for day in range(DAYS):
            seen_c, seen_t = req_c[:, day] > 0, req_t[:, day] > 0  # units in the log so far
            args = (clk_c[seen_c, day], req_c[seen_c, day], clk_t[seen_t, day], req_t[seen_t, day])
            f = ratio_diff(*args)
            s = ratio_diff(*args, sequential=True, tau=tau)
            seq_ok &= s.ci_low <= truth <= s.ci_high
            fixed_ok &= f.ci_low <= truth <= f.ci_high
        fixed_end += f.ci_low <= truth <= f.ci_high
        seq_all_days += seq_ok
        fixed_all_days += fixed_ok
    assert fixed_end >= 90, fixed_end
    assert seq_all_days >= 90, seq_all_days
    # a fixed-horizon interval read every day misses on some day far more often (76 here)
    assert fixed_all_days < 90 <= seq_all_days, (fixed_all_days, seq_all_days)


# ---------------------------------------------------------------------------------------------
# Units needed


def _diff(delta: float, var_c: float, var_t: float, nc: int, nt: int):
    se = math.sqrt(var_c + var_t)
    low, high, p = z_interval(delta, se)
    return RatioDiff(
        control=0.3,
        treatment=0.3 + delta,
        delta=delta,
        ci_low=low,
        ci_high=high,
        p=p,
        rel_delta=0,
        rel_ci_low=0,
        rel_ci_high=0,
        n_control=nc,
        n_treatment=nt,
        se=se,
        var_control=var_c,
        var_treatment=var_t,
    )


@pytest.mark.parametrize("ratio", [None, 0.25])
def test_units_needed_equals_statsmodels_normal_ind_power(ratio) -> None:
    """No worse (inconclusive, delta > -margin): NormalIndPower, one-sided at alpha / 2, with the
    standardised effect of the per-unit variances."""
    nc, nt = 20_000, 5_000
    d = _diff(-0.002, 2.0e-5, 8.0e-5, nc, nt)
    assert diff_call(d, margin=0.01) == Quality.INCONCLUSIVE
    plan = units_needed(d, margin=0.01, ratio=ratio)
    r = nt / nc if ratio is None else ratio
    v_c, v_t = nc * 2.0e-5, nt * 8.0e-5
    sd = math.sqrt((v_c + v_t / r) / (1 + 1 / r))
    n1 = NormalIndPower().solve_power(
        effect_size=(d.delta + 0.01) / sd, alpha=0.025, power=0.8, ratio=r, alternative="larger"
    )
    assert plan.call == "no worse"
    assert plan.needed_control == math.ceil(float(n1) - 1e-6)
    assert plan.needed_treatment == pytest.approx(r * float(n1), abs=1.01)
    assert plan.more_control == plan.needed_control - nc
    assert plan.more_treatment == max(0, plan.needed_treatment - nt)


def test_units_needed_plans_the_reachable_call() -> None:
    worse = _diff(-0.012, 2e-5, 2e-5, 10_000, 10_000)
    plan = units_needed(worse, margin=0.01)
    assert plan.call == "worse"
    gain = _diff(0.004, 1e-5, 1e-5, 10_000, 10_000)
    assert diff_call(gain, margin=0.01) == Quality.NO_WORSE
    assert units_needed(gain, margin=0.01).call == "better"
    decided = _diff(0.02, 1e-6, 1e-6, 10_000, 10_000)
    assert units_needed(decided, margin=0.01) is None
    # at the planned units the bound clears its value with the planned power (z closed form)
    d = _diff(-0.002, 2e-5, 2e-5, 20_000, 20_000)
    plan = units_needed(d, margin=0.01)
    se = math.sqrt(2 * 20_000 * 2e-5 / plan.needed_control)
    power = stats.norm.cdf((d.delta + 0.01 - stats.norm.ppf(0.975) * se) / se)
    assert power == pytest.approx(0.8, abs=2e-3)
    # the always-valid interval needs more units
    seq = units_needed(d, margin=0.01, tau=default_tau(0.01))
    assert seq.sequential and seq.needed_control > plan.needed_control
    assert units_needed(dataclasses.replace(d, sequential=True, tau=0.01), margin=0.01) == seq
    se = math.sqrt(2 * 20_000 * 2e-5 / seq.needed_control)
    low, _high, _p = sequential_interval(d.delta, se, 0.05, tau=0.01)
    shortfall = d.delta - low  # half-width; bound clears -margin w.p. power
    power = stats.norm.cdf((d.delta + 0.01 - shortfall) / se)
    assert power == pytest.approx(0.8, abs=2e-3)


# ---------------------------------------------------------------------------------------------
# Days


def test_daily_ratio_is_the_ratio_estimate_of_each_day() -> None:
    rng = np.random.default_rng(12)
    day = rng.integers(19_000, 19_007, 2_000)
    req = rng.integers(1, 6, 2_000).astype(float)
    clk = rng.binomial(req.astype(int), 0.3).astype(float)
    r = daily_ratio(day, clk, req, alpha=0.1)
    z = stats.norm.ppf(0.95)
    for i, d in enumerate(r.day):
        est = ratio_estimate(clk[day == d], req[day == d])
        assert r.value[i] == pytest.approx(est.value)
        assert r.ci_low[i] == pytest.approx(est.value - z * est.se)
        assert r.ci_high[i] == pytest.approx(est.value + z * est.se)
        assert r.n_units[i] == (day == d).sum()
    ones = np.ones(day.size)
    sums = UnitSums(req, clk, ones, ones, ones, ones, ones)
    assert np.allclose(daily_metric(DailySums(day, sums)).value, daily_ratio(day, clk, req).value)
