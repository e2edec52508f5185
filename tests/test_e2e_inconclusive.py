"""README's BEIR command on ADI (35 judged queries), both orders: not enough evidence is its own
outcome, INCONCLUSIVE with exit code 4, never a BLOCK, and the verdict says what would decide."""

from __future__ import annotations

import csv
import json

import pytest
from mlflow import MlflowClient

from .cli import run_evalkit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def adi_runs(tmp_path_factory, shared_data, shared_cache):
    work = tmp_path_factory.mktemp("adi_inconclusive")
    out = {}
    for name, models in (("forward", "use_m3,e5_small"), ("swapped", "e5_small,use_m3")):
        out[name] = run_evalkit(
            "dataset=beir",
            f"dataset.path={shared_data / 'adi'}",
            f"models=[{models}]",
            f"cache.dir={shared_cache}",
            "tracking.experiment=adi",
            work=work,
            out_name=name,
        )
    return work, out


@pytest.mark.parametrize("order", ["forward", "swapped"])
def test_adi_is_inconclusive_with_exit_4_and_the_queries_that_decide(adi_runs, order) -> None:
    work, runs = adi_runs
    res = runs[order]
    assert res.returncode == 4, res.stderr[-3000:]
    doc = json.loads((res.out_dir / "verdict.json").read_text())
    assert doc["verdict"] == "INCONCLUSIVE" and doc["exit_code"] == 4
    assert doc["quality_status"] == "inconclusive"
    [primary] = [q for q in doc["quality"] if q["family"] == "primary"]
    n, needed = primary["n_queries"], primary["queries_needed"]
    assert needed is not None and needed > n
    out = " ".join(res.stdout.replace("│", " ").split())
    assert f"judge about {needed:,} queries in all ({needed - n:,} more) to show " in out
    if needed > 35:  # ADI holds 35 queries: the rest must be new ones, and the verdict says so
        held = f"the query set holds 35, so sample about {needed - 35:,} new queries"
        assert held in " ".join(doc["undecided"][0]["what_to_do"].split())
    assert doc["undecided"][0]["name"] == "primary_metric" and not doc["blockers"]
    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    [exp] = [e for e in client.search_experiments() if e.name == "adi"]
    parents = [
        r
        for r in client.search_runs([exp.experiment_id])
        if "mlflow.parentRunId" not in r.data.tags and r.info.run_name
    ]
    baseline = "use_m3" if order == "forward" else "e5_small"
    parent = next(r for r in parents if r.data.params.get("baseline") == baseline)
    assert parent.data.tags.get("evalkit.exit_code") == "4"
    assert parent.data.tags["evalkit.verdict"] == "INCONCLUSIVE"
    assert parent.data.metrics["queries_needed"] == needed
    # the plan is for the call that can be reached, with its planning range
    reach = "no worse" if primary["delta"] > -primary["margin"] else "worse"
    assert primary["queries_needed_for"] == reach
    low, high = (
        parent.data.metrics["queries_needed_low"],
        parent.data.metrics["queries_needed_high"],
    )
    assert low == primary["queries_needed_low"] and high == primary["queries_needed_high"]
    assert low <= needed <= high
    # The judgments that would decide start with the worklist (the delta is not significant).
    assert primary["p"] >= 0.05
    with open(res.out_dir / "judging_worklist.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and set(rows[0]) >= {"query_id", "item_id", "rank_a", "rank_b", "priority", "grade"}
    assert all(r["grade"] == "" for r in rows)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "judging_worklist.csv" in artifacts
