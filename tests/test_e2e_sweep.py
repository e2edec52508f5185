"""Hydra multirun sweeps: every job is its own tracked evaluation, embeddings are reused.

`evalkit --multirun models.e5_small.dimensions=128,256,384` (the documented form) runs three
evaluations; the swept value is a param of each; client-side truncation happens after the cache,
so only the first job embeds anything.  The joblib launcher runs jobs in parallel processes that
share the cache safely.
"""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from .cli import run_evalkit

pytestmark = pytest.mark.slow


def _runs(work, experiment):
    client = MlflowClient(tracking_uri=f"sqlite:///{work}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


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
    parents, children = _runs(tmp_path, "sweep")
    assert len(parents) == 3 and len(children) == 3
    swept = sorted(p.data.params["override.models.e5_small.dimensions"] for p in parents)
    assert swept == ["128", "256", "384"]
    # The swept value names each job's parent run (issue 9): the jobs differ in the runs table.
    names = sorted(p.info.run_name for p in parents)
    assert names == [f"adi: e5_small [models.e5_small.dimensions={d}]" for d in (128, 256, 384)]
    dims = [c.data.params["model.dimensions"] for c in children]
    assert dims == ["128", "256", "384"]
    assert [c.data.metrics["dim"] for c in children] == [128, 256, 384]
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
