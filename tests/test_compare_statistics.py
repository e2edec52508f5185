"""The verdict's statistics against scipy and statsmodels (issue 15, section 2 and 3).

- Every interval agrees with its p-value: it excludes 0 exactly when p < 1 - confidence, for the
  paired t-test, the randomization test and the paired bootstrap.
- The primary metric is tested alone at the full alpha; the secondary family (other metrics and
  click differences) is Holm-corrected among itself with statsmodels' ``multipletests``.
- ``queries_needed`` is statsmodels' ``TTestPower.solve_power`` at the observed effect.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from evalkit.compare.calls import Quality
from evalkit.compare.intervals import bootstrap, randomization, sign_matrix, student
from evalkit.compare.multiplicity import fixed_sequence
from evalkit.compare.power import MAX_QUERIES, plan_queries, queries_needed
from evalkit.compare.significance import compare_metrics, fisher_randomization_test
from evalkit.compare.status import Status
from evalkit.compare.verdict import compare_versions
from evalkit.results import VersionResult

METRICS = ["ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100"]


def _differences(seed: int, n: int, shift: float, sd: float = 0.15) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(shift, sd, n), -1, 1)


def _excludes_zero(low: float, high: float) -> bool:
    return low > 0 or high < 0


@pytest.mark.parametrize("seed", range(40))
def test_student_p_and_interval_are_scipys_and_agree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 80))
    b = rng.random(n)
    c = np.clip(b + rng.normal(rng.uniform(-0.05, 0.05), 0.1, n), 0, 1)
    t = student(c - b)
    want = stats.ttest_rel(c, b)
    assert t.p_value == pytest.approx(want.pvalue, rel=1e-12)
    for confidence in (0.95, 0.99, 0.9, 0.983):
        low, high = t.interval(confidence)
        ci = want.confidence_interval(confidence_level=confidence)
        assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-12)
        assert _excludes_zero(low, high) == (t.p_value < 1 - confidence)


def test_student_zero_variance() -> None:
    assert student(np.zeros(10)).p_value == 1.0
    assert student(np.zeros(10)).interval(0.95) == (0.0, 0.0)
    t = student(np.full(10, 0.1))
    assert t.p_value == 0.0 and t.interval(0.95) == (pytest.approx(0.1), pytest.approx(0.1))
    assert math.isnan(student(np.array([0.3])).p_value)


def _p_shifted(d: np.ndarray, s: float, signs: np.ndarray) -> float:
    """The randomization test of ``d - s`` computed the plain way (one row at a time)."""
    x = d - s
    observed = abs(x.sum())
    tolerance = 1e-9 * np.abs(x).sum()
    hits = sum(abs(float(row @ x)) >= observed - tolerance for row in signs)
    return hits / len(signs)


@pytest.mark.parametrize("seed", range(12))
def test_randomization_interval_inverts_the_test(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(6, 60))
    d = _differences(seed, n, rng.uniform(-0.08, 0.08))
    r = randomization(d, permutations=500, seed=seed)
    signs = sign_matrix(n, 500, seed)
    assert r.p_value == pytest.approx(
        float(fisher_randomization_test(np.zeros(n), d, permutations=500, seed=seed)[0])
    )
    for confidence in (0.95, 0.9):
        level = round(1 - confidence, 12)
        low, high = r.interval(confidence)
        assert _excludes_zero(low, high) == (r.p_value < level)
        # Just inside each finite bound the shift is accepted, just outside it is rejected.
        step = 1e-7
        for inside, outside in ((low + step, low - step), (high - step, high + step)):
            if math.isfinite(inside):
                assert _p_shifted(d, inside, signs) >= level
                assert _p_shifted(d, outside, signs) < level


def test_randomization_cannot_reject_with_three_queries() -> None:
    r = randomization(np.array([0.1, 0.2, 0.3]))
    assert r.p_value == 0.25 and r.interval(0.95) == (-math.inf, math.inf)


@pytest.mark.parametrize("seed", range(20))
def test_bootstrap_interval_agrees_with_its_p(seed: int) -> None:
    rng = np.random.default_rng(seed)
    b = int(rng.integers(50, 2000))
    reps = rng.normal(rng.uniform(-0.05, 0.05), 0.03, b)
    reps[rng.random(b) < 0.05] = 0.0  # ties at 0
    t = bootstrap(float(reps.mean()), reps)
    want = min(1.0, 2 * min((reps <= 0).mean(), (reps >= 0).mean()))
    assert t.p_value == pytest.approx(want)
    for confidence in np.linspace(0.5, 0.999, 30):
        low, high = t.interval(float(confidence))
        assert _excludes_zero(low, high) == (t.p_value < 1 - confidence)


def _per_query(values: np.ndarray) -> dict[str, dict[str, float]]:
    return {
        m: {f"q{i}": float(v) for i, v in enumerate(values[:, j])} for j, m in enumerate(METRICS)
    }


def _versions(seed: int, n: int, shifts: list[float]) -> tuple[VersionResult, VersionResult]:
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.1, 0.9, (n, len(METRICS)))
    c = np.clip(b + rng.normal(shifts, 0.15, (n, len(METRICS))), 0, 1)
    return (
        VersionResult("a", {}, {}, _per_query(b), None),
        VersionResult("b", {}, {}, _per_query(c), None),
    )


@pytest.mark.parametrize("test", ["student", "fisher"])
def test_primary_at_full_alpha_secondaries_holm_among_themselves(test: str) -> None:
    a, b = _versions(3, 52, [0.05, 0.02, 0.03, 0.0, 0.01])
    cand = compare_versions(a, [b], checks=[], settings={"test": test}).candidates[0]
    base = np.array([[a.per_query[m][q] for m in METRICS] for q in a.per_query[METRICS[0]]])
    new = np.array([[b.per_query[m][q] for m in METRICS] for q in a.per_query[METRICS[0]]])
    if test == "student":
        raw = stats.ttest_rel(new, base, axis=0).pvalue
    else:
        raw = fisher_randomization_test(base, new, permutations=1000, seed=42)
    primary, *secondary = cand.metrics
    assert primary.family == "primary" and primary.p_corrected == primary.p_value
    assert primary.p_value == pytest.approx(raw[0], rel=1e-12)
    want = multipletests(raw[1:], method="holm")[1]
    assert [m.p_corrected for m in secondary] == pytest.approx(list(want), rel=1e-12)
    for m in cand.metrics:
        assert m.family in ("primary", "secondary")
        assert _excludes_zero(m.ci_low, m.ci_high) == (m.p_corrected < 0.05), m


def test_secondary_intervals_are_the_holm_step_levels() -> None:
    d = {
        m: _differences(i, 60, s)
        for i, (m, s) in enumerate(zip(METRICS, [0.05, 0.1, 0.06, 0.04, 0.0]))
    }
    tests = {m: student(x) for m, x in d.items()}
    fam = fixed_sequence(tests, primary="ndcg@10", alpha=0.05)
    names = METRICS[1:]
    raw = np.array([tests[m].p_value for m in names])
    order = np.argsort(raw)
    running_stop = False
    for step, i in enumerate(order):
        a = fam[names[i]]
        level = 0.05 / (len(names) - step)
        rejected = raw[i] < level and not running_stop
        running_stop = running_stop or not rejected
        assert (a.p_adjusted < 0.05) == rejected
        if rejected and a.p_adjusted > a.p_value:
            # unless an earlier step stopped Holm, the interval is at the step's level
            ci = stats.ttest_1samp(d[names[i]], 0).confidence_interval(1 - level)
            if math.isclose(a.confidence, 1 - level):
                assert (a.ci_low, a.ci_high) == pytest.approx((ci.low, ci.high))


def test_a_declared_primary_is_not_corrected_with_the_others() -> None:
    """The issue's case: nDCG@10 +0.067, p = 0.026 among five metrics is "better", not Holm'd."""
    rng = np.random.default_rng(11)
    n = 35
    b = rng.uniform(0.2, 0.8, (n, len(METRICS)))
    c = b + rng.normal(0.0, 0.12, (n, len(METRICS)))
    d0 = c[:, 0] - b[:, 0]
    c[:, 0] += 0.067 - d0.mean()  # fix the primary's mean difference
    # scale the primary's spread so that its paired t p lands near 0.026
    sd_target = 0.067 / stats.t.ppf(1 - 0.026 / 2, n - 1) * math.sqrt(n)
    d0 = c[:, 0] - b[:, 0]
    c[:, 0] = b[:, 0] + 0.067 + (d0 - d0.mean()) * sd_target / d0.std(ddof=1)
    a = VersionResult("a", {}, {}, _per_query(b), None)
    v = VersionResult("b", {}, {}, _per_query(c), None)
    cand = compare_versions(a, [v], checks=[]).candidates[0]
    p = cand.metric("ndcg@10").p_value
    assert p == pytest.approx(0.026, abs=1e-6)
    assert cand.primary_call.status == Quality.BETTER
    assert cand.metric("ndcg@10").p_corrected == p  # not Holm across the five


def _one_sided(effect: float, alpha: float = 0.05) -> int:
    """statsmodels: pairs for the one-sided test that a bound of the two-sided (1 - alpha)
    interval makes (level alpha / 2), power 0.8."""
    n = TTestPower().solve_power(
        effect_size=effect, alpha=alpha / 2, power=0.8, alternative="larger"
    )
    return max(2, math.ceil(n))


def test_queries_needed_powers_the_call_that_can_be_reached() -> None:
    margin = 0.01
    # delta > -margin: "no worse" (the interval's lower bound above -margin), effect (d + m) / sd
    for delta, sd in ((0.03, 0.12), (0.064, 0.17), (-0.005, 0.2), (0.5, 0.1)):
        plan = plan_queries(delta, sd, 40, margin=margin, status="inconclusive")
        assert plan.call == "no worse" and plan.alpha == 0.025
        assert plan.n == _one_sided((delta + margin) / sd)
        assert queries_needed(delta, sd) == plan.n
    # delta <= -margin: "worse" (the upper bound below 0), effect -d / sd
    for delta, sd in ((-0.02, 0.2), (-0.05, 0.1)):
        plan = plan_queries(delta, sd, 40, margin=margin, status="inconclusive")
        assert plan.call == "worse" and plan.n == _one_sided(-delta / sd)
    # shown no worse with a gain: "better" (the lower bound above 0), effect d / sd
    plan = plan_queries(0.02, 0.1, 40, margin=margin, status="no_worse")
    assert plan.call == "better" and plan.n == _one_sided(0.02 / 0.1)
    assert plan_queries(-0.001, 0.1, 40, margin=margin, status="no_worse") is None
    assert queries_needed(0.1, 0.0) is None and queries_needed(math.nan, 0.1) is None


def test_queries_needed_on_adi_swapped_numbers_and_its_range() -> None:
    """The issue's ADI example (delta +0.0171, sd 0.206, 35 queries, margin 0.01): at the level
    evalkit's call tests (the lower bound of the two-sided 95% interval: one-sided 0.025)."""
    delta, sd, n = 0.0171, 0.206, 35
    plan = plan_queries(delta, sd, n, margin=0.01, alpha=0.05, status="inconclusive")
    assert plan.n == _one_sided((delta + 0.01) / sd) == 456
    # one-sided at 0.05 (a call made from a 90% interval) would need 359: the "about 357"
    assert (
        math.ceil(
            TTestPower().solve_power(
                effect_size=(delta + 0.01) / sd, alpha=0.05, power=0.8, alternative="larger"
            )
        )
        == 359
    )
    # the range: the ends of the delta's central 50% t-interval in place of the delta
    half = stats.t.ppf(0.75, n - 1) * sd / math.sqrt(n)
    assert plan.low == _one_sided((delta + half + 0.01) / sd)
    assert plan.high == _one_sided((delta - half + 0.01) / sd)
    assert plan.low < plan.n < plan.high
    # an end below -margin cannot show "no worse": no upper bound
    wide = plan_queries(0.0, 0.3, 10, margin=0.01, status="inconclusive")
    assert wide.high == MAX_QUERIES


