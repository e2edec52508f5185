"""Queries in one letter case against documents in another: the warning and its call in load."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from omegaconf import OmegaConf

from evalkit.data.case import (
    MIN_TEXTS,
    OTHER_SHARE,
    UPPER_SHARE,
    case_mismatch_warning,
    upper_share,
)
from evalkit.run.load import load_data

TOPICS = [
    "MEASUREMENT OF DIELECTRIC CONSTANT OF LIQUIDS BY THE USE OF MICROWAVE TECHNIQUES",
    "MATHEMATICAL ANALYSIS AND DESIGN DETAILS OF WAVEGUIDE FED MICROWAVE RADIATIONS",
    "USE OF DIGITAL COMPUTERS IN THE DESIGN OF BAND PASS FILTERS HAVING GIVEN PHASE",
    "SYSTEMS OF DATA CODING FOR INFORMATION TRANSFER",
    "THE USE OF 2-D ELECTRON GAS IN SEMICONDUCTOR DEVICES",
]
TITLES = [
    "Compact memories have flexible capacities",
    "Electronic analogue computer for solving systems of linear equations",
    "The dielectric constant of liquids measured at 3 cm wavelength",
    "A microwave radiator fed by a waveguide",
    "Band-pass filters with a given phase response",
]


def test_upper_case_queries_against_mixed_case_titles_warn():
    queries = TOPICS * 4
    text = case_mismatch_warning(queries, TITLES * 4, versions=["use_m3", "e5_small"])
    assert text is not None
    assert text.startswith("queries are upper-case (100% of 20 queries with letters)")
    assert "catalog texts are not (0% of 20)" in text
    assert "model versions use_m3, e5_small may be case-sensitive" in text
    assert "lower-case the queries" in text


def test_upper_case_catalog_against_normal_queries_warns():
    queries = [t.lower() for t in TOPICS] * 4
    text = case_mismatch_warning(queries, [t.upper() for t in TITLES] * 4, versions=["bow"])
    assert text is not None
    assert text.startswith("catalog texts are upper-case (100% of 20 catalog texts with letters)")
    assert "queries are not (0% of 20)" in text
    assert "model version bow may be case-sensitive" in text
    assert "lower-case the catalog texts" in text


def test_normal_data_and_matching_case_do_not_warn():
    lower = [t.lower() for t in TOPICS] * 4
    assert case_mismatch_warning(lower, TITLES * 4) is None  # lower vs mixed
    assert case_mismatch_warning(TITLES * 4, TITLES * 4) is None  # mixed vs mixed
    # Both sides upper-case: the case matches.
    assert case_mismatch_warning(TOPICS * 4, [t.upper() for t in TITLES] * 4) is None
    # Acronyms and digits among normal queries do not make them "upper-case".
    assert case_mismatch_warning(["NASA", "DNA repair", "42", "red shoes"] * 5, TITLES * 4) is None


def test_thresholds_at_their_boundaries():
    def mixed(n_upper: int, n: int = 20) -> list[str]:
        return [TOPICS[0]] * n_upper + [TITLES[0]] * (n - n_upper)

    # 18 of 20 upper = 0.9 >= UPPER_SHARE: warns; 17 of 20 = 0.85: does not.
    assert UPPER_SHARE == 0.9 and OTHER_SHARE == 0.5
    assert case_mismatch_warning(mixed(18), mixed(9)) is not None  # other side 0.45 < 0.5
    assert case_mismatch_warning(mixed(17), mixed(0)) is None
    assert case_mismatch_warning(mixed(20), mixed(10)) is None  # other side 0.5: not "normal"


def test_too_few_texts_with_letters_are_not_judged():
    few = TOPICS[:1] * (MIN_TEXTS - 1) + ["123", "", "--"]
    assert upper_share(few) == (1.0, MIN_TEXTS - 1)
    assert case_mismatch_warning(few, TITLES * 4) is None
    share, n = upper_share(["", "42", "--"])
    assert n == 0 and np.isnan(share)
    assert np.isnan(upper_share([])[0])


def test_large_sides_are_sampled_with_a_seed():
    rng = np.random.default_rng(1)
    texts = [TOPICS[0] if u else TITLES[0] for u in rng.random(100_000) < 0.3]
    share, n = upper_share(texts, sample=2_000, seed=3)
    assert n == 2_000 and abs(share - 0.3) < 0.05
    assert upper_share(texts, sample=2_000, seed=3) == (share, n)  # the same texts every run


def _tabular_files(folder):
    """Mixed-case titles, upper-case topics and their judgments as JSON-lines files."""
    items = folder / "items.jsonl"
    items.write_text(
        "\n".join(json.dumps({"id": f"d{i}", "title": t}) for i, t in enumerate(TITLES * 4))
    )
    queries = folder / "queries.jsonl"
    queries.write_text(
        "\n".join(json.dumps({"id": f"q{i}", "text": t}) for i, t in enumerate(TOPICS * 3))
    )
    judgments = folder / "qrels.jsonl"
    judgments.write_text(
        "\n".join(
            json.dumps({"query_id": f"q{i}", "item_id": f"d{i % 5}", "grade": 1}) for i in range(15)
        )
    )
    return items, queries, judgments


def test_load_data_logs_the_warning_once(tmp_path, caplog):
    items, queries, judgments = _tabular_files(tmp_path)
    cfg = OmegaConf.create(
        {
            "models": {"use_m3": {}, "e5_small": {}},
            "dataset": {
                "_target_": "evalkit.data.tabular.load_tabular",
                "catalog": {"path": str(items)},
                "queries": {"path": str(queries)},
                "judgments": {"path": str(judgments)},
            },
        }
    )
    with caplog.at_level(logging.WARNING, logger="evalkit.run.load"):
        load_data(cfg, None)
    warned = [r.getMessage() for r in caplog.records if r.name == "evalkit.run.load"]
    assert len(warned) == 1
    assert f"queries {queries}" in warned[0] and "queries are upper-case" in warned[0]
    assert "model versions use_m3, e5_small" in warned[0]
    caplog.clear()
    lower = tmp_path / "lower.jsonl"
    lower.write_text(
        "\n".join(json.dumps({"id": f"q{i}", "text": t.lower()}) for i, t in enumerate(TOPICS * 3))
    )
    cfg.dataset.queries.path = str(lower)
    with caplog.at_level(logging.WARNING, logger="evalkit.run.load"):
        load_data(cfg, None)
    assert not [r for r in caplog.records if r.name == "evalkit.run.load"]


def test_dataset_lowercase_option_lower_cases_and_refingerprints(tmp_path, caplog):
    """dataset.lowercase=queries (the warning's fix): the query texts are lower-cased after any
    loader, the warning is gone, the fingerprint follows the texts; a bad value is one line."""
    from evalkit.errors import ConfigError

    items, queries, judgments = _tabular_files(tmp_path)
    dataset = {
        "_target_": "evalkit.data.tabular.load_tabular",
        "catalog": {"path": str(items)},
        "queries": {"path": str(queries)},
        "judgments": {"path": str(judgments)},
    }
    plain, _ = load_data(OmegaConf.create({"models": {}, "dataset": dataset}), None)
    cfg = OmegaConf.create({"models": {}, "dataset": {**dataset, "lowercase": "queries"}})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="evalkit.run.load"):
        data, _ = load_data(cfg, None)
    assert not [r for r in caplog.records if r.name == "evalkit.run.load"]
    assert data.queries.texts == [t.lower() for t in plain.queries.texts]
    assert data.catalog.titles == plain.catalog.titles
    assert data.fingerprint["queries"] != plain.fingerprint["queries"]
    assert data.fingerprint["catalog"] == plain.fingerprint["catalog"]
    assert data.fingerprint["judgments"] == plain.fingerprint["judgments"]
    assert data.fingerprint["dataset"] != plain.fingerprint["dataset"]
    both, _ = load_data(
        OmegaConf.create({"models": {}, "dataset": {**dataset, "lowercase": "both"}}), None
    )
    assert both.catalog.titles == [t.lower() for t in plain.catalog.titles]
    with pytest.raises(ConfigError, match=r"dataset.lowercase='upper' \(expected one of none"):
        load_data(
            OmegaConf.create({"models": {}, "dataset": {**dataset, "lowercase": "upper"}}), None
        )
