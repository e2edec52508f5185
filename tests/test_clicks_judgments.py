"""Judgments from clicks: COEC on a hand-worked example, CTR / click-share grades, filters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evalkit.clicks.ingest import load_click_log
from evalkit.clicks.judgments import (
    coec_scores,
    condensed_ranking,
    grades_from_values,
    judged_mask,
    judgments_from_clicks,
    position_ctr,
)
from evalkit.clicks.stage import judge_clicks
from evalkit.data.click_log import ClickLog
from evalkit.errors import ConfigError
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
    c = condensed_ranking(r, qrels)
    assert c.top("q1") == ["b", "c"] and c.top("q2") == []
    assert c.top_scores("q1") == pytest.approx([0.8, 0.7])
