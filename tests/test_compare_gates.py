"""Gates (thresholds, statuses, exit codes, config files), drift, latency and fingerprints."""

from __future__ import annotations

import math
import shutil
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evalkit.compare.calls import QualityCall
from evalkit.compare.calls import call as quality_call
from evalkit.compare.drift import align_pairs, similarity_drift
from evalkit.compare.gate_config import GateConfig
from evalkit.compare.gate_rules import (
    annotate,
    gate_click_correlation,
    gate_endpoint_checks,
    gate_latency_p95,
    gate_low_score_share,
    gate_mean_cosine_shift,
    gate_primary_metric,
    gate_secondary_metrics,
    gate_top_k_agreement,
    gate_unjudged_increase,
    gate_vector_contract,
)
from evalkit.compare.latency_stats import compare_latency, latency_summary
from evalkit.compare.same_data import check_fingerprints
from evalkit.compare.status import EXIT_CODES, EXIT_ERROR, Status, exit_code, worst
from evalkit.errors import ConfigError, DataError, FingerprintMismatch

REPO = Path(__file__).resolve().parents[1]
CFG = GateConfig()


def test_exit_codes_and_worst() -> None:
    assert (
        EXIT_CODES
        == {
            Status.PASS: 0,
            Status.WARN: 0,
            Status.BLOCK: 3,
            Status.INCONCLUSIVE: 4,
        }
        and EXIT_ERROR == 1
    )
    assert exit_code("BLOCK") == 3 and exit_code(Status.WARN) == 0
    assert exit_code("INCONCLUSIVE") == 4
    assert worst([]) == Status.PASS
    assert worst(["PASS", "WARN"]) == Status.WARN
    assert worst([Status.WARN, Status.BLOCK, Status.PASS]) == Status.BLOCK
    assert worst([Status.WARN, Status.INCONCLUSIVE, Status.PASS]) == Status.INCONCLUSIVE
    assert worst([Status.INCONCLUSIVE, Status.BLOCK]) == Status.BLOCK


def test_on_inconclusive_is_inconclusive_or_block() -> None:
    assert GateConfig.from_mapping({}).on_inconclusive == Status.INCONCLUSIVE
    assert GateConfig.from_mapping({"on_inconclusive": "block"}).on_inconclusive == Status.BLOCK
    with pytest.raises(ConfigError, match="on_inconclusive"):
        GateConfig.from_mapping({"on_inconclusive": "warn"})
    strict = GateConfig.from_mapping({"on_inconclusive": "block"})
    q = replace(_call(0.01, -0.03, 0.05), n_queries=20, queries_needed=300)
    assert gate_primary_metric(strict, q, n_queries=20).status == Status.BLOCK


def _call(delta: float, low: float, high: float, p: float = 0.5) -> QualityCall:
    status = quality_call(delta, low, high, margin=CFG.primary_metric.margin, p_value=p)
    return QualityCall("ndcg@10", delta, low, high, p, p, status, CFG.primary_metric.margin)


