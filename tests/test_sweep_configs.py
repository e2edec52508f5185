"""A sweep's configurations compared with each other (issue 27): paired deltas against the
reference checked against scipy, Holm across the configurations against statsmodels, the
reference's choice, the pick and the frontier."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from evalkit.sweep.configs import auto_reference, compare_configs, frontier, pick_cheapest
from evalkit.sweep.jobs import JobOutcome
from evalkit.sweep.sweep_run import compare_sweep


def _values(rng, n, shift, noise=0.02, base=None):
    base = rng.uniform(0.2, 0.9, n) if base is None else base
    return base, {f"q{i}": float(x) for i, x in enumerate(base + shift + rng.normal(0, noise, n))}


def test_holm_intervals_against_statsmodels_and_scipy() -> None:
    rng = np.random.default_rng(3)
    base, _ = _values(rng, 60, 0.0)
    ref = {f"q{i}": float(x) for i, x in enumerate(base)}
    configs = [(f"c{k}", _values(rng, 60, shift, base=base)[1])
               for k, shift in enumerate((-0.001, -0.03, 0.004, -0.008))]  # fmt: skip
    calls = compare_configs(ref, configs, margin=0.01, alpha=0.05)
    diffs = [np.array([v[q] - ref[q] for q in sorted(ref)]) for _, v in configs]
    raw = [stats.ttest_1samp(d, 0.0) for d in diffs]
    reject, p_holm, _, _ = multipletests([r.pvalue for r in raw], alpha=0.05, method="holm")
    order = np.argsort([r.pvalue for r in raw])
    m = len(raw)
    for c, d, r, ph in zip(calls, diffs, raw, p_holm, strict=True):
        assert c.delta == pytest.approx(d.mean(), abs=1e-15)
        assert c.p_value == pytest.approx(r.pvalue, rel=1e-12)
        assert c.p_holm == pytest.approx(ph, rel=1e-12)
        assert c.n == 60
        ci = r.confidence_interval(confidence_level=c.confidence)
        assert (c.ci_low, c.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    # the interval's level is the one Holm tested it at (step i: alpha / (m - i + 1)), unless an
    # earlier step already stopped; it excludes 0 exactly when Holm rejects
    first = order[0]
    assert calls[first].confidence == pytest.approx(1 - 0.05 / m)
    for c, rej in zip(calls, reject, strict=True):
        assert (c.ci_low > 0 or c.ci_high < 0) == bool(rej)
    assert calls[1].call == "worse"


def test_calls_follow_the_offline_rule() -> None:
    rng = np.random.default_rng(0)
    base, _ = _values(rng, 200, 0.0)
    ref = {f"q{i}": float(x) for i, x in enumerate(base)}
    same = {q: v + 0.0005 * (i % 3 - 1) for i, (q, v) in enumerate(ref.items())}
    (c,) = compare_configs(ref, [("same", same)], margin=0.01)
    assert c.call == "no_worse" and c.ci_low > -0.01
    (c,) = compare_configs(ref, [("few", {"q0": ref["q0"]})], margin=0.01)
    assert c.call == "inconclusive" and c.n == 1 and math.isnan(c.ci_low)


def test_auto_reference_takes_the_most_exact_values() -> None:
    swept = [
        {"models.e5.dimensions": "128", "index.precision": "fp32"},
        {"models.e5.dimensions": "384", "index.precision": "binary"},
        {"models.e5.dimensions": "384", "index.precision": "fp32"},
        {"models.e5.dimensions": "256", "index.precision": "sq8"},
    ]
    assert auto_reference(swept) == 2
    assert auto_reference(swept[:2]) is None  # no job holds both most exact values
    assert auto_reference([{"index": "ivf"}, {"index": "flat"}]) == 1
    assert auto_reference([{"chunking.size": "256"}, {"chunking.size": "null"}]) == 1
    assert auto_reference([{"x": "b"}, {"x": "a"}]) == 0  # unordered: the sweep's first


def _call(label, call, ci_low, cost):
    from evalkit.sweep.configs import ConfigCall

    return ConfigCall(label, ci_low + 0.005, ci_low, ci_low + 0.01, 0.95, 0.5, 0.5, call, 50,
                      costs={"index_bytes": cost})  # fmt: skip


def test_pick_is_the_cheapest_no_worse_else_the_closest() -> None:
    calls = [
        _call("a", "no_worse", -0.008, 40.0),
        _call("b", "worse", -0.05, 10.0),
        _call("c", "better", 0.001, 80.0),
    ]
    p = pick_cheapest(calls, "ref", {"index_bytes": 100.0}, metric="ndcg@10")
    assert p.found and p.call.label == "a" and p.share == pytest.approx(0.4)
    assert p.text.startswith("a: -0.003 [-0.008, +0.002] ndcg@10, 40% of the reference (ref)")
    p = pick_cheapest(calls[1:2] + [_call("d", "inconclusive", -0.02, 5.0)], "ref", {})
    assert not p.found and p.call.label == "d"
    assert p.text.startswith("no configuration is no worse than the reference (ref)")
    assert "index_bytes not measured" in p.text


def test_frontier_marks_the_non_dominated() -> None:
    pts = [(100.0, 0.0), (25.0, -0.003), (50.0, -0.001), (30.0, -0.02), (float("nan"), 0.1)]
    assert frontier(pts) == [0, 1, 2]


def _job(tmp: Path, num: int, override: str, a: dict, b: dict, cost: float) -> JobOutcome:
    out = tmp / str(num)
    for name, vals in (("A", a), ("B", b)):
        (out / name).mkdir(parents=True)
        rows = "".join(f"{q},{v!r}\n" for q, v in vals.items())
        (out / name / "per_query.csv").write_text("query_id,ndcg@10\n" + rows)
    return JobOutcome(num, [override], 0, "PASS", "ndcg@10", versions=["A", "B"],
                      output_dir=str(out), costs={"B": {"index_bytes": cost}})  # fmt: skip


def test_compare_sweep_against_the_reference_job_and_against_baseline(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    base, a = _values(rng, 80, 0.0)
    b = {d: _values(rng, 80, shift, base=base)[1] for d, shift in ((128, -0.02), (256, -0.002),
                                                                   (384, 0.0))}  # fmt: skip
    jobs = [_job(tmp_path, i, f"models.B.dimensions={d}", a, b[d], d * 4.0)
            for i, d in enumerate((128, 256, 384))]  # fmt: skip
    jobs.append(JobOutcome(3, ["models.B.dimensions=64"], 1, "ERROR", error="boom"))
    c = compare_sweep(jobs, "auto", "index_bytes", margin=0.01, alpha=0.05)
    assert c.reference == "models.B.dimensions=384" and c.nums == [0, 1]
    assert c.skipped == {3: "boom"}
    want = np.mean([b[128][q] - b[384][q] for q in sorted(a)])
    assert c.calls[0].delta == pytest.approx(want, abs=1e-12)
    assert c.calls[0].costs == {"index_bytes": 512.0}
    named = compare_sweep(jobs, "models.B.dimensions=256", "index_bytes", 0.01, 0.05)
    assert named.reference_num == 1 and named.nums == [0, 2]
    base_c = compare_sweep(jobs, "baseline", "index_bytes", 0.01, 0.05)
    assert base_c.nums == [0, 1, 2] and base_c.reference.startswith("baseline")
    want = np.mean([b[256][q] - a[q] for q in sorted(a)])
    assert base_c.calls[1].delta == pytest.approx(want, abs=1e-12)
