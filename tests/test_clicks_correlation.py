"""Similarity-vs-click correlations: equal to scipy, exact bootstrap replicates, CI coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evalkit.clicks.correlation import (
    STATISTICS,
    click_correlation,
    difference,
    per_query_spearman,
    resample_counts,
)
from evalkit.errors import EndpointError
from evalkit.pairs import pair_similarity


def tied_data(seed=1, n=300, n_q=40):
    """Pairs with many ties in both arrays (rates of 0 and coarse similarities)."""
    rng = np.random.default_rng(seed)
    q = rng.integers(0, n_q, n) * 7 + 3  # arbitrary, non-contiguous query labels
    x = np.round(rng.normal(size=n), 1)
    y = np.round(np.clip(0.3 * x + rng.normal(size=n), 0, None), 1)
    return x, y, q


def test_pooled_statistics_equal_scipy_on_the_same_pairs():
    x, y, q = tied_data()
    c = click_correlation(x, y, q, n_boot=20)
    assert c.spearman.value == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert c.kendall.value == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert c.pearson.value == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert c.n_pairs == len(x) and c.n_dropped == 0


def test_within_query_spearman_is_the_mean_of_scipy_per_query():
    x, y, q = tied_data(seed=2, n=200, n_q=30)
    c = click_correlation(x, y, q, min_pairs=6, n_boot=20)
    per_query = []
    for label in np.unique(q):
        sel = q == label
        if sel.sum() >= 6 and np.ptp(x[sel]) > 0 and np.ptp(y[sel]) > 0:
            per_query.append(stats.spearmanr(x[sel], y[sel]).statistic)
    assert c.n_queries_within == len(per_query) > 10
    assert c.spearman_within.value == pytest.approx(np.mean(per_query), abs=1e-12)
    _, qi = np.unique(q, return_inverse=True)
    rho = per_query_spearman(x, y, qi, int(qi.max()) + 1)
    for j in range(int(qi.max()) + 1):
        sel = qi == j
        if sel.sum() >= 2 and np.ptp(x[sel]) > 0 and np.ptp(y[sel]) > 0:
            assert rho[j] == pytest.approx(stats.spearmanr(x[sel], y[sel]).statistic, abs=1e-12)
        else:
            assert np.isnan(rho[j])


def test_each_bootstrap_replicate_is_the_statistic_of_the_resampled_queries():
    x, y, q = tied_data(seed=3, n=150, n_q=25)
    c = click_correlation(x, y, q, n_boot=24, seed=7, min_pairs=2)
    _, qi = np.unique(q, return_inverse=True)
    n_q = int(qi.max()) + 1
    counts = resample_counts(n_q, 24, 7)
    members = [np.flatnonzero(qi == j) for j in range(n_q)]
    sizes = np.bincount(qi)
    for r in range(24):
        idx = np.concatenate([np.tile(members[j], counts[r, j]) for j in range(n_q)])
        xs, ys = x[idx], y[idx]
        assert c.replicates["spearman"][r] == pytest.approx(
            stats.spearmanr(xs, ys).statistic, abs=1e-10
        )
        assert c.replicates["kendall"][r] == pytest.approx(
            stats.kendalltau(xs, ys).statistic, abs=1e-10
        )
        assert c.replicates["pearson"][r] == pytest.approx(
            stats.pearsonr(xs, ys).statistic, abs=1e-10
        )
        within = []
        for j in range(n_q):
            sel = members[j]
            if counts[r, j] and sizes[j] >= 2 and np.ptp(x[sel]) > 0 and np.ptp(y[sel]) > 0:
                within += [stats.spearmanr(x[sel], y[sel]).statistic] * int(counts[r, j])
        assert c.replicates["spearman_within"][r] == pytest.approx(np.mean(within), abs=1e-10)


def test_resampling_plan_depends_only_on_seed_and_query_count():
    a = resample_counts(50, 40, 3)
    assert a.shape == (40, 50) and (a.sum(axis=1) == 50).all()
    np.testing.assert_array_equal(resample_counts(50, 40, 3, start=17, stop=33), a[17:33])
    assert not np.array_equal(resample_counts(50, 40, 4), a)


def spearman_expectation(rho: float, n: int) -> float:
    """E[sample Spearman] for n bivariate-normal pairs (Moran 1948)."""
    return 6 / (np.pi * (n + 1)) * (np.arcsin(rho) + (n - 2) * np.arcsin(rho / 2))


def test_bootstrap_interval_covers_the_true_value_at_about_the_nominal_rate():
    rho, n_q, per_q, reps = 0.5, 40, 5, 300
    truth = {
        "pearson": rho,
        "kendall": 2 / np.pi * np.arcsin(rho),
        "spearman": spearman_expectation(rho, n_q * per_q),
        "spearman_within": spearman_expectation(rho, per_q),
    }
    rng = np.random.default_rng(12345)
    q = np.repeat(np.arange(n_q), per_q)
    cov = [[1, rho], [rho, 1]]
    hits = dict.fromkeys(STATISTICS, 0)
    for i in range(reps):
        xy = rng.multivariate_normal([0, 0], cov, size=n_q * per_q)
        c = click_correlation(xy[:, 0], xy[:, 1], q, n_boot=400, seed=i, min_pairs=per_q)
        for s in STATISTICS:
            e = getattr(c, s)
            hits[s] += e.low <= truth[s] <= e.high
    coverage = {s: h / reps for s, h in hits.items()}
    for s, cvg in coverage.items():
        assert 0.89 <= cvg <= 0.99, (s, coverage)


def test_difference_is_paired_and_refuses_unpaired_inputs():
    rng = np.random.default_rng(5)
    q = np.repeat(np.arange(60), 4)
    rate = rng.random(240)
    base = click_correlation(rate + rng.normal(0, 0.6, 240), rate, q, n_boot=300)
    cand = click_correlation(rate + rng.normal(0, 0.2, 240), rate, q, n_boot=300)
    d = difference(cand, base)
    for s in STATISTICS:
        e = getattr(d, s)
        assert e.value == pytest.approx(getattr(cand, s).value - getattr(base, s).value)
        diffs = cand.replicates[s] - base.replicates[s]
        assert (e.low, e.high) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])))
    assert d.spearman.low > 0
    same = difference(base, base)
    assert (same.spearman.low, same.spearman.high) == (0.0, 0.0)
    other_seed = click_correlation(rate, rate, q, n_boot=300, seed=1)
    with pytest.raises(ValueError, match="not paired"):
        difference(other_seed, base)
    names = set(d.metrics())
    assert {
        "delta_click_spearman",
        "delta_click_spearman_ci_low",
        "delta_click_spearman_ci_high",
        "delta_click_spearman_within",
        "delta_click_kendall",
        "delta_click_pearson",
    } <= names


def test_metric_names_params_and_dropped_pairs():
    rng = np.random.default_rng(6)
    rate = rng.random(100)
    rate[:5] = np.nan  # e.g. click share of a query without clicks
    c = click_correlation(
        rng.random(100), rate, np.arange(100) // 4, n_boot=50, measure="click_share"
    )
    assert c.n_dropped == 5 and c.n_pairs == 95
    m = c.metrics()
    assert sorted(m) == sorted(
        f"click_{s}{suffix}" for s in STATISTICS for suffix in ("", "_ci_low", "_ci_high")
    )
    assert c.params()["click_measure"] == "click_share"
    assert "similarity vs click share: spearman = " in c.summary()


def test_pair_similarity_is_the_cosine_of_the_rows():
    rng = np.random.default_rng(8)
    qv = rng.normal(size=(7, 16)).astype(np.float32)
    iv = rng.normal(size=(11, 16)).astype(np.float32)
    iv[3] = 0  # a zero vector has similarity 0, not NaN
    qr = rng.integers(0, 7, 500)
    ir = rng.integers(0, 11, 500)
    got = pair_similarity(qv, iv, qr, ir, chunk_size=64)
    qn = qv / np.linalg.norm(qv, axis=1, keepdims=True)
    inorm = np.linalg.norm(iv, axis=1, keepdims=True)
    inn = np.divide(iv, inorm, out=np.zeros_like(iv), where=inorm > 0)
    np.testing.assert_allclose(got, (qn[qr] * inn[ir]).sum(axis=1), atol=1e-6)
    # the chunking never changes a value: default chunks (1,024 pairs), one chunk, 64-pair chunks
    many_q, many_i = rng.integers(0, 7, 5000), rng.integers(0, 11, 5000)
    for normalize in (True, False):
        whole = pair_similarity(qv, iv, many_q, many_i, chunk_size=5000, normalize=normalize)
        assert np.array_equal(pair_similarity(qv, iv, many_q, many_i, normalize=normalize), whole)
        assert np.array_equal(
            pair_similarity(qv, iv, many_q, many_i, chunk_size=64, normalize=normalize), whole
        )
    qv[2, 0] = np.nan
    with pytest.raises(EndpointError, match="not finite"):
        pair_similarity(qv, iv, np.array([2]), np.array([0]))


def test_parallel_kernels_give_the_same_replicates(monkeypatch):
    import evalkit.clicks.correlation as corr

    x, y, q = tied_data(seed=9, n=400, n_q=50)
    serial = click_correlation(x, y, q, n_boot=40, seed=2)
    monkeypatch.setattr(corr, "PARALLEL_WORK", 0)  # large inputs run replicates on all cores
    parallel = click_correlation(x, y, q, n_boot=40, seed=2)
    for s in ("spearman", "kendall"):
        np.testing.assert_allclose(parallel.replicates[s], serial.replicates[s], rtol=0, atol=1e-12)
