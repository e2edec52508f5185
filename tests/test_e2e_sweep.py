"""Hydra multirun sweeps: every job is its own tracked evaluation, embeddings are reused.

`evalkit --multirun models.e5_small.dimensions=128,256,384` (the documented form) runs three
evaluations; the swept value is a param of each; client-side truncation happens after the cache,
so only the first job embeds anything.  The joblib launcher runs jobs in parallel processes that
share the cache safely.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from mlflow import MlflowClient
from scipy import stats
from statsmodels.stats.multitest import multipletests

from evalkit.sweep import SUMMARY_FILE

from .cli import run_evalkit

pytestmark = pytest.mark.slow


def _runs(work, experiment, sweep=None):
    """The evaluations' parent runs and their version runs; ``sweep`` (a list) receives the
    sweep's own run, under which every evaluation is nested."""
    client = MlflowClient(tracking_uri=f"sqlite:///{work}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    sweeps = [r for r in runs if r.data.tags.get("evalkit.task") == "sweep"]
    assert len(sweeps) == 1 and "mlflow.parentRunId" not in sweeps[0].data.tags
    sweep_id = sweeps[0].info.run_id
    parents = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweep_id]
    ids = {p.info.run_id for p in parents}
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in ids]
    assert len(runs) == 1 + len(parents) + len(children)  # nothing outside the sweep run
    if sweep is not None:
        sweep.append(sweeps[0])
    return parents, children


