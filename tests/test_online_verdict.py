"""The canary's verdict from the reduced log: gates, SRM block, calls, latency, metric names (issue 25)."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.compare.latency_stats import p95_ratio_ci
from evalkit.compare.status import Status
from evalkit.errors import ConfigError
from evalkit.online.analysis import analyse
from evalkit.online.canary_gates import OnlineGates, gate_latency
from evalkit.online.gateway_log import (
    ArmAggregate,
    DailySums,
    OnlineAggregate,
    PositionCounts,
    ScoreBins,
    UnitSums,
)
from evalkit.online.online_settings import OnlineSettings
from evalkit.online.served_latency import latency_summary

#: The metric names issue 25 spells out (scripts read them).
CONTRACT = {
    "srm_p", "units_control", "units_treatment", "ctr_control", "ctr_treatment", "ctr_delta",
    "ci_low_ctr_delta", "ci_high_ctr_delta", "impression_ctr_control", "impression_ctr_treatment",
    "latency_p95_ms_control", "latency_p95_ms_treatment", "latency_p95_ratio",
    "latency_p95_ratio_ci_low", "latency_p95_ratio_ci_high", "score_click_auc_control",
    "score_click_auc_treatment", "verdict_code",
}  # fmt: skip


def _arm(rng, n: int, p: float, name: str, version: str, latency_scale: float = 10.0):
    req = rng.integers(1, 5, n).astype(float)
    clicked = rng.binomial(req.astype(int), p).astype(float)
    sums = UnitSums(req, clicked, req * 10, clicked * 1.3, clicked * 0.6, clicked * 6, clicked * 9)
    return ArmAggregate(
        name,
        {version: int(req.sum() * 10)},
        sums,
        latency_ms=rng.gamma(4.0, latency_scale, int(req.sum())),
        daily=DailySums(rng.integers(20_400, 20_414, n), sums),
        positions=PositionCounts(np.arange(1, 11), np.full(10, 1e3), np.linspace(300, 30, 10)),
        score_bins=ScoreBins(
            np.linspace(0, 1, 21), np.full(20, 100.0), np.linspace(1, 40, 20), np.linspace(0, 1, 20)
        ),
    )


def _aggregate(control, treatment, in_both: int = 0) -> OnlineAggregate:
    return OnlineAggregate(control, treatment, "user_id", 1, ["log.parquet"], {}, {}, in_both)


def test_better_ctr_passes_and_every_contract_metric_is_there():
    rng = np.random.default_rng(1)
    agg = _aggregate(
        _arm(rng, 20_000, 0.30, "control", "A"), _arm(rng, 20_000, 0.36, "treatment", "B")
    )
    r = analyse(agg, OnlineSettings(path="x"), OnlineGates())
    assert r.calls["request_ctr"].status.value == "better"
    assert r.status in (Status.PASS, Status.WARN) and r.exit_code == 0
    assert set(r.metrics) >= CONTRACT
    assert r.versions == ("A", "B") and r.metrics["verdict_code"] == r.status.code
    # the always-valid interval is wider than the fixed-horizon one, and both hold the delta
    m = r.metrics
    assert m["ci_low_ctr_delta"] < m["fixed_ci_low_ctr_delta"] < m["ctr_delta"]
    assert m["ctr_delta"] < m["fixed_ci_high_ctr_delta"] < m["ci_high_ctr_delta"]


def test_worse_ctr_blocks_and_inconclusive_says_how_many_units():
    rng = np.random.default_rng(2)
    worse = analyse(
        _aggregate(
            _arm(rng, 20_000, 0.36, "control", "A"), _arm(rng, 20_000, 0.30, "treatment", "B")
        ),
        OnlineSettings(path="x"),
        OnlineGates(),
    )
    assert worse.status == Status.BLOCK and worse.exit_code == 3
    assert next(g for g in worse.gates if g.name == "request_ctr").status == Status.BLOCK
    small = analyse(
        _aggregate(_arm(rng, 300, 0.30, "control", "A"), _arm(rng, 300, 0.30, "treatment", "B")),
        OnlineSettings(path="x"),
        OnlineGates(),
    )
    assert small.status == Status.INCONCLUSIVE and small.exit_code == 4
    gate = next(g for g in small.gates if g.name == "request_ctr")
    assert "units in all" in gate.action and "more" in gate.action
    assert small.metrics["units_needed_control"] > 300


def test_a_broken_split_or_a_unit_in_both_arms_blocks_whatever_else_says():
    rng = np.random.default_rng(3)
    c, t = _arm(rng, 51_000, 0.30, "control", "A"), _arm(rng, 49_000, 0.40, "treatment", "B")
    r = analyse(_aggregate(c, t), OnlineSettings(path="x"), OnlineGates())
    srm = r.gates[0]
    assert srm.name == "sample_ratio" and srm.status == Status.BLOCK and r.status == Status.BLOCK
    assert "traffic split broken, no other figure can be trusted" in srm.reason
    assert r.metrics["srm_p"] < 0.001
    c, t = _arm(rng, 5_000, 0.30, "control", "A"), _arm(rng, 5_000, 0.40, "treatment", "B")
    both = analyse(_aggregate(c, t, in_both=7), OnlineSettings(path="x"), OnlineGates())
    assert (
        both.status == Status.BLOCK and "7 units were served by both arms" in both.gates[0].reason
    )


def test_latency_summary_matches_the_offline_bootstrap_and_scales():
    rng = np.random.default_rng(4)
    a, b = rng.lognormal(3.0, 0.4, 3_000), rng.lognormal(3.1, 0.4, 2_500)
    s = latency_summary(a, b, seed=9, n_resamples=2000)
    assert s.control["p95"] == pytest.approx(np.percentile(a, 95))
    assert s.treatment["p99"] == pytest.approx(np.percentile(b, 99))
    assert s.ratio == pytest.approx(np.percentile(b, 95) / np.percentile(a, 95))
    low, high = p95_ratio_ci(a, b, 2000, 9, 0.95)  # the offline procedure, index resampling
    assert s.ci_low == pytest.approx(low, rel=0.02) and s.ci_high == pytest.approx(high, rel=0.02)
    big_a, big_b = rng.gamma(4, 10, 2_000_000), rng.gamma(4, 13, 2_000_000)
    big = latency_summary(big_a, big_b, seed=1)
    assert big.ci_low < big.ratio < big.ci_high and big.ci_high - big.ci_low < 0.02


def test_latency_gate_rules():
    g = OnlineGates()
    assert gate_latency(g, 1.5, 1.3, 1.7).status == Status.BLOCK
    assert gate_latency(g, 1.25, 1.1, 1.4).status == Status.WARN
    assert gate_latency(g, 1.05, 1.0, 1.1).status == Status.PASS
    sim = gate_latency(g, 1.5, 1.3, 1.7, simulated=True)  # in-process probes never block
    assert sim.status == Status.WARN and "SIMULATED" in sim.reason
    missing = gate_latency(g, None, None, None)
    assert missing.status == Status.WARN and not missing.measured


def test_settings_and_gates_refuse_bad_values_in_one_line():
    with pytest.raises(ConfigError, match="online has unknown keys pth"):
        OnlineSettings.from_mapping({"pth": "x"})
    with pytest.raises(
        ConfigError,
        match=r"online.split=1.5 is out of range \(expected a number > 0 and < 1: the treatment share",
    ):
        OnlineSettings.from_mapping({"path": "x", "split": 1.5})
    with pytest.raises(ConfigError, match="online.path is not set"):
        OnlineSettings.from_mapping({})
    with pytest.raises(ConfigError, match="online.columns has unknown keys arms"):
        OnlineSettings.from_mapping({"path": "x", "columns": {"arms": "bucket"}})
    with pytest.raises(ConfigError, match="gates.online has unknown keys ctr_margin"):
        OnlineGates.from_mapping({"ctr_margin": 0.1})
    with pytest.raises(ConfigError, match=r"gates.online.ctr.margin=-1"):
        OnlineGates.from_mapping({"ctr": {"margin": -1}})


def test_versions_come_from_models_when_the_log_has_no_version_column():
    from dataclasses import replace

    rng = np.random.default_rng(5)
    c = replace(_arm(rng, 2_000, 0.3, "control", "A"), versions={})
    t = replace(_arm(rng, 2_000, 0.3, "treatment", "B"), versions={})
    r = analyse(_aggregate(c, t), OnlineSettings(path="x"), OnlineGates(), models=("m1", "m2"))
    assert r.versions == ("m1", "m2") and r.label("treatment") == "treatment (m2)"
    with_column = analyse(_aggregate(_arm(rng, 2_000, 0.3, "control", "A"),
                                     _arm(rng, 2_000, 0.3, "treatment", "B")),
                          OnlineSettings(path="x"), OnlineGates(), models=("m1", "m2"))  # fmt: skip
    assert with_column.versions == ("A", "B")