def test_default_thresholds_at_their_boundaries() -> None:
    # Behaviour change is a follow-up (WARN) in the default preset.
    assert gate_mean_cosine_shift(CFG, -0.03, 10).status == Status.PASS
    g = gate_mean_cosine_shift(CFG, 0.0301, 10)
    assert g.status == Status.WARN and "normalisation" in g.reason and g.observed == 0.0301
    assert gate_top_k_agreement(CFG, 0.92, 5).status == Status.PASS
    g = gate_top_k_agreement(CFG, 0.9199, 5)
    assert (g.name, g.status, g.threshold) == ("top_k_agreement", Status.WARN, ">= 0.92")
    assert annotate(g).group == "behaviour" and "gradually" in annotate(g).action
    assert gate_low_score_share(CFG, 0.05, 0.1, 0.15).status == Status.PASS
    assert gate_low_score_share(CFG, 0.0501, 0.1, 0.1501).status == Status.WARN
    assert gate_low_score_share(CFG, -0.2, 0.3, 0.1).status == Status.PASS
    assert gate_unjudged_increase(CFG, 0.1, 0.2).status == Status.PASS
    assert gate_unjudged_increase(CFG, 0.1, 0.2001).status == Status.WARN
    # Contract and cost can block.
    assert gate_latency_p95(CFG, 1.2).status == Status.PASS
    # Quality: non-inferiority of the primary metric with margin 0.01.
    assert gate_primary_metric(CFG, _call(0.1, 0.06, 0.14, 1e-9), n_queries=50).status == (
        Status.PASS
    )
    g = gate_primary_metric(CFG, _call(-0.002, -0.0099, 0.005), n_queries=50)
    assert g.status == Status.PASS and "no worse" in g.reason
    g = gate_primary_metric(CFG, _call(-0.1, -0.14, -0.06, 1e-9), n_queries=50)
    assert g.status == Status.BLOCK and "worse" in g.reason and g.action.startswith("do not")
    g = gate_primary_metric(CFG, _call(0.01, -0.03, 0.05), n_queries=20)
    assert g.status == Status.INCONCLUSIVE and "cannot show" in g.reason
    assert "judge more queries" in g.action and "an observed gain" in g.reason
    q = replace(_call(0.01, -0.03, 0.05), n_queries=20, queries_needed=300)
    g = gate_primary_metric(CFG, q, n_queries=20)
    assert "judge about 300 queries in all (280 more)" in g.action
    # A significant but tiny loss inside the margin is "no worse", not a block.
    assert gate_primary_metric(CFG, _call(-0.003, -0.005, -0.001, 1e-6), n_queries=5000).status == (
        Status.PASS
    )
    assert gate_primary_metric(CFG, None).status == Status.WARN  # not measured


def test_upgrade_preset_blocks_on_the_shadow_thresholds() -> None:
    up = GateConfig.from_mapping(
        {
            "top_k_agreement": {"on_fail": "BLOCK"},
            "mean_cosine_shift": {"on_fail": "BLOCK"},
            "low_score_share": {"on_fail": "BLOCK"},
        }
    )
    assert gate_top_k_agreement(up, 0.9199, 5).status == Status.BLOCK
    assert gate_low_score_share(up, 0.0501, 0.1, 0.1501).status == Status.BLOCK
    assert gate_mean_cosine_shift(up, 0.0301, 10).status == Status.BLOCK


def test_vector_contract_blocks_unnormalised_candidate_of_a_unit_baseline() -> None:
    unit = {"norm_min": 0.999, "norm_max": 1.001, "norm_mean": 1.0}
    short = {"norm_min": 0.31, "norm_max": 0.52, "norm_mean": 0.4}
    g = gate_vector_contract(CFG, unit, short)
    assert g.status == Status.BLOCK and "normalize=true" in g.action
    assert gate_vector_contract(CFG, unit, unit).status == Status.PASS
    assert gate_vector_contract(CFG, short, short).status == Status.PASS  # both raw: kept
    assert gate_vector_contract(CFG, None, None).status == Status.WARN  # not measured


def test_secondary_metrics_and_click_correlation_are_follow_ups() -> None:
    calls = [_call(0.1, 0.06, 0.14, 1e-9), replace(_call(-0.05, -0.08, -0.02), metric="recall@10")]
    g = gate_secondary_metrics(CFG, calls)
    assert g.status == Status.WARN and "recall_at_10" in g.reason
    assert gate_secondary_metrics(CFG, calls[:1]).measured is False
    # Gains are worded as gains, losses as losses.
    gains = [
        _call(0.1, 0.06, 0.14, 1e-9),
        replace(_call(0.05, 0.02, 0.08, 1e-3), metric="recall@10", family="secondary"),
        replace(_call(0.01, -0.03, 0.05), metric="mrr@10", family="secondary"),
    ]
    g = gate_secondary_metrics(CFG, gains)
    assert g.status == Status.WARN and "gains: recall_at_10" in g.reason
    assert "inconclusive: mrr_at_10" in g.reason and "loss" not in g.reason + g.action
    # The primary did not pass: the secondary family is not tested (fixed sequence).
    g = gate_secondary_metrics(CFG, gains, primary_passed=False)
    assert g.status == Status.WARN and "not tested" in g.reason and "not claimed" in g.reason


