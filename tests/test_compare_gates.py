"""Gates (thresholds, statuses, exit codes, config files), drift, latency and fingerprints."""

from __future__ import annotations

import math
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest

from evalkit.compare.drift import align_pairs, similarity_drift
from evalkit.compare.fingerprint import check_fingerprints
from evalkit.compare.gates import (
    EXIT_CODES,
    EXIT_ERROR,
    GateConfig,
    Status,
    exit_code,
    gate_endpoint_checks,
    gate_latency_p95,
    gate_low_score_share,
    gate_mean_cosine_shift,
    gate_primary_metric,
    gate_top_k_agreement,
    worst,
)
from evalkit.compare.latency import compare_latency, latency_summary
from evalkit.errors import ConfigError, DataError, FingerprintMismatch

REPO = Path(__file__).resolve().parents[1]
CFG = GateConfig()


def test_exit_codes_and_worst() -> None:
    assert EXIT_CODES == {Status.PASS: 0, Status.WARN: 0, Status.BLOCK: 3} and EXIT_ERROR == 1
    assert exit_code("BLOCK") == 3 and exit_code(Status.WARN) == 0
    assert worst([]) == Status.PASS
    assert worst(["PASS", "WARN"]) == Status.WARN
    assert worst([Status.WARN, Status.BLOCK, Status.PASS]) == Status.BLOCK


def test_issue_thresholds_at_their_boundaries() -> None:
    # |mean cosine shift| <= 0.03, else WARN (check normalisation)
    assert gate_mean_cosine_shift(CFG, -0.03, 10).status == Status.PASS
    g = gate_mean_cosine_shift(CFG, 0.0301, 10)
    assert g.status == Status.WARN and "normalisation" in g.reason and g.observed == 0.0301
    # top-3 agreement >= 0.92
    assert gate_top_k_agreement(CFG, 0.92, 5).status == Status.PASS
    g = gate_top_k_agreement(CFG, 0.9199, 5)
    assert (g.name, g.status, g.threshold) == ("top3_agreement", Status.BLOCK, ">= 0.92")
    # low-score share increase <= 0.05
    assert gate_low_score_share(CFG, 0.05, 0.1, 0.15).status == Status.PASS
    assert gate_low_score_share(CFG, 0.0501, 0.1, 0.1501).status == Status.BLOCK
    assert gate_low_score_share(CFG, -0.2, 0.3, 0.1).status == Status.PASS
    # p95 latency increase <= 20%
    assert gate_latency_p95(CFG, 1.2).status == Status.PASS
    g = gate_latency_p95(CFG, 1.25)
    assert g.status == Status.BLOCK and g.observed == pytest.approx(0.25)
    # primary metric: not significantly worse and drop <= 0.01
    assert gate_primary_metric(CFG, -0.01, 0.2, n_queries=50).status == Status.PASS
    g = gate_primary_metric(CFG, -0.011, 0.2, n_queries=50)
    assert g.status == Status.BLOCK and "drop" in g.reason
    g = gate_primary_metric(CFG, -0.005, 0.01, test="student", n_queries=5000)
    assert g.status == Status.BLOCK and "significantly worse" in g.reason
    assert gate_primary_metric(CFG, 0.05, 0.001, n_queries=50).status == Status.PASS  # better
    assert gate_primary_metric(CFG, -0.005, math.nan, n_queries=1).status == Status.PASS


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
        tweaked = compose("config", overrides=["gates.top_k_agreement.min=0.5"])
    d = GateConfig.from_mapping(default.gates, default.primary_metric)
    assert d == GateConfig()  # the YAML carries exactly the issue's thresholds
    s = GateConfig.from_mapping(strict.gates, strict.primary_metric)
    assert s.cosine_on_fail == Status.BLOCK and s.on_not_measured == Status.BLOCK
    assert s.slices.affect_verdict and s.agreement_min == 0.95
    assert GateConfig.from_mapping(tweaked.gates).agreement_min == 0.5


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
    assert cfg.primary_metric == "mrr@10"


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
