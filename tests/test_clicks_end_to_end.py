"""Click logs end to end on Cranfield: only a click log (no human judgments) -> judgments ->
scores; an aggregated log without impressions -> click share named in every output."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytrec_eval
from PIL import Image
from scipy import stats

from evalkit.clicks.stage import click_report, load_clicks
from evalkit.data.click_simulation import simulate_clicks
from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.errors import ConfigError
from evalkit.pairs import pair_rows, pair_similarity
from evalkit.retrieve.bm25 import bm25_ranking
from evalkit.retrieve.run_file import rank_scores

from .testdata import read_jsonl, read_text


@pytest.fixture(scope="module")
def cranfield(shared_data):
    path = shared_data / "cranfield"
    corpus = read_jsonl(path / "corpus.jsonl.gz")
    queries = read_jsonl(path / "queries.jsonl.gz")
    qrels: dict[str, dict[str, int]] = {}
    for line in read_text(path / "qrels" / "test.tsv.gz").splitlines()[1:]:
        q, d, g = line.split()
        qrels.setdefault(q, {})[d] = int(g)
    catalog = Catalog([str(c["_id"]) for c in corpus], [c["title"] for c in corpus])
    qs = Queries([str(q["_id"]) for q in queries], [q["text"] for q in queries])
    # What a team without human judgments has: catalog, queries and (below) a click log.
    data = EvalData("cranfield-clicks-only", catalog, qs, judgments=None)
    production = bm25_ranking(catalog.ids, catalog.titles, qs.ids, qs.texts, k=10)
    log = simulate_clicks(production, qrels, sessions=60, seed=11)
    return data, qrels, production, log


def write_event_log(log, path: Path) -> Path:
    """Expand a log's per-position counts into one row per impression (clicked 0/1)."""
    p = log.positions
    n = p.impressions.astype(np.int64)
    pair = np.repeat(p.pair, n)
    first = np.repeat(np.cumsum(n) - n, n)
    clicked = (np.arange(n.sum()) - first) < np.repeat(p.clicks.astype(np.int64), n)
    q = np.asarray(log.query_ids, dtype=object)[pair]
    i = np.asarray(log.item_ids, dtype=object)[pair]
    pd.DataFrame(
        {"qid": q, "doc": i, "rank": np.repeat(p.position, n), "click": clicked.astype(int)}
    ).to_parquet(path)
    return path


def ndcg10(qrels, run) -> dict[str, float]:
    judged = {q: j for q, j in qrels.items() if any(g >= 1 for g in j.values()) and q in run}
    ev = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10"})
    return {q: v["ndcg_cut_10"] for q, v in ev.evaluate({q: run[q] for q in judged}).items()}


def test_only_a_click_log_gives_judgments_that_agree_with_human_ones(cranfield, tmp_path):
    data, qrels, production, log = cranfield
    path = write_event_log(log, tmp_path / "events.parquet")
    cfg = {
        "source": "log",
        "path": str(path),
        "shape": "event",
        "columns": {"query_id": "qid", "item_id": "doc", "position": "rank", "clicked": "click"},
        "judgments": {"use": "auto", "method": "auto"},
    }
    stage = load_clicks(cfg, data)
    assert stage.log.measure == "click_rate" and stage.new_queries == {}
    assert stage.log.pairs() == log.pairs() and np.array_equal(stage.log.clicks, log.clicks)
    judgments = stage.judgments  # no human judgments -> derived from clicks (auto)
    assert judgments is not None and judgments.method == "coec"
    assert stage.params()["clicks_judgment_method"] == "coec"
    run = rank_scores(production)
    human = ndcg10(qrels, run)
    clicks = ndcg10(judgments.qrels, run)
    common = sorted(set(human) & set(clicks))
    assert len(common) > 150
    tau = stats.kendalltau([human[q] for q in common], [clicks[q] for q in common]).statistic
    assert tau > 0.35