def _click(metric: str, delta: float, low: float, high: float) -> QualityCall:
    status = quality_call(delta, low, high, margin=CFG.click_correlation.margin)
    return QualityCall(metric, delta, low, high, 0.01, 0.02, status, CFG.click_correlation.margin)


def test_click_gate_decides_on_pooled_and_within() -> None:
    pooled_gain = _click("click_spearman", 0.074, 0.039, 0.110)
    pooled_loss = _click("click_spearman", -0.074, -0.110, -0.039)
    within_flat = _click("click_spearman_within", -0.01, -0.05, 0.03)
    within_ok = _click("click_spearman_within", 0.0, -0.01, 0.01)
    # A significant pooled gain does not hide an undecided within-query difference ...
    g = gate_click_correlation(CFG, pooled_gain, within_flat)
    assert g.status == Status.WARN and g.reason.startswith("within-query difference undecided")
    assert "B's scores follow clicks less closely" not in g.action
    # ... and a significant pooled loss is worse, whatever the within-query difference says.
    g = gate_click_correlation(CFG, pooled_loss, within_ok)
    assert (
        g.status == CFG.click_correlation.on_worse
        and "the pooled difference is a significant loss" in (g.reason)
    )
    g = gate_click_correlation(CFG, pooled_gain, within_ok)
    assert g.status == Status.PASS and g.reason.startswith("pooled gain")
    assert gate_click_correlation(CFG, None, None).measured is False


def test_unmeasured_inputs_warn_never_pass() -> None:
    cached = compare_latency(latency_summary(np.zeros(0)), latency_summary(np.zeros(0)))
    g = gate_latency_p95(CFG, cached.p95_ratio, measured=cached.measured)
    assert g.status == Status.WARN and not g.measured and "not measured" in g.reason
    assert g.observed is None and g.to_dict()["observed"] is None
    assert gate_mean_cosine_shift(CFG, None).status == Status.WARN
    assert gate_top_k_agreement(CFG, math.nan, 0).status == Status.WARN
    assert gate_endpoint_checks(CFG, None).status == Status.WARN
    strict = GateConfig.from_mapping({"on_not_measured": "block"})
    assert gate_latency_p95(strict, None, measured=False).status == Status.BLOCK


def test_endpoint_checks_gate_takes_external_results() -> None:
    ok = [{"name": "empty_input", "status": "PASS", "observed": 400, "expected": 400, "reason": ""}]
    assert gate_endpoint_checks(CFG, ok).status == Status.PASS
    warn = ok + [{"name": "dimensions", "status": "WARN", "observed": 384, "expected": 128}]
    assert gate_endpoint_checks(CFG, warn).status == Status.WARN
    fail = warn + [{"name": "nan_vectors", "status": "fail", "observed": 3, "expected": 0}]
    g = gate_endpoint_checks(CFG, fail)
    assert g.status == Status.BLOCK and "nan_vectors" in g.reason and g.observed == 1.0
    other = [{"name": "auth", "status": "FAIL", "version": "old"}]
    assert gate_endpoint_checks(CFG, other + ok, version="new").status == Status.PASS
    with pytest.raises(DataError, match=r"row 2, field 'status'.*PASS, WARN or FAIL"):
        gate_endpoint_checks(CFG, ok + [{"name": "x", "status": "OK"}])


