"""Judgments from clicks: COEC on a hand-worked example, CTR / click-share grades, filters,
click-share cut-offs derived from the log, the grade histogram."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from evalkit.clicks.ingest import load_click_log
from evalkit.clicks.judgments import (
    DEFAULT_THRESHOLDS,
    coec_scores,
    derived_thresholds,
    grades_from_values,
    judgments_from_clicks,
    position_ctr,
)
from evalkit.clicks.stage import ClickStage, judge_clicks
from evalkit.data.click_log import ClickLog
from evalkit.errors import ConfigError
from evalkit.metrics.judged_only import condensed, judged_mask
from evalkit.retrieve.ranking import Ranking


def worked_example_log(tmp_path) -> ClickLog:
    """The module docstring's example, written as an event-level log (one row per impression).

    q1/d1: position 1 x3 (2 clicks), position 2 x1 (0); q1/d2: position 1 x1 (1 click),
    position 2 x3 (1 click); q2/d1: position 1 x4 (1 click).
    """
    spec = [
        ("q1", "d1", 1, [1, 1, 0]),
        ("q1", "d1", 2, [0]),
        ("q1", "d2", 1, [1]),
        ("q1", "d2", 2, [1, 0, 0]),
        ("q2", "d1", 1, [1, 0, 0, 0]),
    ]
    rows = [
        {"query_id": q, "item_id": d, "position": p, "clicked": c}
        for q, d, p, clicks in spec
        for c in clicks
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    log, _ = load_click_log(path, shape="event", catalog_ids=["d1", "d2"], query_ids=["q1", "q2"])
    return log


def test_coec_hand_worked_example(tmp_path):
    log = worked_example_log(tmp_path)
    # ctr[1] = (2 + 1 + 1) / (3 + 1 + 4) = 0.5 ; ctr[2] = (0 + 1) / (1 + 3) = 0.25
    np.testing.assert_allclose(position_ctr(log), [0.5, 0.25])
    s = coec_scores(log)
    # expected clicks: q1/d1 3*.5 + 1*.25 = 1.75 ; q1/d2 1*.5 + 3*.25 = 1.25 ; q2/d1 4*.5 = 2
    np.testing.assert_allclose(s.expected, [1.75, 1.25, 2.0])
    np.testing.assert_allclose(s.values, [2 / 1.75, 2 / 1.25, 1 / 2.0])
    j = judgments_from_clicks(log, "coec", thresholds=[0.5, 1.0, 1.5])
    assert j.method == "coec"
    assert j.qrels == {"q1": {"d1": 2, "d2": 3}, "q2": {"d1": 1}}


def test_coec_max_rank_ignores_lower_positions(tmp_path):
    log = worked_example_log(tmp_path)
    s = coec_scores(log, max_rank=1)
    np.testing.assert_allclose(s.position_ctr, [0.5])
    # only position-1 clicks and impressions: q1/d1 2/(3*.5), q1/d2 1/(1*.5), q2/d1 1/(4*.5)
    np.testing.assert_allclose(s.values, [2 / 1.5, 1 / 0.5, 1 / 2.0])


def test_coec_from_aggregated_log_uses_rounded_mean_position():
    log = ClickLog(
        ["q1", "q1", "q2"],
        ["a", "b", "a"],
        clicks=np.array([6.0, 1.0, 2.0]),
        impressions=np.array([10.0, 10.0, 10.0]),
        mean_position=np.array([1.2, 2.4, 1.0]),
    )
    # position 1: (6 + 2) / 20 = 0.4 ; position 2: 1 / 10 = 0.1
    np.testing.assert_allclose(position_ctr(log), [0.4, 0.1])
    np.testing.assert_allclose(coec_scores(log).values, [6 / 4, 1 / 1, 2 / 4])


def test_ctr_and_click_share_grades_and_minimum_filters():
    log = ClickLog(
        ["q1", "q1", "q1", "q2"],
        ["a", "b", "c", "a"],
        clicks=np.array([5.0, 1.0, 0.0, 1.0]),
        impressions=np.array([10.0, 10.0, 2.0, 10.0]),
    )
    j = judgments_from_clicks(log, "ctr", thresholds=[0.05, 0.2, 0.4], min_impressions=5)
    assert j.qrels == {"q1": {"a": 3, "b": 1}, "q2": {"a": 1}}  # c: 2 impressions < 5
    share = ClickLog(log.query_ids, log.item_ids, clicks=log.clicks)
    assert share.measure == "click_share"
    j = judgments_from_clicks(share, "click_share", thresholds=[0.1, 0.5], min_query_clicks=2)
    # q1 shares: 5/6, 1/6, 0 ; q2 has 1 click < 2 -> unjudged
    assert j.qrels == {"q1": {"a": 2, "b": 1, "c": 0}} and j.method == "click_share"


def test_grades_from_values_and_bad_thresholds():
    assert grades_from_values(np.array([0.0, 1.0, 1.5, 2.0]), [1.0, 2.0]).tolist() == [0, 1, 1, 2]
    for bad in ([], [2.0, 1.0], [1.0, 1.0], [float("nan")]):
        with pytest.raises(ConfigError, match="strictly ascending"):
            grades_from_values(np.array([1.0]), bad)


def test_methods_a_log_cannot_support_are_config_errors():
    share = ClickLog(["q"], ["a"], clicks=np.array([1.0]), source="agg.csv")
    with pytest.raises(ConfigError, match="needs impressions, but click log agg.csv has none"):
        judgments_from_clicks(share, "coec")
    with pytest.raises(ConfigError, match="needs impressions"):
        judgments_from_clicks(share, "ctr")
    no_pos = ClickLog(["q"], ["a"], clicks=np.array([1.0]), impressions=np.array([2.0]))
    with pytest.raises(ConfigError, match="coec needs positions"):
        judgments_from_clicks(no_pos, "coec")
    with pytest.raises(ConfigError, match="method='dwell' is unknown"):
        judgments_from_clicks(no_pos, "dwell")


def test_auto_method_picks_what_the_log_supports(tmp_path):
    assert judge_clicks(worked_example_log(tmp_path), {"method": "auto"}).method == "coec"
    no_pos = ClickLog(["q"], ["a"], clicks=np.array([1.0]), impressions=np.array([2.0]))
    assert judge_clicks(no_pos).method == "ctr"
    share = ClickLog(["q"], ["a"], clicks=np.array([1.0]))
    assert judge_clicks(share, {"thresholds": {"click_share": [0.5]}}).qrels == {"q": {"a": 1}}


def test_condensed_ranking_drops_unjudged_items():
    r = Ranking(
        ["q1", "q2"],
        np.array([[0, 1, 2], [2, -1, -1]]),
        np.array([[0.9, 0.8, 0.7], [0.5, 0, 0]], dtype=np.float32),
        ["a", "b", "c"],
    )
    qrels = {"q1": {"c": 2, "b": 0}, "q2": {"a": 1}}
    assert judged_mask(r, qrels).tolist() == [[False, True, True], [False, False, False]]
    c = condensed(r, qrels)
    assert c.top("q1") == ["b", "c"] and c.top("q2") == []
    assert c.top_scores("q1") == pytest.approx([0.8, 0.7])


def skewed_share_log(seed: int = 0) -> ClickLog:
    """An aggregated click-share log like a real one: most queries spread their clicks over
    many items (Zipf-like click counts, shares far below 0.05), a few have one clicked item, and
    some pairs were shown but never clicked (0 clicks)."""
    rng = np.random.default_rng(seed)
    q, d, c = [], [], []
    for i in range(300):
        n_items = int(rng.choice([1, 2, 5, 40, 120], p=[0.1, 0.1, 0.2, 0.3, 0.3]))
        clicks = np.floor(50 / np.arange(1, n_items + 1) ** 1.1 * rng.uniform(0.5, 2, n_items))
        clicks = np.maximum(clicks, 1)
        clicks[rng.random(n_items) < 0.1] = 0  # shown, never clicked
        if clicks.sum() == 0:
            clicks[0] = 1
        q += [f"q{i:03d}"] * n_items
        d += [f"d{j:03d}" for j in range(n_items)]
        c += clicks.tolist()
    return ClickLog(q, d, clicks=np.array(c), source="agg.csv")


def test_click_share_default_cut_offs_grade_every_clicked_pair_and_spread_them(caplog):
    log = skewed_share_log()
    share = np.nan_to_num(log.rate())
    clicked = log.clicks > 0
    # The fixed cut-offs fail on such a log: most clicked pairs fall below 0.05.
    old = grades_from_values(share, DEFAULT_THRESHOLDS["click_share"])
    assert (old[clicked] == 0).mean() > 0.5
    with caplog.at_level(logging.INFO, logger="evalkit.clicks.judgments"):
        j = judgments_from_clicks(log, "click_share")
    assert j.thresholds_from == "derived" and len(j.thresholds) == 3
    assert j.thresholds[0] == share[clicked].min()
    got = np.array([j.qrels[q][d] for q, d in log.pairs()])
    assert (got[clicked] >= 1).all() and (got[~clicked] == 0).all()
    # Grades 1-3 each hold about a third of the clicked pairs.
    per_grade = np.bincount(got[clicked], minlength=4)[1:] / clicked.sum()
    assert per_grade.min() > 0.25 and per_grade.max() < 0.42
    # The histogram is what the qrels hold; logged with the cut-offs, no warning.
    assert j.grade_counts == tuple(np.bincount(got, minlength=4).tolist())
    assert j.clicked == int(clicked.sum()) and j.clicked_grade_0 == 0
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(j.histogram() in m and j.cutoffs() in m and "agg.csv" in m for m in info)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_explicit_thresholds_are_kept_and_a_mostly_zero_grading_is_warned(caplog):
    log = skewed_share_log()
    share = np.nan_to_num(log.rate())
    with caplog.at_level(logging.WARNING, logger="evalkit.clicks.judgments"):
        j = judge_clicks(log, {"thresholds": [0.05, 0.2, 0.4]})
    assert j.thresholds == (0.05, 0.2, 0.4) and j.thresholds_from == "config"
    expected = grades_from_values(share, [0.05, 0.2, 0.4])
    assert [j.qrels[q][d] for q, d in log.pairs()] == expected.tolist()
    zero = int(((expected == 0) & (log.clicks > 0)).sum())
    assert j.clicked_grade_0 == zero
    (warning,) = [r.getMessage() for r in caplog.records]
    assert f"grade {zero:,} of {int((log.clicks > 0).sum()):,} clicked pairs 0" in warning
    assert "agg.csv" in warning and "unset clicks.judgments.thresholds" in warning
    # A per-method mapping without this method's entry is not set: derived.
    assert judge_clicks(log, {"thresholds": {"ctr": [0.1]}}).thresholds_from == "derived"


def test_derived_cut_offs_with_ties_and_without_clicks():
    assert derived_thresholds(np.array([0.0, 0.0])) == ()
    assert derived_thresholds(np.array([0.25] * 4)) == (0.25,)
    assert derived_thresholds(np.array([0.5, 0.5, 0.5, 0.5, 1.0])) == (0.5, 1.0)
    no_clicks = ClickLog(["q", "q"], ["a", "b"], clicks=np.zeros(2))
    j = judgments_from_clicks(no_clicks, "click_share", min_query_clicks=0)
    # A query without clicks has no shares: nothing judged, nothing to derive cut-offs from.
    assert j.thresholds_from == "default" and j.thresholds == DEFAULT_THRESHOLDS["click_share"]
    assert j.qrels == {} and j.grade_counts == (0, 0, 0, 0) and j.unjudged == 2


def test_ctr_and_coec_keep_their_fixed_defaults(tmp_path):
    coec = judgments_from_clicks(worked_example_log(tmp_path), "coec")
    assert coec.thresholds == DEFAULT_THRESHOLDS["coec"] and coec.thresholds_from == "default"
    log = ClickLog(
        ["q"] * 3, ["a", "b", "c"], clicks=np.array([1.0, 3, 0]), impressions=np.full(3, 10.0)
    )
    ctr = judgments_from_clicks(log, "ctr")
    assert ctr.thresholds == DEFAULT_THRESHOLDS["ctr"] and ctr.qrels == {
        "q": {"a": 1, "b": 3, "c": 0}
    }
    assert ctr.grade_counts == (1, 1, 0, 1)


def test_click_stage_params_carry_the_cut_offs_and_the_histogram():
    log = skewed_share_log()
    stage = ClickStage(log, judgments=judge_clicks(log))
    p = stage.params()
    j = stage.judgments
    assert p["clicks_judgment_method"] == "click_share"
    assert p["clicks_judgment_thresholds"] == j.cutoffs()
    assert p["clicks_judgment_thresholds_from"] == "derived"
    assert [p[f"clicks_judgment_grade_{g}"] for g in range(4)] == list(j.grade_counts)
    assert p["clicks_judgment_clicked_grade_0"] == 0
    assert sum(j.grade_counts) == len(log)
