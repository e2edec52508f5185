"""Quality calls, non-inferiority and slice intervals against independent computations (scipy,
numpy), and a noisy copy of the baseline that must block (threshold mapping:
tests/test_compare_thresholds.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evalkit.compare.actions import pin_actions, reindex_action
from evalkit.compare.calls import Quality, bonferroni_confidence, call, t_interval
from evalkit.compare.significance import compare_metrics
from evalkit.compare.status import Status
from evalkit.compare.verdict import compare_versions
from tests.test_compare_verdict import CHECKS_OK, embed, load_collection, version


@pytest.mark.parametrize(
    ("low", "high", "want"),
    [
        (0.01, 0.2, Quality.BETTER),
        (-0.0099, 0.2, Quality.NO_WORSE),
        (-0.01, -0.001, Quality.WORSE),  # low == -margin is not inside the margin
        (-0.2, 0.05, Quality.INCONCLUSIVE),
        (-0.2, -0.05, Quality.WORSE),
    ],
)
def test_call_truth_table(low, high, want) -> None:
    assert call((low + high) / 2, low, high, margin=0.01) == want


def test_better_needs_the_test_to_agree() -> None:
    assert call(0.05, 0.01, 0.09, margin=0.01, p_value=0.01) == Quality.BETTER
    assert call(0.05, 0.01, 0.09, margin=0.01, p_value=0.2) == Quality.NO_WORSE


def test_t_interval_equals_scipy() -> None:
    d = np.random.default_rng(3).normal(0.02, 0.1, 37)
    for conf in (0.95, bonferroni_confidence(0.95, 40)):
        want = stats.t.interval(conf, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
        assert t_interval(d, conf) == pytest.approx(want, rel=1e-12)
    assert t_interval(np.array([0.1, 0.1, 0.1])) == (pytest.approx(0.1), pytest.approx(0.1))


def test_overall_interval_agrees_with_scipy_bootstrap() -> None:
    rng = np.random.default_rng(7)
    b = rng.uniform(0, 1, 200)
    c = np.clip(b + rng.normal(0.03, 0.1, 200), 0, 1)
    ids = [f"q{i}" for i in range(200)]
    [m] = compare_metrics(
        {"m": dict(zip(ids, b))}, {"m": dict(zip(ids, c))}, ["m"], n_bootstrap=4000, seed=1
    )
    ref = stats.bootstrap(
        (c - b,), np.mean, n_resamples=4000, method="percentile", random_state=2
    ).confidence_interval
    assert m.ci_low == pytest.approx(ref.low, abs=0.004)
    assert m.ci_high == pytest.approx(ref.high, abs=0.004)
    assert m.p_value == pytest.approx(stats.ttest_rel(c, b).pvalue, rel=1e-9)
    assert call(m.delta, m.ci_low, m.ci_high, margin=0.01, p_value=m.p_corrected) == (
        Quality.BETTER
    )


def test_reindex_and_pin_actions() -> None:
    [r] = reindex_action(None, 512, 384)
    assert "re-index the whole catalog" in r["what_to_do"] and "512 -> 384" in r["what_to_do"]
    assert reindex_action(None, 384, 384) == []
    pins = {
        a["name"]: a["what_to_do"]
        for a in pin_actions(
            {"dimensions": None, "normalize": True, "query_prefix": ""},
            {"dimensions": 256, "normalize": True, "query_prefix": "query: "},
            512,
            256,
        )
    }
    assert pins["pin_dimensions"] == "pin dimensions=256 in every client and in the index schema"
    assert pins["pin_query_prefix"] == "prefix queries with 'query: ' in every client"
    assert "pin_normalisation" not in pins


@pytest.fixture(scope="module")
def cranfield():
    data = load_collection("cranfield")
    q, d = embed(data)
    return data, q, d


def test_noisy_copy_of_the_baseline_blocks_on_quality(cranfield) -> None:
    data, q, d = cranfield
    rng = np.random.default_rng(5)
    qn = q + rng.normal(0, 0.12, q.shape).astype(np.float32)
    dn = d + rng.normal(0, 0.12, d.shape).astype(np.float32)
    qn /= np.linalg.norm(qn, axis=1, keepdims=True)
    dn /= np.linalg.norm(dn, axis=1, keepdims=True)
    base = version("v1", data, q, d)
    noisy = version("v1_noisy", data, qn, dn, latencies=base.latencies_s)
    v = compare_versions(base, [noisy], data=data, checks=CHECKS_OK)
    c = v.candidates[0]
    assert c.metric("ndcg@10").delta < -0.01
    assert c.quality_status == Quality.WORSE
    assert c.gate("primary_metric").status == Status.BLOCK and v.exit_code == 3
    assert c.gate("vector_contract").status == Status.PASS  # still unit-length: quality blocks


def test_slices_never_block_on_behaviour(cranfield) -> None:
    data, q, d = cranfield
    base = version("v1", data, q, d)
    rotated = version("v1_rot", data, q[:, ::-1].copy(), d[:, ::-1].copy())  # same geometry
    v = compare_versions(base, [rotated], data=data, checks=CHECKS_OK)
    c = v.candidates[0]
    assert all(s.status == Quality.NO_WORSE for s in c.slices if s.evaluated)
    # only the coverage line (Cranfield's sparse judgments) is a follow-up; no slice blocks
    assert {g.name for g in c.gates if g.status != Status.PASS} == {"judgment_coverage"}
    assert v.status == Status.WARN
