"""``evalkit task=online`` end to end (issue 25): the demo's simulated canary through the real
command, its MLflow parent run beside the offline one, ``task=runs`` showing both verdicts on one
line, and a bad log refused in one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow import MlflowClient

from .cli import run_evalkit
from .test_online_verdict import CONTRACT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def canary(tmp_path_factory, shared_cache):
    work = tmp_path_factory.mktemp("online")
    res = run_evalkit(
        "task=online",
        "online=simulated",
        "online.users=4000",
        "online.days=7",
        # a smaller demo catalog: the offline A/B it links to runs first (the size
        # test_index_precision.py embeds into shared_cache too)
        "dataset.n_items=600",
        "dataset.n_queries=120",
        f"cache.dir={shared_cache}",
        "tracking.experiment=canary",
        work=work,
    )
    return work, res


def test_the_simulated_canary_prints_a_verdict_and_writes_its_report(canary) -> None:
    work, res = canary
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    assert "Rollout verdict:" in res.stdout and "SIMULATED" in res.stdout
    doc = json.loads((res.out_dir / "verdict.json").read_text())
    assert doc["task"] == "online" and doc["simulated"] is True
    assert doc["exit_code"] == res.returncode
    assert doc["versions"] == {"control": "use_m3", "treatment": "e5_small"}
    names = {i["name"] for k in ("passed", "follow_ups", "undecided", "blockers") for i in doc[k]}
    assert {"sample_ratio", "request_ctr", "score_click", "latency_p95_increase"} <= names
    for plot in ("daily_ctr", "score_ctr", "latency_cdf", "position_ctr"):
        assert (res.out_dir / f"{plot}.png").stat().st_size > 1000
    assert len(list((res.out_dir / "canary").glob("part-*.parquet"))) == 7
    # the offline run it was simulated from is beside it
    assert doc["offline"]["verdict"] in ("PASS", "WARN", "INCONCLUSIVE", "BLOCK")
    assert f"offline ({doc['offline']['run_id']})" in " ".join(res.stdout.split())


def test_the_canary_is_one_mlflow_run_beside_the_offline_one(canary) -> None:
    work, res = canary
    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    exp = client.get_experiment_by_name("canary")
    [run] = client.search_runs([exp.experiment_id], "tags.`evalkit.task` = 'online'")
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["evalkit.versions"] == "use_m3,e5_small" and tags["evalkit.simulated"] == "true"
    assert tags["evalkit.exit_code"] == str(res.returncode)
    assert set(metrics) >= CONTRACT
    offline = client.get_run(tags["evalkit.offline_run_id"])
    assert offline.data.tags["evalkit.dataset"].startswith("demo")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"verdict.json", "report.md", "report.html", "daily_ctr.png"} <= artifacts
    runs = run_evalkit("task=runs", "tracking.experiment=canary", work=work, out_name="runs")
    assert runs.returncode == 0, runs.stderr[-2000:]
    line = next(x for x in runs.stdout.splitlines() if offline.info.run_id[:20] in x)
    assert tags["evalkit.verdict"] in line and offline.data.tags["evalkit.verdict"] in line


def test_a_log_without_the_arm_column_is_one_line_naming_the_file(tmp_path) -> None:
    log = tmp_path / "gateway.csv"
    pd.DataFrame(
        {"request_id": [1, 2], "bucket": ["control", "treatment"], "clicked": [0, 1]}
    ).to_csv(log, index=False)
    res = run_evalkit("task=online", f"online.path={log}", "tracking=none", work=tmp_path)
    assert res.returncode == 1
    errors = [x for x in res.stderr.splitlines() if "evalkit: " in x]
    assert len(errors) == 1 and "gateway.csv" in errors[0] and "ab_group" in errors[0]
    assert "bucket" in errors[0] and "Traceback" not in res.stderr


def test_engine_ray_reads_the_log_part_by_part_with_the_same_verdict(canary, tmp_path) -> None:
    """``engine=ray``: the per-unit reduction runs on Ray Data, one task per Parquet part; the
    figures equal the local run's on the same log."""
    pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')
    work, res = canary
    log = res.out_dir / "canary"
    runs = {}
    for engine in ("local", "ray"):
        runs[engine] = run_evalkit(
            "task=online",
            f"online.path={log}",
            f"engine={engine}",
            "engine.num_cpus=2" if engine == "ray" else "progress=false",
            "tracking=none",
            work=tmp_path,
            out_name=engine,
        )
        assert runs[engine].returncode in (0, 3, 4), runs[engine].stderr[-3000:]
    local, ray = (
        json.loads((runs[e].out_dir / "verdict.json").read_text()) for e in ("local", "ray")
    )
    assert ray["verdict"] == local["verdict"]
    for name, value in local["metrics"].items():
        if name.startswith("latency_p95_ratio_ci"):  # a bootstrap over requests in file order
            continue
        assert ray["metrics"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
