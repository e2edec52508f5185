"""A team with a click log and no human judgments runs the whole evaluation from the CLI.

The fixture turns ADI into plain files: a catalog, a query table without judgments, and an
aggregated click log simulated (position-based model) over a BM25 ranking with ADI's human
judgments hidden from evalkit.  Two shapes: with impressions (click rate, COEC/CTR judgments)
and without (click share), where every output must name click share.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow import MlflowClient

from evalkit.data.beir import load_beir
from evalkit.data.click_simulation import ClickModel, simulate_clicks
from evalkit.retrieve.bm25 import bm25_ranking

from .cli import child_runs, run_evalkit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("clicks_only")
    adi = load_beir(shared_data / "adi")
    with open(d / "items.jsonl", "w", encoding="utf-8") as fh:
        for i, t in zip(adi.catalog.ids, adi.catalog.titles):
            fh.write(json.dumps({"item_id": i, "name": t}) + "\n")
    with open(d / "queries.jsonl", "w", encoding="utf-8") as fh:
        for q, t in zip(adi.queries.ids, adi.queries.texts):
            fh.write(json.dumps({"qid": q, "query": t}) + "\n")
    ranking = bm25_ranking(adi.catalog.ids, adi.catalog.titles, adi.queries.ids, adi.queries.texts)
    log = simulate_clicks(ranking, adi.judgments.qrels, model=ClickModel(), sessions=200, seed=1)
    with (
        open(d / "clicks.jsonl", "w", encoding="utf-8") as fh,
        open(d / "clicks_no_impressions.jsonl", "w", encoding="utf-8") as fh2,
    ):
        for j, (q, i) in enumerate(log.pairs()):
            row = {"query_id": q, "item_id": i, "clicks": int(log.clicks[j])}
            row["avg_position"] = float(log.mean_position[j])
            fh2.write(json.dumps(row) + "\n")
            row["impressions"] = int(log.impressions[j])
            fh.write(json.dumps(row) + "\n")
    assert np.sum(log.clicks) > 100
    return d


def _args(d, log_file, experiment):
    return (
        "dataset=tabular",
        "dataset.name=adi-clicks",
        f"dataset.catalog.path={d / 'items.jsonl'}",
        "dataset.catalog.id=item_id",
        "dataset.catalog.title=name",
        f"dataset.queries.path={d / 'queries.jsonl'}",
        "dataset.queries.id=qid",
        "dataset.queries.text=query",
        "dataset.judgments=null",
        "clicks=log",
        f"clicks.path={d / log_file}",
        "clicks.shape=aggregated",
        "models=[use_m3,e5_small]",
        f"tracking.experiment={experiment}",
    )


def test_click_log_only_runs_end_to_end(files, tmp_path, shared_cache):
    res = run_evalkit(
        f"cache.dir={shared_cache}", *_args(files, "clicks.jsonl", "clicks-only"), work=tmp_path
    )
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    runs = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "clicks-only")
    for name in ("use_m3", "e5_small"):
        m = runs[name].data.metrics
        assert m["queries_scored"] > 10
        assert 0.0 < m["ndcg_at_10"] <= 1.0
        assert -1.0 <= m["click_spearman"] <= 1.0
        assert m["click_spearman_ci_low"] <= m["click_spearman"] <= m["click_spearman_ci_high"]
        method = runs[name].data.params["dataset.judgment_method"]
        assert method in ("coec", "ctr")
        assert runs[name].data.params["click_measure"] == "click_rate"
    assert "delta_click_spearman" in runs["e5_small"].data.metrics
    verdict = json.loads((res.out_dir / "verdict.json").read_text())
    assert verdict["verdict"] in ("PASS", "WARN", "INCONCLUSIVE", "BLOCK")
    assert (res.out_dir / "click_scatter.png").stat().st_size > 1000


def test_aggregated_log_without_impressions_names_click_share(files, tmp_path, shared_cache):
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        *_args(files, "clicks_no_impressions.jsonl", "click-share"),
        work=tmp_path,
    )
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    assert "click share" in res.stdout
    runs = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "click-share")
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    for name in ("use_m3", "e5_small"):
        params = runs[name].data.params
        assert params["click_measure"] == "click_share"
        assert params["dataset.judgment_method"] == "click_share"
    parent = client.get_run(runs["e5_small"].data.tags["mlflow.parentRunId"])
    assert parent.data.params["click_measure"] == "click_share"
    assert parent.data.params["clicks_measure"] == "click_share"
    report = (res.out_dir / "report.md").read_text()
    assert "click share" in report.lower()
