"""Endpoint checks against faults a real server cannot be made to produce.

The fault server (tests/fault_server.py, 127.0.0.1, free port) answers like an OpenAI-compatible
endpoint with deterministic random unit vectors, and misbehaves on demand: NaN / inf / zero
vectors, a wrong dimension, unnormalised or noisy vectors, batch-dependent vectors, HTTP 500,
a length limit (400 naming it), a crash beyond a length, silent truncation.  Each test asserts
that the corresponding check FAILs with the right observation, and that healthy behaviour PASSes.
The documented command ``evalkit task=check`` runs end to end against it (exit code 3, one
MLflow run per version with ``checks.json``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from evalkit.checks.result import FIELDS, Check, Status
from evalkit.checks.run_checks import run_checks
from evalkit.embed import OpenAIEmbedder
from evalkit.errors import EndpointError

from .cli import REPO, run_evalkit
from .fault_server import FaultServer

DIM = 16
FAST_LONG = {"start_words": 32, "max_words": 512, "chunk_words": 32, "chunks": 3}


def version(server: FaultServer, **kw) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        "faulty", base_url=server.base_url, model="fault-model", max_retries=0, timeout_s=10, **kw
    )


def by_name(checks: list[Check]) -> dict[str, Check]:
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), names
    return {c.name: c for c in checks}


def run(server: FaultServer, cfg: dict, **kw) -> dict[str, Check]:
    return by_name(run_checks(version(server, **kw), cfg))


@pytest.fixture
def server():
    srv = FaultServer(dim=DIM).start()
    yield srv
    srv.stop()


def test_healthy_fault_server_passes_sanity_but_has_no_semantics(server):
    got = run(
        server, {"sections": ["sanity"], "sanity": {"dimensions": [8], "expected_dimension": DIM}}
    )
    for name in (
        "dimensions.native",
        "dimensions.honoured.8",
        "vectors.finite",
        "vectors.nonzero",
        "vectors.norms",
        "determinism",
        "batch_invariance",
        "inputs.mixed_script",
        "inputs.punctuation",
    ):
        assert got[name].status is Status.PASS, got[name]
    # It truncates `dimensions` without re-normalising (like infinity-emb): reported, not failed.
    honoured = got["dimensions.honoured.8"]
    assert honoured.observed["dimensions"] == 8 and honoured.observed["prefix_cosine"] > 0.9999
    assert "not re-normalised" in honoured.reason
    # Random vectors: translations are no closer than unrelated sentences.
    assert got["multilingual"].status in (Status.FAIL, Status.WARN)
    assert abs(got["multilingual"].observed["margin"]) < 0.1


@pytest.mark.parametrize(
    "fault, name, observed, also",
    [
        # The first row of every answer is broken: the probe's first text, and each text sent
        # alone in the batch-invariance check (so that check fails too).
        (
            "nan",
            "vectors.finite",
            {"with_nan": 1, "with_inf": 0},
            {"determinism", "batch_invariance"},
        ),
        (
            "inf",
            "vectors.finite",
            {"with_inf": 1, "with_nan": 0},
            {"determinism", "batch_invariance"},
        ),
        ("zero", "vectors.nonzero", {"zero": 1}, {"batch_invariance"}),
        ("scale:3", "vectors.norms", {"normalized": False}, set()),
        ("noise:0.05", "determinism", {}, {"batch_invariance"}),
        ("batch_noise", "batch_invariance", {}, set()),
    ],
)
def test_vector_faults_fail_their_check(server, fault, name, observed, also):
    server.default = fault
    got = run(
        server,
        {
            "sections": ["sanity"],
            "sanity": {"dimensions": []},
            "skip": ["inputs", "multilingual"],  # random vectors have no semantics
        },
    )
    check = got[name]
    assert check.status is Status.FAIL, check
    for key, value in observed.items():
        assert check.observed[key] == value, check
    others = {n for n, c in got.items() if c.status is Status.FAIL and n != name}
    assert others <= also, others


def test_wrong_dimension_and_ignored_dimensions(server):
    server.default = "dim:7"
    server.honour_dimensions = False
    got = run(
        server,
        {
            "sections": ["sanity"],
            "sanity": {"dimensions": [4], "expected_dimension": DIM},
            "skip": ["multilingual", "inputs"],
        },
    )
    assert got["dimensions.native"].status is Status.FAIL
    assert got["dimensions.native"].observed == 7
    ignored = got["dimensions.honoured.4"]
    assert ignored.status is Status.FAIL and ignored.observed == {"dimensions": 7}
    assert "ignored" in ignored.reason


def test_http_500_fails_every_check_that_needs_vectors_without_retrying(server, caplog):
    server.default = "500"
    caplog.set_level(logging.WARNING)
    got = run(server, {"sections": ["sanity", "contract"], "sanity": {"dimensions": [8]}})
    for name in (
        "dimensions.native",
        "vectors.finite",
        "determinism",
        "batch_invariance",
        "multilingual",
        "inputs.mixed_script",
        "contract.embeddings",
        "contract.usage",
    ):
        assert got[name].status is Status.FAIL, got[name]
    assert "500" in got["vectors.finite"].reason and "500" in got["contract.embeddings"].reason
    assert got["contract.health"].status is Status.PASS  # GET /health is still fine
    assert got["contract.encoding_format"].status is Status.FAIL
    # One request per probe, no retry storm: the checks see the raw behaviour.
    assert len(server.embedding_requests) < 40


def test_length_limit_is_found_and_its_error_passes_the_contract(server):
    server.default = "limit:300"
    cfg = {
        "sections": ["long_text", "contract"],
        "long_text": {**FAST_LONG, "max_words": 4096},
        "contract": {"over_long_words": 1000},
    }
    got = run(server, cfg)
    found = got["long_text.max_accepted"]
    assert found.status is Status.PASS
    lo, hi = found.observed["max_accepted_words"], found.observed["min_refused_words"]
    assert lo <= 300 < hi and 300 - lo <= 0.05 * lo + 1
    assert found.observed["refusal_status"] == 400 and found.observed["requests"] <= 16
    assert "300" in found.observed["refusal_message"]
    over = got["contract.over_long"]
    assert over.status is Status.PASS and over.observed["status"] == 400
    # the truncation probe ran at the longest accepted length: the whole text is read
    trunc = got["long_text.truncation"]
    assert trunc.status is Status.PASS and trunc.observed["words"] == lo


def test_over_long_error_without_the_limit_or_with_5xx_fails(server):
    server.default = "crash:200"
    got = run(
        server,
        {
            "sections": ["long_text", "contract"],
            "long_text": FAST_LONG,
            "contract": {"over_long_words": 600},
            "skip": ["long_text.chunks"],
        },
    )
    crash = got["long_text.max_accepted"]
    assert crash.status is Status.FAIL and crash.observed["refusal_status"] == 500
    assert "server error" in crash.reason
    assert got["contract.over_long"].status is Status.FAIL
    assert got["contract.over_long"].observed["status"] == 500


def test_silent_truncation_is_detected_and_located(server):
    server.default = "truncate:100"
    got = run(server, {"sections": ["long_text"], "long_text": FAST_LONG})
    assert got["long_text.max_accepted"].observed["max_accepted_words"] == 512
    t = got["long_text.truncation"]
    assert t.status is Status.FAIL and t.observed["truncates"] is True
    assert 100 <= t.observed["reads_about_words"] <= 100 + 0.05 * 100 + 1
    assert t.observed["cosine_new_tail"] == pytest.approx(1.0)
    allowed = run(
        server,
        {
            "sections": ["long_text"],
            "skip": ["long_text.chunks"],
            "long_text": {**FAST_LONG, "allow_silent_truncation": True},
        },
    )
    assert allowed["long_text.truncation"].status is Status.PASS


def test_chunk_norm_spread(server):
    got = run(
        server,
        {
            "sections": ["long_text"],
            "long_text": FAST_LONG,
            "skip": ["long_text.max_accepted", "long_text.truncation"],
        },
    )
    c = got["long_text.chunks"]
    assert c.status is Status.PASS and c.observed["chunks"] == 3
    assert c.observed["norm_spread"] == pytest.approx(0.0, abs=1e-5)
    texts = server.embedding_requests[-1].body["input"]
    vectors = np.stack([FaultServer.vector_for(t, DIM) for t in texts])
    expected = float(vectors[0] @ vectors[-1])
    assert c.observed["first_last_cosine"] == pytest.approx(expected, abs=1e-5)


def test_auth_contract_with_a_key_protected_server(server, monkeypatch):
    server.api_key = "s3cret"
    monkeypatch.setenv("EVALKIT_TEST_KEY", "s3cret")
    cfg = {"sections": ["contract"], "contract": {"over_long_words": 50}}
    got = run(server, cfg, api_key_env="EVALKIT_TEST_KEY")
    for variant in ("none", "bearer_empty", "wrong_key"):
        c = got[f"contract.auth.{variant}"]
        assert c.status is Status.PASS and c.observed["status"] == 401, c
    assert got["contract.embeddings"].status is Status.PASS
    assert got["contract.mixed_input"].status is Status.PASS
    assert got["contract.empty_input"].status is Status.PASS
    # An open-server contract fails a server that checks keys.
    open_cfg = {
        "sections": ["contract"],
        "contract": {"auth_required": False, "over_long_words": 50},
    }
    assert (
        run(server, open_cfg, api_key_env="EVALKIT_TEST_KEY")["contract.auth.none"].status
        is Status.FAIL
    )
    # The key never appears in the results.
    assert "s3cret" not in repr(got)


def checks_prefix() -> str:
    """``+`` while conf/config.yaml does not list the checks group in its defaults."""
    config = (REPO / "conf" / "config.yaml").read_text()
    listed = any(line.strip().startswith("- checks:") for line in config.splitlines())
    return "" if listed else "+"


def test_evalkit_task_check_command_exits_3_and_logs_checks_json(server, tmp_path):
    """The documented command, end to end, in a subprocess against the fault server."""
    run = run_evalkit(
        "task=check",
        "models=[e5_small_openai]",
        f"models.e5_small_openai.base_url={server.base_url}",
        "models.e5_small_openai.max_retries=0",
        f"{checks_prefix()}checks=openai_default",
        "checks.sections=[sanity,contract]",
        "checks.sanity.dimensions=[8]",
        "checks.contract.over_long_words=100",
        work=tmp_path,
        timeout=300,
    )
    assert run.returncode == 3, run.stderr[-3000:]
    assert "Endpoint checks: e5_small_openai -> BLOCK" in run.stdout
    written = json.loads((run.out_dir / "e5_small_openai" / "checks.json").read_text())
    by_name = {c["name"]: c for c in written}
    assert by_name["contract.unknown_model"]["status"] == "FAIL"  # the fault server ignores it
    assert by_name["contract.empty_input"]["status"] == "PASS"
    assert by_name["dimensions.honoured.8"]["status"] == "PASS"
    # One MLflow run for the version: params, verdict tag, counts, and checks.json as written.
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("evalkit")
    (mlrun,) = client.search_runs([exp.experiment_id])
    assert mlrun.data.tags["evalkit.task"] == "check"
    assert mlrun.data.tags["evalkit.model_version"] == "e5_small_openai"
    assert mlrun.data.tags["evalkit.checks.verdict"] == "BLOCK"
    assert mlrun.data.params["model.base_url"] == server.base_url
    assert mlrun.data.params["checks.contract.auth_required"] == "True"
    assert mlrun.data.metrics["checks_fail"] == sum(c["status"] == "FAIL" for c in written) > 0
    dst = tmp_path / "downloaded"
    local = Path(client.download_artifacts(mlrun.info.run_id, "checks.json", str(dst)))
    logged = json.loads(local.read_text())
    assert logged == written and all(list(c) == list(FIELDS) for c in logged)


def test_task_check_exits_0_when_the_contract_is_met(server, tmp_path):
    """An open server whose team contract says so: WARN at most, exit code 0."""
    from hydra import compose, initialize_config_dir

    from evalkit.tasks.check import run

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "task=check",
                "models=[openai]",
                f"models.openai.base_url={server.base_url}",
                "models.openai.model=fault-model",
                "models.openai.max_retries=0",
                f"{checks_prefix()}checks=openai_default",
                "checks.sections=[contract]",
                "checks.contract.auth_required=false",
                "checks.contract.unknown_model_status=[200]",
                "checks.contract.over_long_words=50",
                "checks.contract.over_long_status=[200]",
                f"output_dir={tmp_path}",
                "tracking=none",
            ],
        )
    assert run(cfg, [])["exit_code"] == 0
    written = json.loads((tmp_path / "openai" / "checks.json").read_text())
    assert {c["status"] for c in written} <= {"PASS", "WARN"}


def test_unreachable_endpoint_is_an_error_not_a_list_of_failures():
    dead = FaultServer().start()
    url = dead.base_url
    dead.stop()
    v = OpenAIEmbedder("dead", base_url=url, model="m", max_retries=0, timeout_s=5)
    with pytest.raises(EndpointError, match=r"model version 'dead': cannot reach .*127\.0\.0\.1"):
        run_checks(v, {"sections": ["contract"]})


def test_dropped_connections_fail_the_checks_with_no_response(server):
    server.default = "close"
    got = run(server, {"sections": ["sanity"], "sanity": {"dimensions": []}})
    assert got["vectors.finite"].status is Status.FAIL
    assert "disconnected without sending a response" in got["vectors.finite"].reason