def test_inconclusive_primary_is_its_own_outcome_with_the_queries_that_decide() -> None:
    a, b = _versions(5, 30, [0.03, 0.0, 0.0, 0.0, 0.0])
    for base, cand in ((a, b), (b, a)):
        verdict = compare_versions(base, [cand], checks=[])
        c = verdict.candidates[0]
        q = c.primary_call
        assert q.status == Quality.INCONCLUSIVE, q
        assert verdict.status == Status.INCONCLUSIVE and verdict.exit_code == 4
        m = c.metric("ndcg@10")
        call = "no worse" if m.delta > -0.01 else "worse"
        effect = (m.delta + 0.01) / m.sd if call == "no worse" else -m.delta / m.sd
        assert q.plan.call == call
        assert q.queries_needed == _one_sided(effect) and m.n_queries == 30
        gate = c.gate("primary_metric")
        assert f"judge about {q.queries_needed} queries in all ({q.queries_needed - 30} more)" in (
            gate.action
        )
        assert c.checklist()["undecided"][0]["name"] == "primary_metric"
    blocked = compare_versions(a, [b], checks=[], gates={"on_inconclusive": "block"})
    assert blocked.status == Status.BLOCK and blocked.exit_code == 3


def test_worse_still_blocks_and_better_passes() -> None:
    a, b = _versions(8, 200, [-0.08, 0.0, 0.0, 0.0, 0.0])
    assert compare_versions(a, [b], checks=[]).exit_code == 3
    better = compare_versions(b, [a], checks=[])
    assert better.candidates[0].primary_call.status == Quality.BETTER
    assert better.status in (Status.PASS, Status.WARN) and better.exit_code == 0


