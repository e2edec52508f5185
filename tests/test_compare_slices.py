"""Query slices: frequency bands (with ties), length bands and categorical columns; slice calls
only with compare.min_slice_queries queries, intervals inside [-1, 1], honest wording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from evalkit.compare.calls import Quality
from evalkit.compare.gate_config import GateConfig, SliceConfig
from evalkit.compare.report import _slice_summary, checklist_lines, verdict_dict
from evalkit.compare.report.cells import slice_head, slice_rows
from evalkit.compare.slices import (
    categorical_columns,
    frequency_bands,
    length_band_labels,
    length_bands,
    query_slices,
)
from evalkit.compare.verdict import CompareSettings, clip_interval, compare_versions
from evalkit.data.schema import Catalog, EvalData, Queries
from evalkit.errors import ConfigError, DataError
from evalkit.results import VersionResult


def test_frequency_bands_by_cumulative_traffic_share_with_ties() -> None:
    # total 100; more-frequent traffic before each query: 40->0, 20->40, 20->40, 10->80, 5->90, 5->90
    freq = [20, 40, 5, 20, 10, 5]
    assert frequency_bands(freq).tolist() == ["head", "head", "tail", "head", "tail", "tail"]
    # ties share a band even when the tie straddles the cut-off
    assert frequency_bands([30, 30, 30, 10], head_share=0.5, torso_share=0.95).tolist() == [
        "head",
        "head",
        "head",
        "torso",
    ]
    assert frequency_bands([60, 25, 10, 5]).tolist() == ["head", "torso", "tail", "tail"]
    assert frequency_bands([0, 0]).tolist() == ["tail", "tail"]
    with pytest.raises(DataError, match="row 2, field 'frequency'"):
        frequency_bands([1.0, -3.0])


def test_length_bands_default_and_configured() -> None:
    texts = ["shoes", "red shoes", "red  running shoes", "red running shoes size 9", ""]
    assert length_bands(texts).tolist() == ["1", "2-3", "2-3", "4+", "1"]
    assert length_band_labels((2, 5)) == ["1-2", "3-5", "6+"]
    assert length_bands(texts, (2, 4)).tolist() == ["1-2", "1-2", "3-4", "5+", "1-2"]


def test_categorical_columns_auto_and_explicit() -> None:
    q = Queries(
        ids=["a", "b", "c", "d"],
        texts=["x"] * 4,
        language=["en", "de", "en", None],
        attributes={
            "market": ["us", "us", "uk", "uk"],
            "price": [1.5, 2.5, 3.5, 4.5],  # floats: not categorical
            "session": ["s1", "s2", "s3", "s4"],  # 4 levels > max_levels=3
            "constant": ["x", "x", "x", "x"],  # one level: no slices
        },
    )
    cols = categorical_columns(q, SliceConfig(max_levels=3))
    assert list(cols) == ["language", "market"]
    assert cols["language"].tolist() == ["en", "de", "en", "(missing)"]
    explicit = categorical_columns(q, SliceConfig(columns=("session",)))
    assert list(explicit) == ["session"]
    with pytest.raises(ConfigError, match="gates.slices.columns names nope"):
        categorical_columns(q, SliceConfig(columns=("nope",)))


def test_query_slices_from_config() -> None:
    q = Queries(
        ids=["a", "b", "c"],
        texts=["one", "two words", "three more words here"],
        language=["en", "de", "en"],
        frequency=[70.0, 20.0, 10.0],
    )
    cfg = GateConfig.from_mapping({"slices": {"frequency_bands": {"head": 0.6, "torso": 0.95}}})
    got = {s.label: s.query_ids for s in query_slices(q, cfg.slices)}
    assert got == {
        "language=de": ["b"],
        "language=en": ["a", "c"],
        "frequency=head": ["a"],
        "frequency=torso": ["b", "c"],
        "length=1": ["a"],
        "length=2-3": ["b"],
        "length=4+": ["c"],
    }
    assert query_slices(q, SliceConfig(enabled=False)) == []
    with pytest.raises(ConfigError, match="head=0.9, torso=0.5"):
        GateConfig.from_mapping({"slices": {"frequency_bands": {"head": 0.9, "torso": 0.5}}})


# ------------------------------------------------------------------------------------------
# Slice calls (issue 15, section 6): a call only with compare.min_slice_queries queries, CIs
# inside [-1, 1], and "too few queries" only where it is true.


def _sliced_versions(sizes: dict[str, int], deltas: dict[str, list[float]]):
    """A baseline and a candidate whose per-query ndcg@10 differs by ``deltas[group]`` (cycled)
    on the queries of each ``group`` column level."""
    ids, groups, base, cand = [], [], {}, {}
    for g, n in sizes.items():
        for i in range(n):
            q = f"{g}-{i:03d}"
            d = deltas[g][i % len(deltas[g])]
            ids.append(q)
            groups.append(g)
            base[q] = 0.5 - d / 2
            cand[q] = 0.5 + d / 2
    data = EvalData(
        name="sliced",
        catalog=Catalog(ids=["d1"], titles=["d1"]),
        queries=Queries(ids=ids, texts=["two words"] * len(ids), attributes={"group": groups}),
        judgments=None,
        fingerprint={"dataset": "x"},
    )
    a = VersionResult("a", {}, {}, {"ndcg@10": base}, None, fingerprint={"dataset": "x"})
    b = VersionResult("b", {}, {}, {"ndcg@10": cand}, None, fingerprint={"dataset": "x"})
    return data, a, b


SIZES = {"tiny": 3, "nine": 9, "ten": 10, "mid": 49, "big": 70}
DELTAS = {
    "tiny": [0.9, -0.8, 0.95],  # 3 queries: a raw t-interval far outside [-1, 1]
    "nine": [0.2, 0.25, 0.3],  # clearly better, but 9 < 10 queries: not called
    "ten": [0.2, 0.25, 0.3],  # the same with 10 queries: called better
    "mid": [0.3, -0.3],  # mean 0, wide: inconclusive on 49 queries
    "big": [0.3, -0.3],  # and on 70
}


def _slices(settings=None):
    data, a, b = _sliced_versions(SIZES, DELTAS)
    v = compare_versions(a, [b], data=data, checks=[], settings=settings)
    return (
        v,
        v.candidates[0],
        {s.value: s for s in v.candidates[0].slices if s.dimension == "group"},
    )


def test_min_slice_queries_is_one_compare_key() -> None:
    assert CompareSettings().min_slice_queries == 10
    assert CompareSettings.from_mapping({"min_slice_queries": 30}).min_slice_queries == 30
    with pytest.raises(ConfigError, match="compare.min_slice_queries=1"):
        CompareSettings.from_mapping({"min_slice_queries": 1})
    with pytest.raises(ConfigError, match="now set by compare.min_slice_queries"):
        GateConfig.from_mapping({"slices": {"min_queries": 30}})
    conf = Path(__file__).resolve().parents[1] / "conf"
    assert yaml.safe_load((conf / "config.yaml").read_text())["compare"]["min_slice_queries"] == 10
    for preset in (conf / "gates").glob("*.yaml"):
        assert "min_queries" not in (yaml.safe_load(preset.read_text()).get("slices") or {})
        GateConfig.from_mapping(
            {k: v for k, v in yaml.safe_load(preset.read_text()).items() if k != "defaults"}
        )


def test_a_call_only_with_at_least_min_slice_queries() -> None:
    v, c, s = _slices()
    assert {k: x.n_queries for k, x in s.items()} == SIZES
    assert not s["tiny"].evaluated and not s["nine"].evaluated
    assert s["ten"].evaluated and s["ten"].status == Quality.BETTER
    # 9 queries with the same clear gain get no call, and say why.
    assert s["nine"].status == Quality.INCONCLUSIVE
    assert all(q.status == Quality.INCONCLUSIVE for q in s["nine"].quality)
    doc = {x["slice"]: x for x in verdict_dict(v)["candidates"][0]["slices"]}
    assert doc["group=nine"]["status"] == "not_called" and doc["group=nine"]["min_queries"] == 10
    assert {q["status"] for q in doc["group=nine"]["quality"]} == {"not_called"}
    assert doc["group=ten"]["status"] == "better"
    # Raising the key makes the 10-query slice too small as well.
    _, _, s30 = _slices({"min_slice_queries": 30})
    assert not s30["ten"].evaluated and s30["mid"].evaluated


def test_slice_intervals_stay_inside_the_difference_range() -> None:
    _, c, s = _slices()
    # Bonferroni over the called slices x metrics only: the groups ten, mid, big plus the
    # length slice (all 154 queries).
    called = [x for x in c.slices if x.evaluated]
    assert len(called) == 4
    level = 1 - 0.05 / (len(called) * 1)
    for name in SIZES:
        x = s[name]
        d = np.array([DELTAS[name][i % len(DELTAS[name])] for i in range(SIZES[name])], dtype=float)
        lo, hi = stats.t.interval(level, d.size - 1, loc=d.mean(), scale=stats.sem(d))
        (q,) = x.quality
        assert (q.ci_low, q.ci_high) == pytest.approx((max(lo, -1.0), min(hi, 1.0)))
        assert -1.0 <= q.ci_low <= q.ci_high <= 1.0
        assert x.ci_clipped == (lo < -1.0 or hi > 1.0)
        assert (q.family, q.n_queries, q.confidence) == ("slice", SIZES[name], level)
    assert s["tiny"].ci_clipped  # the issue's [-1.79, +2.70] on 3 queries
    rows = {r[0]: r for r in slice_rows(c)}
    assert rows["group=tiny"][3] == "[-1.0000, +1.0000] (clipped)"
    assert rows["group=mid"][3].startswith("[-0.") and "clipped" not in rows["group=mid"][3]
    assert "within [-1, 1]" in slice_head(c)[3]
    assert clip_interval(-1.79, 2.70) == (-1.0, 1.0, True)


def test_too_few_queries_only_where_it_is_true() -> None:
    v, c, s = _slices()
    assert s["mid"].evaluated and s["mid"].status == Quality.INCONCLUSIVE
    assert s["big"].evaluated and s["big"].status == Quality.INCONCLUSIVE
    summary = _slice_summary(c)
    # mid (49 queries), big (70) and length=2-3 (all 154): called, and inconclusive.
    assert s["mid"].n_queries == 49 and s["big"].n_queries == 70
    assert "inconclusive (CI spans both 0 and -0.01): 3 slices" in summary
    assert "not called (fewer than 10 queries, too few for a call): 2 slices" in summary
    assert summary.count("too few") == 1
    rows = {r[0]: r[-1] for r in slice_rows(c)}
    assert rows["group=mid"] == rows["group=big"] == "inconclusive"
    assert rows["group=tiny"] == rows["group=nine"] == "not called (< 10 queries)"
    assert rows["group=ten"] == "better"
    text = "\n".join(checklist_lines(v))
    assert "too few queries for a call): 2" not in text and "inconclusive (CI spans both" in text