def bag_of_words(texts: list[str], dim: int = 512) -> np.ndarray:
    """Hashed bag-of-words vectors: a cheap lexical 'model version' for the test."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, t in enumerate(texts):
        for tok in re.findall(r"\w+", t.lower()):
            out[row, zlib.crc32(tok.encode()) % dim] += 1.0
    return out


def test_aggregated_log_without_impressions_names_click_share_everywhere(cranfield, tmp_path):
    data, _, _, log = cranfield
    agg = pd.DataFrame(
        {
            "query_id": log.query_ids,
            "item_id": log.item_ids,
            "clicks": log.clicks.astype(int),
            "avg_position": log.mean_position,
        }
    )
    agg["query_id"] = agg["query_id"].where(agg.index % 7 != 0, "new-" + agg["query_id"])
    agg["query"] = np.where(agg["query_id"].str.startswith("new-"), "text of a logged query", "")
    path = tmp_path / "agg.csv"
    agg.to_csv(path, index=False)

    stage = load_clicks({"source": "log", "path": str(path), "shape": "aggregated"}, data)
    clog = stage.log
    assert clog.impressions is None and clog.measure == "click_share"
    assert set(stage.new_queries) == {q for q in agg["query_id"] if q.startswith("new-")}
    assert stage.params()["clicks_measure"] == "click_share"
    assert stage.judgments is not None and stage.judgments.method == "click_share"
    assert stage.params()["clicks_judgment_method"] == "click_share"

    texts = dict(zip(data.queries.ids, data.queries.texts)) | stage.new_queries
    qids = sorted(texts)
    qrow, irow = pair_rows(clog, qids, data.catalog.ids)
    qv = bag_of_words([texts[q] for q in qids])
    iv = bag_of_words(data.catalog.titles)
    rng = np.random.default_rng(0)
    sims = {
        "random": pair_similarity(rng.normal(size=qv.shape), rng.normal(size=iv.shape), qrow, irow),
        "bow": pair_similarity(qv, iv, qrow, irow),
    }
    report = click_report(
        clog,
        clog.pairs(),
        sims,
        baseline="random",
        cfg={"correlation": {"n_boot": 200}},
        plot_path=tmp_path / "clicks.png",
    )
    assert report.measure == "click_share" and report.params()["click_measure"] == "click_share"
    for corr in report.correlations.values():
        assert corr.measure == "click_share"
        assert all(
            line.startswith("similarity vs click share:") for line in corr.summary().splitlines()
        )
    assert report.differences["bow"].measure == "click_share"
    m = report.metrics("bow")
    # Click share is normalised per query, so the within-query correlation is the telling one.
    assert m["click_spearman_within"] > 0.1 and m["delta_click_spearman_within_ci_low"] > 0
    assert "delta_click_spearman" not in report.metrics("random")
    png = Image.open(report.plot)
    assert "click share" in png.text["Description"] and "click share" in png.text["Title"]


def test_conf_files_drive_the_click_stage(cranfield, tmp_path):
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[1] / "conf" / "clicks"
    data, qrels, _, log = cranfield

    def section(cfg):  # what the run hands the click stage: the section as plain data
        return OmegaConf.to_container(cfg, resolve=True)

    assert load_clicks(section(OmegaConf.load(conf / "none.yaml")), data) is None

    cfg = OmegaConf.load(conf / "log.yaml")
    with pytest.raises(ConfigError, match="clicks.source=log needs clicks.path"):
        load_clicks(section(cfg), data)
    cfg.path = str(write_event_log(log, tmp_path / "events.parquet"))
    cfg.columns.query_id, cfg.columns.item_id = "qid", "doc"
    cfg.columns.position, cfg.columns.clicked = "rank", "click"
    stage = load_clicks(section(cfg), data)
    assert stage.judgments is not None and stage.judgments.method == "coec"

    judged = EvalData("cranfield", data.catalog, data.queries, Judgments(qrels))
    sim = load_clicks(section(OmegaConf.load(conf / "simulated.yaml")), judged)
    assert sim.log.simulated and sim.judgments is None  # use: never (no circular judgments)
    assert sim.params()["clicks_simulated"] is True
    assert len(sim.log) == 10 * len([q for q in judged.queries.ids if q in qrels])
