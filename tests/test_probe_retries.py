"""Latency-probe retries are counted and said (issue 16): ``probe_retries`` on the child run, and a
p95 measured while requests were retried says so in the latency gate's text and the report.
Against the real fault server on 127.0.0.1 answering 429 / 503 to some probe requests."""

from __future__ import annotations

import json

import numpy as np

from evalkit.compare.gate_config import GateConfig
from evalkit.compare.gate_rules import gate_latency_p95
from evalkit.compare.latency_stats import compare_latency, latency_summary
from evalkit.embed.latency_probe import ProbeSettings, probe_latency, probe_metrics
from evalkit.embed.openai_backend import OpenAIEmbedder

from .cli import child_runs, run_evalkit
from .fault_server import FaultServer

TEXTS = [f"query {i}" for i in range(12)]


def _version(server: FaultServer, name: str) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        name,
        base_url=server.base_url,
        model="fault-model",
        retry_initial_s=0.01,
        retry_max_s=0.02,
        max_retries=3,
    )


def test_probe_counts_retries_and_the_gate_says_the_p95_had_them():
    with FaultServer(dim=8) as a, FaultServer(dim=8) as b:
        # b: the warm-up passes, then 2 of its timed requests fail once (429, then 503)
        b.push("ok", "429:0.01", "ok", "ok", "503")
        res = probe_latency(
            [_version(a, "a"), _version(b, "b")],
            TEXTS,
            ProbeSettings(texts=12, min_requests=12, batch_size=1),
        )
        statuses = [r.fault.status for r in b.embedding_requests]
    assert statuses.count(429) == 1 and statuses.count(503) == 1
    assert (res["a"].retries, res["b"].retries) == (0, 2)
    assert res["b"].n_requests == 12  # successful attempts only are timed
    assert probe_metrics(res["b"])["probe_retries"] == 2.0
    assert probe_metrics(res["a"])["probe_retries"] == 0.0
    cmp = compare_latency(
        latency_summary(res["a"].latencies_s, retries=res["a"].retries),
        latency_summary(res["b"].latencies_s, retries=res["b"].retries),
    )
    assert cmp.retry_note == (
        "measured with retries: 2 candidate request(s) retried "
        "(the p95 times successful attempts only)"
    )
    gate = gate_latency_p95(GateConfig(), cmp.p95_ratio, retried=cmp.retry_note)
    assert "measured with retries: 2 candidate request(s) retried" in gate.reason
    clean = compare_latency(latency_summary(np.array([0.1, 0.2])), latency_summary(np.array([0.1])))
    assert clean.retry_note == ""
    assert "retries" not in gate_latency_p95(GateConfig(), 1.0, retried=clean.retry_note).reason


def test_cli_probe_retries_reach_mlflow_the_gate_and_the_report(tmp_path):
    """Second (warm) run: the only requests are the probe's, and the candidate's server answers
    429 and 503 to two of them: ``probe_retries`` = 2 on its child run, 0 on the baseline's."""
    with FaultServer(dim=8) as a, FaultServer(dim=8) as b:
        args = [
            "models=[openai,e5_small_openai]",
            "dataset.n_items=50",
            "dataset.n_queries=8",
            "latency.min_requests=10",
        ]
        for name, srv in (("openai", a), ("e5_small_openai", b)):
            args += [
                f"models.{name}.base_url={srv.base_url}",
                f"models.{name}.model=fault-model",
                f"models.{name}.retry_initial_s=0.01",
                f"models.{name}.retry_max_s=0.02",
            ]
        cold = run_evalkit(*args, "tracking.experiment=cold", work=tmp_path, out_name="cold")
        assert cold.returncode in (0, 3, 4), cold.stderr[-3000:]
        before = len(b.embedding_requests)
        b.push("ok", "429:0.01", "ok", "503")  # warm-up, then probe requests
        warm = run_evalkit(*args, "tracking.experiment=warm", work=tmp_path, out_name="warm")
        probe = b.embedding_requests[before:]
    assert warm.returncode in (0, 3, 4), warm.stderr[-3000:]
    assert [r.fault.status for r in probe].count(429) == 1
    runs = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "warm")
    assert runs["openai"].data.metrics["probe_retries"] == 0
    cand = runs["e5_small_openai"].data.metrics
    assert cand["probe_retries"] == 2 and cand["embed_requests"] == 0  # warm: the probe only
    verdict = json.loads((warm.out_dir / "verdict.json").read_text())
    gate = next(g for g in verdict["candidates"][0]["gates"] if g["name"] == "latency_p95_increase")
    note = "measured with retries: 2 candidate request(s) retried"
    assert note in json.dumps(gate)
    assert note in (warm.out_dir / "report.md").read_text()
