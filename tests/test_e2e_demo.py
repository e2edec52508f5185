"""The README's first command: `evalkit` with no arguments runs the demo A/B, offline.

Only where results go is redirected (MLflow store, cache, output folder); the dataset, the models
and every other setting are the embedded defaults.
"""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from .cli import child_runs, run_evalkit

pytestmark = pytest.mark.slow


def test_default_command_runs_the_demo_ab_and_prints_the_verdict(tmp_path):
    res = run_evalkit(work=tmp_path)
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    out = res.stdout
    assert "synthetic demo data" in out
    assert "Release verdict" in out and "top_k_agreement" in out and "primary_metric" in out
    assert "simulated clicks" in out  # the demo's click log is labelled simulated

    verdict = json.loads((res.out_dir / "verdict.json").read_text())
    assert verdict["verdict"] in ("PASS", "WARN", "INCONCLUSIVE", "BLOCK")
    assert verdict["exit_code"] == res.returncode
    for name in ("report.md", "report.html", "click_scatter.png"):
        assert (res.out_dir / name).stat().st_size > 500, name

    runs = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "evalkit")
    assert set(runs) == {"use_m3", "e5_small"}
    parent_id = runs["e5_small"].data.tags["mlflow.parentRunId"]
    parent = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db").get_run(parent_id)
    assert parent.data.tags["evalkit.synthetic"] == "true"
    assert parent.data.tags["evalkit.verdict"] == verdict["verdict"]
    for metric in (
        "delta_ndcg_at_10",
        "p_ndcg_at_10",
        "top3_agreement",
        "mean_cosine_shift",
        "low_score_share_delta",
        "latency_p95_ratio",
    ):
        assert metric in parent.data.metrics, metric
    assert parent.data.params["click_simulated"] == "True"
