"""Significance tests, Holm correction and bootstrap intervals against independent implementations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from evalkit.compare.bootstrap import bootstrap_mean_ci
from evalkit.compare.significance import (
    compare_metrics,
    fisher_randomization_test,
    holm,
    student_t_test,
)
from evalkit.errors import ConfigError, DataError


def _scores(n: int, seed: int, shift: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """Per-query scores in [0, 1] with many exact ties (like nDCG on small judged sets)."""
    rng = np.random.default_rng(seed)
    base = np.round(rng.beta(2, 3, size=n), 2)
    cand = np.clip(np.round(base + rng.normal(shift, 0.1, size=n), 2), 0, 1)
    same = rng.random(n) < 0.3
    cand[same] = base[same]
    return base, cand


def _per_query(values: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {m: {f"q{i}": float(x) for i, x in enumerate(v)} for m, v in values.items()}


def naive_fisher(base: np.ndarray, cand: np.ndarray, permutations: int, seed: int) -> float:
    """Independent, loop-by-loop Fisher randomization test (documented randomisation scheme).

    For each permutation draw one uniform per query; below 0.5 the two systems' scores on that
    query are swapped.  p = share of permutations whose |mean(cand') - mean(base')| reaches the
    observed |mean(cand) - mean(base)|.
    """
    rng = np.random.default_rng(seed)
    observed = abs(cand.mean() - base.mean())
    scale = np.abs(cand - base).sum() / len(base)
    hits = 0
    for _ in range(permutations):
        swap = rng.random(len(base)) < 0.5
        b2 = np.where(swap, cand, base)
        c2 = np.where(swap, base, cand)
        if abs(c2.mean() - b2.mean()) >= observed - 1e-9 * scale:
            hits += 1
    return hits / permutations


def exact_fisher(base: np.ndarray, cand: np.ndarray) -> float:
    """All 2**n swap patterns enumerated with itertools."""
    d = cand - base
    observed = abs(d.sum())
    tol = 1e-9 * np.abs(d).sum()
    hits = total = 0
    for signs in itertools.product((1.0, -1.0), repeat=len(d)):
        total += 1
        hits += abs(float(np.dot(signs, d))) >= observed - tol
    return hits / total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_student_p_values_equal_scipy_ttest_rel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = rng.random((60, 3))
    cand = np.clip(base + rng.normal(0.02 * seed, 0.1, size=(60, 3)), 0, 1)
    got = student_t_test(base, cand)
    for j in range(3):
        want = stats.ttest_rel(cand[:, j], base[:, j]).pvalue
        assert got[j] == pytest.approx(want, rel=1e-12, abs=0)


def test_student_identical_scores_give_p_one_and_one_query_gives_nan() -> None:
    x = np.array([0.1, 0.5, 0.9])
    assert math.isnan(stats.ttest_rel(x, x).pvalue)  # scipy's 0/0 ...
    assert student_t_test(x, x)[0] == 1.0  # ... which evalkit reports as "no difference"
    assert math.isnan(student_t_test(np.array([0.1]), np.array([0.3]))[0])


def test_fisher_monte_carlo_equals_independent_loop() -> None:
    base, cand = _scores(40, seed=3)
    for permutations, seed in ((1000, 42), (2500, 7)):
        got = fisher_randomization_test(base, cand, permutations=permutations, seed=seed)[0]
        assert got == naive_fisher(base, cand, permutations, seed)


def test_fisher_exact_equals_enumeration_and_scipy_permutation_test() -> None:
    base, cand = _scores(11, seed=4, shift=0.08)  # 2**11 = 2048 <= 4096 permutations: exact
    got = fisher_randomization_test(base, cand, permutations=4096)[0]
    assert got == exact_fisher(base, cand)
    res = stats.permutation_test(
        (cand, base),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
    )
    assert got == pytest.approx(res.pvalue, abs=1e-12)


def test_fisher_monte_carlo_agrees_with_scipy_within_sampling_error() -> None:
    base, cand = _scores(120, seed=5, shift=0.02)
    got = fisher_randomization_test(base, cand, permutations=20000, seed=42)[0]
    ref = stats.permutation_test(
        (cand, base),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=20000,
        alternative="two-sided",
        rng=np.random.default_rng(1),
    ).pvalue
    se = math.sqrt(max(got * (1 - got), 1e-4) / 20000)
    assert abs(got - ref) < 5 * se * math.sqrt(2) + 2 / 20000


def test_fisher_vectorised_over_metrics_matches_each_column() -> None:
    base, cand = _scores(30, seed=6)
    b2 = np.column_stack([base, base[::-1]])
    c2 = np.column_stack([cand, cand[::-1]])
    both = fisher_randomization_test(b2, c2, permutations=3000, seed=42)
    assert both[0] == fisher_randomization_test(base, cand, 3000, 42)[0]
    assert both[1] == fisher_randomization_test(base[::-1], cand[::-1], 3000, 42)[0]


def test_holm_equals_statsmodels() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.random(rng.integers(1, 9)) ** 3
        want = multipletests(p, method="holm")[1]
        np.testing.assert_allclose(holm(p), want, rtol=1e-12, atol=0)
    p = np.array([0.01, np.nan, 0.04])
    got = holm(p)
    assert math.isnan(got[1])
    np.testing.assert_allclose(got[[0, 2]], multipletests([0.01, 0.04], method="holm")[1])


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap() -> None:
    rng = np.random.default_rng(8)
    d = rng.normal(0.02, 0.2, size=300)
    ours = bootstrap_mean_ci(d, n_resamples=4000, seed=42)
    ref = stats.bootstrap(
        (d,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(9)
    ).confidence_interval
    assert ours.low[0] == pytest.approx(ref.low, abs=0.006)
    assert ours.high[0] == pytest.approx(ref.high, abs=0.006)
    # the same seed gives the same interval; a constant difference has a zero-width interval
    again = bootstrap_mean_ci(d, n_resamples=4000, seed=42)
    assert (again.low[0], again.high[0]) == (ours.low[0], ours.high[0])
    const = bootstrap_mean_ci(np.full(50, 0.25), n_resamples=200, seed=1)
    assert const.low[0] == pytest.approx(0.25) and const.high[0] == pytest.approx(0.25)


def test_bootstrap_resamples_queries_like_a_naive_loop() -> None:
    """Each resample's mean equals the mean of the queries drawn by integers(0, n, n)."""
    from evalkit.compare.bootstrap import bootstrap_means

    x = np.random.default_rng(2).random((25, 2))
    got = bootstrap_means(x, n_resamples=50, seed=42)
    rng = np.random.default_rng(42)
    idx = rng.integers(0, 25, size=(50, 25))
    np.testing.assert_allclose(got, x[idx].mean(axis=1), rtol=1e-12)