def test_gate_config_files_compose_with_hydra(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    shutil.copytree(REPO / "conf" / "gates", tmp_path / "gates")
    (tmp_path / "config.yaml").write_text(
        "defaults:\n  - gates: default\n  - _self_\nprimary_metric: ndcg@10\n"
    )
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        default = compose("config")
        strict = compose("config", overrides=["gates=strict"])
        upgrade = compose("config", overrides=["gates=upgrade"])
        tweaked = compose("config", overrides=["gates.top_k_agreement.min=0.5"])
    d = GateConfig.from_mapping(default.gates, default.primary_metric)
    assert d == GateConfig()  # the YAML carries exactly the documented defaults
    u = GateConfig.from_mapping(upgrade.gates, upgrade.primary_metric)
    on_fail = (u.top_k_agreement.on_fail, u.mean_cosine_shift.on_fail, u.low_score_share.on_fail)
    assert on_fail == (Status.BLOCK,) * 3
    on_fail = (d.top_k_agreement.on_fail, d.mean_cosine_shift.on_fail, d.low_score_share.on_fail)
    assert on_fail == (Status.WARN,) * 3
    assert u.primary_metric.margin == d.primary_metric.margin == 0.01
    s = GateConfig.from_mapping(strict.gates, strict.primary_metric)
    assert s.mean_cosine_shift.on_fail == Status.BLOCK and s.on_not_measured == Status.BLOCK
    assert s.slices.affect_verdict and s.top_k_agreement.min == 0.95
    assert s.on_inconclusive == Status.BLOCK and d.on_inconclusive == Status.INCONCLUSIVE
    assert GateConfig.from_mapping(tweaked.gates).top_k_agreement.min == 0.5


def test_gate_config_mirrors_the_yaml_names() -> None:
    """Every key of conf/gates/default.yaml is a field of the same name (no renames)."""
    import yaml

    doc = yaml.safe_load((REPO / "conf" / "gates" / "default.yaml").read_text())
    cfg = GateConfig()
    for section, body in doc.items():
        assert hasattr(cfg, section), section
        if isinstance(body, dict):
            for key in body:
                if key == "frequency_bands":
                    continue
                assert hasattr(getattr(cfg, section), key), f"{section}.{key}"
    assert GateConfig.from_mapping(
        {"primary_metric": {"max_drop": 0.02}}
    ).primary_metric.margin == (0.02)


def test_gate_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="gates.top_k_agreement.min"):
        GateConfig.from_mapping({"top_k_agreement": {"min": 1.5}})
    with pytest.raises(ConfigError, match="unknown keys latency"):
        GateConfig.from_mapping({"latency": {}})
    with pytest.raises(ConfigError, match="on_fail"):
        GateConfig.from_mapping({"mean_cosine_shift": {"on_fail": "maybe"}})
    with pytest.raises(ConfigError, match="length_bands"):
        GateConfig.from_mapping({"slices": {"length_bands": [3, 1]}})
    cfg = GateConfig.from_mapping({"primary_metric": {"metric": None}}, primary_metric="mrr@10")
    assert cfg.primary_metric.metric == cfg.metric == "mrr@10"


def test_similarity_drift_numbers() -> None:
    rng = np.random.default_rng(0)
    b = rng.uniform(-0.2, 1.0, 1000)
    c = b * 0.5
    d = similarity_drift(b, c, threshold=0.3)
    assert d.mean_shift == pytest.approx(c.mean() - b.mean())
    assert d.baseline_low_share == pytest.approx(np.mean(b < 0.3))
    assert d.low_share_delta == pytest.approx(np.mean(c < 0.3) - np.mean(b < 0.3))
    assert sum(d.baseline_hist) == 1000 == sum(d.candidate_hist)
    same = similarity_drift(b, b)
    assert same.mean_shift == 0.0 and same.low_share_delta == 0.0
    with pytest.raises(DataError, match="row 3"):
        similarity_drift(np.array([0.1, 0.2, np.nan]), np.zeros(3))


def test_align_pairs_reorders_by_id_and_refuses_other_pairs() -> None:
    ids = [("q1", "a"), ("q1", "b"), ("q2", "a")]
    _, b, c = align_pairs(ids, np.array([1.0, 2, 3]), ids[::-1], np.array([30.0, 20, 10]))
    assert c.tolist() == [10.0, 20.0, 30.0]
    with pytest.raises(DataError, match="different"):
        align_pairs(ids, np.zeros(3), [("q9", "a"), *ids[1:]], np.zeros(3))