def test_compare_metrics_without_primary_is_one_holm_family() -> None:
    a, b = _versions(9, 40, [0.02, 0.03, 0.0, 0.01, 0.0])
    res = compare_metrics(a.per_query, b.per_query, METRICS)
    raw = [m.p_value for m in res]
    assert [m.p_corrected for m in res] == pytest.approx(list(multipletests(raw, method="holm")[1]))
    for m in res:
        assert _excludes_zero(m.ci_low, m.ci_high) == (m.p_corrected < 0.05)
        assert -1.0 <= m.ci_low <= m.ci_high <= 1.0


@pytest.mark.parametrize("seed", range(10))
def test_slice_calls_p_is_the_t_test_and_agrees_with_the_bonferroni_interval(seed: int) -> None:
    from evalkit.compare.calls import bonferroni_confidence
    from evalkit.compare.verdict import slice_calls

    a, b = _versions(20 + seed, 60, [0.04, 0.02, 0.0, 0.01, -0.02])
    ids = [f"q{i}" for i in range(0, 60, 2)]  # a slice of 30 queries
    comparisons = compare_metrics(a.per_query, b.per_query, METRICS, query_ids=ids)
    level = bonferroni_confidence(0.95, 4 * len(METRICS))  # 4 slices x 5 metrics
    calls, _ = slice_calls(a.per_query, b.per_query, comparisons, ids, 0.01, level, 10, alpha=0.05)
    for q in calls:
        base = np.array([a.per_query[q.metric][i] for i in ids])
        cand = np.array([b.per_query[q.metric][i] for i in ids])
        want = stats.ttest_rel(cand, base)
        assert q.p_value == pytest.approx(want.pvalue, rel=1e-12)
        assert q.p_corrected == pytest.approx(min(1.0, want.pvalue * 20), rel=1e-9)
        ci = want.confidence_interval(level)
        assert (q.ci_low, q.ci_high) == pytest.approx((max(ci.low, -1), min(ci.high, 1)))
        assert _excludes_zero(q.ci_low, q.ci_high) == (q.p_corrected < 0.05)