def test_compare_metrics_end_to_end_numbers() -> None:
    base, cand = _scores(80, seed=10)
    base2, cand2 = _scores(80, seed=11, shift=-0.05)
    b = _per_query({"ndcg@10": base, "recall@100": base2})
    c = _per_query({"ndcg@10": cand, "recall@100": cand2})
    for test in ("student", "fisher"):
        res = compare_metrics(b, c, ["ndcg@10", "recall@100"], test=test, permutations=2000)
        raw = []
        for m, (x, y) in zip(res, ((base, cand), (base2, cand2))):
            assert m.test == test and m.n_queries == 80
            assert m.delta == pytest.approx(y.mean() - x.mean(), abs=1e-12)
            assert m.baseline_mean == pytest.approx(x.mean()) and m.candidate_mean == pytest.approx(
                y.mean()
            )
            assert m.wins == int((y > x).sum()) and m.losses == int((y < x).sum())
            assert m.ties == int((y == x).sum()) and m.wins + m.ties + m.losses == 80
            assert m.ci_low <= m.delta <= m.ci_high
            if test == "student":
                assert m.p_value == pytest.approx(stats.ttest_rel(y, x).pvalue, rel=1e-12)
            else:
                assert m.p_value == naive_fisher(x, y, 2000, 42)
            raw.append(m.p_value)
        want = multipletests(raw, method="holm")[1]
        assert [m.p_corrected for m in res] == pytest.approx(list(want), rel=1e-12)


def test_compare_metrics_rejects_different_query_sets_and_bad_config() -> None:
    b = {"ndcg@10": {"q1": 0.1, "q2": 0.2}}
    with pytest.raises(DataError, match="q2"):
        compare_metrics(b, {"ndcg@10": {"q1": 0.1}}, ["ndcg@10"])
    with pytest.raises(DataError, match="more queries"):
        compare_metrics(b, {"ndcg@10": {"q1": 0.1, "q2": 0.2, "q3": 0.3}}, ["ndcg@10"])
    with pytest.raises(DataError, match="recall@100"):
        compare_metrics(b, b, ["recall@100"])
    with pytest.raises(ConfigError, match="wilcoxon"):
        compare_metrics(b, b, ["ndcg@10"], test="wilcoxon")
    with pytest.raises(ConfigError, match="bonferroni"):
        compare_metrics(b, b, ["ndcg@10"], correction="bonferroni")