def test_latency_percentiles_match_statistics_module() -> None:
    rng = np.random.default_rng(1)
    lat = rng.gamma(3.0, 0.02, size=257)
    s = latency_summary(lat, throughput=100.0, batch_size=32, concurrency=4)
    q = statistics.quantiles(lat.tolist(), n=100, method="inclusive")
    assert (s.p50, s.p95, s.p99) == pytest.approx((q[49], q[94], q[98]), rel=1e-12)
    slow = latency_summary(lat * 1.5, throughput=70.0, batch_size=32, concurrency=4)
    cmp = compare_latency(s, slow)
    assert cmp.p95_ratio == pytest.approx(1.5) and cmp.comparable and cmp.measured
    assert cmp.throughput_ratio == pytest.approx(0.7)
    other_load = compare_latency(s, latency_summary(lat, batch_size=64, concurrency=4))
    assert not other_load.comparable and "batch size 32 vs 64" in other_load.note
    g = gate_latency_p95(CFG, other_load.p95_ratio, comparable=False, note=other_load.note)
    assert g.status == Status.WARN and "different load" in g.reason
    with pytest.raises(DataError, match="latencies_s"):
        latency_summary(np.array([0.1, -1.0]))


def test_fingerprint_mismatch_names_the_differing_parts() -> None:
    a = {"catalog": "c1", "queries": "q1", "judgments": "j1", "dataset": "d1"}
    check_fingerprints(a, dict(a))
    b = {**a, "judgments": "j2", "clicks": "k1", "dataset": "d2"}
    with pytest.raises(FingerprintMismatch) as err:
        check_fingerprints(a, b, names=("use_m3", "e5_small"))
    msg = str(err.value)
    differ = msg.split("differ in ")[1].split(";")[0]
    assert "judgments" in differ and "clicks" in differ
    assert "catalog" not in differ and "queries" not in differ
    assert "use_m3" in msg and "e5_small" in msg and "absent" in msg
    check_fingerprints({}, {})  # nothing to verify: allowed (logged)


def test_latency_of_in_process_models_is_a_follow_up_never_a_block() -> None:
    # the whole interval above +20%: served endpoints block, in-process models only warn
    assert gate_latency_p95(CFG, 3.0, ci_low=2.5, ci_high=3.5).status == Status.BLOCK
    g = gate_latency_p95(CFG, 3.0, ci_low=2.5, ci_high=3.5, in_process=True)
    assert g.status == Status.WARN and "in process" in g.reason and "serving" in g.action
    assert gate_latency_p95(CFG, 1.1, ci_low=1.0, ci_high=1.2, in_process=True).status == (
        Status.PASS
    )


def test_behaviour_texts_agree_when_the_score_scale_changed() -> None:
    """A new model family scores on another scale: mean_cosine_shift calls it a score-scale
    change, and the low-score share's action says the same (move the cut-off), never "a
    degradation in query understanding"."""
    from evalkit.compare.compare_settings import CompareSettings
    from evalkit.compare.questions import answer_behaviour
    from evalkit.results import VersionResult

    rng = np.random.default_rng(3)
    pairs = [(f"q{i // 5}", f"d{i}") for i in range(200)]
    pq = {"ndcg@10": {f"q{i}": 0.5 for i in range(40)}}
    a_sims = rng.uniform(0.1, 0.9, 200)  # a wide scale: many pairs below 0.3
    a = VersionResult("a", {}, {}, pq, None, pair_ids=pairs, pair_similarity=a_sims)

    def gates_of(b_sims):
        b = VersionResult("b", {}, {}, pq, None, pair_ids=pairs, pair_similarity=b_sims)
        return {
            g.name: g for g in answer_behaviour(a, b, None, GateConfig(), CompareSettings()).gates
        }

    shifted = gates_of(a_sims - 0.25)  # the same order, another scale (mean cosine -0.25)
    assert shifted["mean_cosine_shift"].status == Status.WARN
    assert "score scale changed" in shifted["mean_cosine_shift"].reason
    low = shifted["low_score_share_increase"]
    assert low.status == Status.WARN
    assert "query understanding worse" not in low.reason and "degradation" not in low.action
    assert low.action.startswith("the score scale changed (mean cosine -0.2500)")
    # same scale, more low scores: the share itself is the signal
    spread = a_sims.copy()
    spread[:40] = 0.05
    same_scale = gates_of(spread + (a_sims.mean() - spread.mean()))
    assert same_scale["mean_cosine_shift"].status == Status.PASS
    low = same_scale["low_score_share_increase"]
    assert low.status == Status.WARN and "score scale" not in low.reason