def _per_query(job_dir, version, metric="ndcg@10"):
    with open(job_dir / version / "per_query.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {r["query_id"]: float(r[metric]) for r in rows}


def test_dimension_sweep_tracks_each_job_and_reuses_embeddings(tmp_path, shared_data):
    res = run_evalkit(
        "--multirun",
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "models=[e5_small]",
        "models.e5_small.dimensions=128,256,384",
        "tracking.experiment=sweep",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        work=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    found = []
    parents, children = _runs(tmp_path, "sweep", found)
    assert len(parents) == 3 and len(children) == 3
    # one sweep run (issue 27): its jobs nested, the configurations compared with the reference
    # (the full 384 dimensions), Holm across the two others, the pick or the closest named
    sweep = found[0]
    assert sweep.info.run_name == "sweep: adi models.e5_small.dimensions"
    assert sweep.data.tags["evalkit.sweep.reference"] == "models.e5_small.dimensions=384"
    jobs = {d: tmp_path / "multirun" / str(i) for i, d in enumerate((128, 256, 384))}
    ref = _per_query(jobs[384], "e5_small")
    raw = {}
    for n, d in enumerate((128, 256)):
        other = _per_query(jobs[d], "e5_small")
        diff = np.array([other[q] - ref[q] for q in sorted(ref)])
        assert sweep.data.metrics[f"delta_{n}"] == pytest.approx(diff.mean(), abs=1e-12)
        raw[n] = stats.ttest_1samp(diff, 0.0)
    holm = multipletests([raw[0].pvalue, raw[1].pvalue], method="holm")[1]
    for n in (0, 1):
        assert sweep.data.metrics[f"p_holm_{n}"] == pytest.approx(holm[n], rel=1e-9)
    pick = sweep.data.tags["evalkit.sweep.pick"]
    if pick != "none":
        d = int(pick.rsplit("=", 1)[1])
        n = (128, 256).index(d)
        assert sweep.data.metrics["pick_delta"] == sweep.data.metrics[f"delta_{n}"]
    assert sweep.data.tags["evalkit.summary"] in res.stdout.replace("\n", "")
    names = {a.path for a in MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").list_artifacts(
        sweep.info.run_id)}  # fmt: skip
    assert {"sweep_configs.csv", "sweep_report.html", "sweep_summary.json"} <= names
    # task=runs lists the sweep as one row, with its pick
    listed = run_evalkit("task=runs", "tracking.experiment=sweep", work=tmp_path, out_name="runs")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "Last 1 evaluation(s)" in listed.stdout  # the table wraps long cells: read the rows
    from evalkit.track.last_runs import last_evaluations

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("sweep")
    [row] = last_evaluations(client, exp.experiment_id, "ndcg@10")
    assert row.name.endswith("(3 jobs)") and row.verdict.startswith(f"pick: {pick}")
    assert row.run_id == sweep.info.run_id and row.versions == ["e5_small"]
    swept = sorted(p.data.params["override.models.e5_small.dimensions"] for p in parents)
    assert swept == ["128", "256", "384"]
    # The swept value names each job's parent run (issue 9): the jobs differ in the runs table.
    names = sorted(p.info.run_name for p in parents)
    assert names == [f"adi: e5_small [models.e5_small.dimensions={d}]" for d in (128, 256, 384)]
    dims = [c.data.params["model.dimensions"] for c in children]
    assert dims == ["128", "256", "384"]
    # ... and each child run by what differs (issue 16): MLflow's compare view tells them apart
    assert [c.info.run_name for c in children] == [
        f"e5_small [dimensions={d}]" for d in (128, 256, 384)
    ]
    assert [c.data.metrics["dim"] for c in children] == [128, 256, 384]
    # one summary table at the end, one row per job with its primary metric
    table = res.stdout[res.stdout.index("Sweep: 3 jobs, exit code 0") :]
    for dim, child in zip((128, 256, 384), children):
        assert f"models.e5_small.dimensions={dim}" in table
        assert f"e5_small: {child.data.metrics['ndcg_at_10']:.4f}" in table
    requests = [c.data.metrics["embed_requests"] for c in children]
    assert requests[0] > 0 and requests[1:] == [0, 0]  # truncation is applied after the cache
    ndcg = [c.data.metrics["ndcg_at_10"] for c in children]
    assert len(set(ndcg)) > 1  # the dimension really changed the vectors


def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path, shared_data):
    res = run_evalkit(
        "--multirun",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "models=[use_m3]",
        "models.use_m3.dimensions=128,512",
        "tracking.experiment=joblib",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        work=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    parents, children = _runs(tmp_path, "joblib")
    assert len(parents) == 2 and sorted(c.data.params["model.dimensions"] for c in children) == [
        "128",
        "512",
    ]
    assert all(p.info.status == "FINISHED" for p in parents)
    summary = json.loads((tmp_path / "multirun" / SUMMARY_FILE).read_text())
    assert summary["exit_code"] == 0 and [j["num"] for j in summary["jobs"]] == [0, 1]
    assert "Sweep: 2 jobs, exit code 0" in res.stdout


def test_sweep_exits_with_the_worst_jobs_code(tmp_path, shared_cache):
    """Job 0 blocks (top-3 results of two different models never agree on every query), job 1 is a configuration error: exit 3,
    and the table shows both."""
    res = run_evalkit(
        "--multirun",
        f"cache.dir={shared_cache}",
        "dataset.n_items=120",
        "dataset.n_queries=30",
        "gates.top_k_agreement.min=1.0",
        "gates.top_k_agreement.on_fail=BLOCK",  # a follow-up by default: made to block here
        "k=100,5",
        "tracking.experiment=worst",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        work=tmp_path,
    )
    assert res.returncode == 3, res.stderr[-3000:]
    summary = json.loads((tmp_path / "multirun" / SUMMARY_FILE).read_text())
    jobs = {j["num"]: j for j in summary["jobs"]}
    assert summary["exit_code"] == 3
    assert jobs[0]["verdict"] == "BLOCK" and jobs[0]["exit_code"] == 3
    assert set(jobs[0]["metrics"]) == {"use_m3", "e5_small"}
    assert jobs[1]["verdict"] == "ERROR" and jobs[1]["exit_code"] == 1
    assert "needs depth 10 but k=5" in jobs[1]["error"]
    table = res.stdout[res.stdout.index("Sweep: 2 jobs, exit code 3") :]
    assert "k=100" in table and "k=5" in table and "BLOCK" in table and "ERROR" in table
    assert "Traceback" not in res.stderr
    # the failed job stays in the sweep's table with its error (issue 27)
    with open(tmp_path / "multirun" / "sweep_configs.csv", encoding="utf-8") as fh:
        rows = {r["job"]: r for r in csv.DictReader(fh)}
    assert rows["0"]["call"] == "reference" and rows["0"]["configuration"] == "k=100"
    assert rows["1"]["configuration"] == "k=5" and "needs depth 10 but k=5" in rows["1"]["error"]
