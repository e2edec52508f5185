"""Query slices: frequency bands (with ties), length bands and categorical columns."""

from __future__ import annotations

import pytest

from evalkit.compare.gates import GateConfig, SliceConfig
from evalkit.compare.slices import (
    categorical_columns,
    frequency_bands,
    length_band_labels,
    length_bands,
    query_slices,
)
from evalkit.data.schema import Queries
from evalkit.errors import ConfigError, DataError


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
