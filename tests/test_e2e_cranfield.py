"""End to end on Cranfield with both offline models, through the documented CLI.

What is checked:
- the documented overrides work exactly as written;
- the nDCG@10 and recall@100 evalkit logs to MLflow equal what pytrec_eval (trec_eval's C code)
  computes from the logged TREC run file and the qrels;
- MLflow layout: one parent run, one nested child per version, tag evalkit.model_version;
- a warm rerun makes zero embedding calls and reproduces every metric.

Cranfield is embedded into the run's ``shared_cache``, which test_e2e_verdict.py and
test_reindex_stage.py fill with the same vectors (Cranfield titles, use_m3 and e5_small): one
embedding per pytest run.  The cold run (a store of its own, embedded here) and its warm rerun are
on ADI: what they compare (the cached vectors give the numbers the embedded ones gave) does not
depend on the collection's size.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
import pytrec_eval
from mlflow import MlflowClient

from evalkit.retrieve.run_file import read_trec

from .cli import child_runs, run_evalkit

pytestmark = pytest.mark.slow
VERSIONS = ("use_m3", "e5_small")


def _qrels(folder: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with gzip.open(folder / "qrels" / "test.tsv.gz", "rt", encoding="utf-8", newline="") as fh:
        for row in list(csv.reader(fh, delimiter="\t"))[1:]:
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return {q: j for q, j in qrels.items() if any(g >= 1 for g in j.values())}


def _overrides(work: Path, experiment: str, *dataset: str) -> tuple[str, ...]:
    return (
        "dataset=beir",
        *dataset,
        "models=[use_m3,e5_small]",
        f"tracking.uri=sqlite:///{work}/mlflow.db",
        f"tracking.experiment={experiment}",
    )


@pytest.fixture(scope="module")
def cranfield_runs(tmp_path_factory, shared_data, shared_cache):
    work = tmp_path_factory.mktemp("cranfield")
    overrides = _overrides(
        work,
        "cranfield",
        f"dataset.path={shared_data / 'cranfield'}",
        # titles only: embedding Cranfield's full text (BEIR's title_text) with e5_small takes ~6 min
        "dataset.text_field=title",
    )
    res = run_evalkit(*overrides, f"cache.dir={shared_cache}", work=work)
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    return work, child_runs(f"sqlite:///{work}/mlflow.db", "cranfield")


@pytest.fixture(scope="module")
def cold_and_warm(tmp_path_factory, shared_data):
    """ADI embedded into a store of its own (cold), then evaluated again from it (warm)."""
    work = tmp_path_factory.mktemp("cold-warm")
    overrides = (
        *_overrides(work, "adi", f"dataset.path={shared_data / 'adi'}"),
        "latency.probe=0",  # the probe's requests are not what is compared here
    )
    cold = run_evalkit(*overrides, work=work, out_name="cold")  # cache.dir: work/cache
    assert cold.returncode in (0, 3, 4), cold.stderr[-3000:]
    cold_runs = child_runs(f"sqlite:///{work}/mlflow.db", "adi")
    warm = run_evalkit(*overrides, work=work, out_name="warm")
    assert warm.returncode == cold.returncode, warm.stderr[-3000:]
    return cold_runs, child_runs(f"sqlite:///{work}/mlflow.db", "adi")


@pytest.mark.parametrize("version", VERSIONS)
def test_logged_metrics_equal_pytrec_eval_on_logged_run_file(
    cranfield_runs, shared_data, version, tmp_path
):
    work, runs = cranfield_runs
    run = runs[version]
    client = MlflowClient(tracking_uri=f"sqlite:///{work}/mlflow.db")
    trec = Path(client.download_artifacts(run.info.run_id, f"runs/{version}.trec", str(tmp_path)))
    lines = trec.read_text(encoding="utf-8").splitlines()
    assert all(len(line.split()) == 6 and line.split()[1] == "Q0" for line in lines)

    qrels = _qrels(shared_data / "cranfield")
    ranked = {q: dict(items) for q, items in read_trec(trec).items()}
    assert len(ranked) == 225 and all(len(v) == 100 for v in ranked.values())
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_100"})
    per_query = evaluator.evaluate({q: ranked[q] for q in qrels})
    ndcg = sum(v["ndcg_cut_10"] for v in per_query.values()) / len(per_query)
    recall = sum(v["recall_100"] for v in per_query.values()) / len(per_query)

    logged = run.data.metrics
    assert logged["ndcg_at_10"] == pytest.approx(ndcg, abs=1e-9)
    assert logged["recall_at_100"] == pytest.approx(recall, abs=1e-9)
    assert logged["queries_scored"] == len(qrels)
    assert 0.05 < logged["ndcg_at_10"] < 0.9  # a real model on real data, not a degenerate ranking


def test_mlflow_layout(cranfield_runs):
    work, runs = cranfield_runs
    client = MlflowClient(tracking_uri=f"sqlite:///{work}/mlflow.db")
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs.values()}
    assert len(parents) == 1
    parent = client.get_run(parents.pop())
    assert parent.data.params["baseline"] == "use_m3"
    assert parent.data.params["dataset.name"] == "cranfield"
    for version, run in runs.items():
        assert run.data.tags["evalkit.model_version"] == version
        assert (
            run.data.params["dataset.fingerprint.dataset"]
            == parent.data.params["dataset.fingerprint.dataset"]
        )
        for metric in ("ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10", "map_at_100"):
            assert metric in run.data.metrics
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "per_query.csv", "runs"} <= artifacts


def test_warm_rerun_makes_zero_embedding_calls(cold_and_warm):
    cold, warm = cold_and_warm
    for version in VERSIONS:
        assert cold[version].info.run_id != warm[version].info.run_id
        assert cold[version].data.metrics["embed_requests"] > 0
        assert warm[version].data.metrics["embed_requests"] == 0
        for metric in ("ndcg_at_10", "recall_at_100", "mrr_at_10", "map_at_100"):
            assert warm[version].data.metrics[metric] == cold[version].data.metrics[metric]
