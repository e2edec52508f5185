"""A shipped collection thinned to a seeded 40% of its judgments (issue 24): the primary call's
interval says "better", but 90% of each top 10 is unjudged and the judged-only call (Sakai's
condensed list, checked against pytrec_eval's ``judged_docs_only_flag``) is inconclusive, so the
verdict is INCONCLUSIVE with exit 4 and says "judgments too sparse"; the coverage line is its own
checklist item, never "passed"."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import pytrec_eval
from mlflow import MlflowClient
from scipy import stats

from evalkit.retrieve.run_file import read_trec

from .cli import child_runs, run_evalkit
from .testdata import unpack

pytestmark = pytest.mark.slow

KEEP, SEED = 0.4, 6  # CISI titles, use_m3 -> e5_small: the interval alone says "better"


def thin_qrels(folder, keep: float, seed: int) -> dict[str, dict[str, int]]:
    """Keep a seeded share of the judged pairs (in query id, item id order); rewrite the file."""
    path = folder / "qrels" / "test.tsv"
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    pairs = sorted(tuple(r.split("\t")) for r in rows if r.strip())
    rng = random.Random(seed)
    kept = [p for p in pairs if rng.random() < keep]
    path.write_text("\n".join([header, *("\t".join(p) for p in kept)]) + "\n", encoding="utf-8")
    qrels: dict[str, dict[str, int]] = {}
    for q, d, g in kept:
        qrels.setdefault(q, {})[d] = int(g)
    return qrels


@pytest.fixture(scope="module")
def sparse_run(tmp_path_factory, shared_cache):
    work = tmp_path_factory.mktemp("sparse")
    folder = unpack("cisi", work / "cisi40")
    qrels = thin_qrels(folder, KEEP, SEED)
    res = run_evalkit(
        "dataset=beir",
        f"dataset.path={folder}",
        "dataset.text_field=title",
        "models=[use_m3,e5_small]",
        f"cache.dir={shared_cache}",
        "tracking.experiment=sparse",
        "latency.probe=0",
        "compare.reindex=false",
        work=work,
    )
    return work, res, qrels


def test_sparse_judgments_make_the_primary_inconclusive_with_exit_4(sparse_run) -> None:
    work, res, qrels = sparse_run
    assert res.returncode == 4, res.stderr[-3000:]
    doc = json.loads((res.out_dir / "verdict.json").read_text())
    assert doc["verdict"] == "INCONCLUSIVE" and doc["quality_status"] == "inconclusive"
    [primary] = [q for q in doc["quality"] if q["family"] == "primary"]
    # the interval alone would call "better": it lies above 0
    assert primary["ci_low"] > 0 and primary["p"] < 0.05
    assert primary["note"].startswith("judgments too sparse to call")
    cand = doc["candidates"][0]
    cov = cand["coverage"]
    assert cov["sparse"] and max(cov["unjudged"].values()) > 0.5
    assert cov["judged_only"]["status"] == "inconclusive"
    undecided = {i["name"]: i for i in doc["undecided"]}
    assert "judgments too sparse" in undecided["primary_metric"]["why"]
    assert "judging_worklist.csv" in undecided["primary_metric"]["what_to_do"]
    # coverage: its own line, a follow-up, never "passed"
    assert "judgment_coverage" in {i["name"] for i in doc["follow_ups"]}
    assert "judgment_coverage" not in {i["name"] for i in doc["passed"]}
    out = " ".join(re.sub("[│┃]", " ", res.stdout).split())  # the table's cells, unwrapped
    assert "judgments too sparse to call" in out and "judgment_coverage" in out
    assert not doc["blockers"]


def test_coverage_metrics_in_mlflow_equal_pytrec_eval_and_scipy(sparse_run) -> None:
    work, res, qrels = sparse_run
    db = f"sqlite:///{work}/mlflow.db"
    children = child_runs(db, "sparse")
    scored = {q: j for q, j in qrels.items() if max(j.values()) > 0}
    per_query = {}
    for name in ("use_m3", "e5_small"):
        metrics = children[name].data.metrics
        run = {
            q: dict(items)
            for q, items in read_trec(res.out_dir / name / "runs" / f"{name}.trec").items()
        }
        ev = pytrec_eval.RelevanceEvaluator(scored, {"ndcg_cut_10"}, judged_docs_only_flag=True)
        theirs = {q: v["ndcg_cut_10"] for q, v in ev.evaluate(run).items()}
        per_query[name] = theirs
        assert metrics["ndcg_at_10_judged_only"] == pytest.approx(np.mean(list(theirs.values())))
        # unjudged@10 over the scored queries, from the run file
        top = {
            q: [d for d, _ in items[:10]]
            for q, items in read_trec(res.out_dir / name / "runs" / f"{name}.trec").items()
        }
        share = np.mean([np.mean([d not in scored[q] for d in top[q]]) for q in scored])
        assert metrics["unjudged_at_10"] == pytest.approx(share) and share > 0.5
    client = MlflowClient(db)
    exp = client.get_experiment_by_name("sparse")
    [parent] = [
        r
        for r in client.search_runs([exp.experiment_id])
        if "mlflow.parentRunId" not in r.data.tags
    ]
    m = parent.data.metrics
    d = np.array([per_query["e5_small"][q] - per_query["use_m3"][q] for q in sorted(scored)])
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert m["delta_ndcg_at_10_judged_only"] == pytest.approx(d.mean())
    assert m["ci_low_ndcg_at_10_judged_only"] == pytest.approx(low)
    assert m["ci_high_ndcg_at_10_judged_only"] == pytest.approx(high)
    assert m["p_ndcg_at_10_judged_only"] == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue)
    assert low <= -0.01 and high >= 0  # inconclusive, computed independently
    assert parent.data.tags["evalkit.verdict"] == "INCONCLUSIVE"
