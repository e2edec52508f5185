"""Compare a new candidate against a baseline already logged in MLflow (by run id).

- The logged baseline is rebuilt from its artifacts, never re-embedded, and the comparison equals
  the one of a joint run.
- A baseline logged on different data is refused with a message saying what differs.
"""

from __future__ import annotations

import json

import pytest

from .cli import child_runs, run_evalkit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def logged(tmp_path_factory, shared_data, shared_cache):
    work = tmp_path_factory.mktemp("baseline")
    adi = f"dataset.path={shared_data / 'adi'}"
    joint = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=beir",
        adi,
        "models=[use_m3,e5_small]",
        "tracking.experiment=joint",
        work=work,
        out_name="joint",
    )
    assert joint.returncode in (0, 3, 4), joint.stderr[-3000:]
    base = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=beir",
        adi,
        "models=[use_m3]",
        "tracking.experiment=prod",
        work=work,
        out_name="base",
    )
    assert base.returncode == 0, base.stderr[-3000:]
    base_run = child_runs(f"sqlite:///{work}/mlflow.db", "prod")["use_m3"].info.run_id
    return work, joint, base_run


def test_candidate_vs_logged_baseline_equals_joint_comparison(logged, shared_data, shared_cache):
    work, joint, base_run = logged
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "models=[e5_small]",
        f"compare.baseline_run_id={base_run}",
        "tracking.experiment=prod",
        work=work,
        out_name="candidate",
    )
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    assert "use_m3/document" not in res.stdout + res.stderr  # the baseline was not re-embedded
    ours = json.loads((res.out_dir / "verdict.json").read_text())
    theirs = json.loads((joint.out_dir / "verdict.json").read_text())
    assert ours["baseline"] == "use_m3" and ours["verdict"] == theirs["verdict"]
    a, b = ours["comparison_metrics"], theirs["comparison_metrics"]
    for key in ("delta_ndcg_at_10", "p_ndcg_at_10", "top3_agreement", "mean_cosine_shift"):
        assert a[key] == pytest.approx(b[key], abs=1e-6), key
    runs = child_runs(f"sqlite:///{work}/mlflow.db", "prod")
    assert runs["e5_small"].data.tags["evalkit.role"] == "candidate"


def test_baseline_from_other_dataset_is_refused(logged, shared_data, shared_cache):
    work, _, base_run = logged
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=beir",
        f"dataset.path={shared_data / 'cisi'}",
        "models=[use_m3]",
        f"compare.baseline_run_id={base_run}",
        "tracking.experiment=prod",
        work=work,
        out_name="other",
    )
    assert res.returncode == 1
    err = res.stderr + res.stdout
    assert "fingerprint" in err.lower() or "differ" in err.lower()
    assert "catalog" in err and "Traceback" not in err
