"""Issue 16 section 4: no API key in any output, for ``evaluate``, ``task=check`` and
``run_checks=true``, against a real server on 127.0.0.1 that echoes the key in its errors
(tests/fault_server.py: OpenAI's 401 ``Incorrect API key provided: <key>``, and ``leak_key``).

Each test greps stdout, stderr and the bytes of every file evalkit left under the work folder:
the run folder (checks.json, reports, verdict, cli.log, mlflow_runs.json), the SQLite MLflow
store (params and tags are stored there in clear) and every MLflow artifact beside it."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow import MlflowClient

from evalkit.redact import MASK

from .cli import CliRun, run_evalkit
from .fault_server import FaultServer

SMALL_DEMO = ("dataset.n_items=50", "dataset.n_queries=8")
CHECKS = (
    "checks=openai_default",
    "checks.sections=[sanity,contract]",
    "checks.sanity.dimensions=[8]",
    "checks.contract.over_long_words=100",
)


def version(server: FaultServer, name: str, key_env: str = "OPENAI_API_KEY") -> tuple[str, ...]:
    return (
        f"models.{name}.base_url={server.base_url}",
        f"models.{name}.model=fault-model",
        f"models.{name}.api_key_env={key_env}",
        f"models.{name}.max_retries=0",
    )


def assert_nowhere(key: str, res: CliRun, work: Path) -> list[Path]:
    """``key`` is in neither stream nor any file under ``work``; the files looked at."""
    assert key not in res.stdout, res.stdout[-2000:]
    assert key not in res.stderr, res.stderr[-2000:]
    files = [p for p in work.rglob("*") if p.is_file() and "cache" not in p.parts]
    for path in files:
        assert key.encode() not in path.read_bytes(), f"the key is in {path}"
    return files


def artifacts(db_uri: str) -> list[Path]:
    """Every artifact file of every run in the store (downloaded)."""
    client = MlflowClient(tracking_uri=db_uri)
    exp = client.get_experiment_by_name("evalkit")
    out = []
    for run in client.search_runs([exp.experiment_id]):
        root = Path(run.info.artifact_uri.removeprefix("file://"))
        out += [p for p in root.rglob("*") if p.is_file()]
    return out


def test_task_check_with_a_rejected_key_echoed_by_the_server(tmp_path, monkeypatch):
    """OpenAI's 401 quotes the key it was sent: checks.json, the table and MLflow hold none."""
    key = "sk-proj-h16Wrong0123456789abcdefXYZ"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with FaultServer(dim=8, api_key="sk-the-right-one-0000000000") as server:
        res = run_evalkit(
            "task=check",
            "models=[openai]",
            *version(server, "openai"),
            *CHECKS,
            "tracking=sqlite",
            work=tmp_path,
            timeout=300,
        )
        sent = {r.headers.get("authorization") for r in server.embedding_requests}
    assert f"Bearer {key}" in sent  # the key reached the server, which quoted it back
    assert res.returncode == 3, res.stderr[-3000:]
    written = json.loads((res.out_dir / "openai" / "checks.json").read_text())
    quoted = [c for c in written if "Incorrect API key provided" in json.dumps(c)]
    assert quoted and all(MASK in json.dumps(c) for c in quoted)
    assert "Incorrect API key provided: [REDACTED]" in res.stdout
    files = assert_nowhere(key, res, tmp_path)
    logged = artifacts(f"sqlite:///{tmp_path}/mlflow.db")
    assert any(p.name == "checks.json" for p in logged) and set(logged) <= set(files)


def test_evaluate_with_a_rejected_key_echoed_by_the_server(tmp_path, monkeypatch):
    """The error line, cli.log, the manifest and the FAILED MLflow runs hold no key."""
    key = "sk-h16-evaluate-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with FaultServer(dim=8, api_key="sk-the-right-one-0000000000") as server:
        res = run_evalkit(
            "models=[openai]",
            *version(server, "openai"),
            "tracking=sqlite",
            *SMALL_DEMO,
            work=tmp_path,
        )
        assert server.embedding_requests
    assert res.returncode == 1, res.stderr[-3000:]
    errors = [ln for ln in res.stderr.splitlines() if "evalkit:" in ln and "ERROR" in ln]
    assert len(errors) == 1 and "Incorrect API key provided: [REDACTED]" in errors[0]
    assert (res.out_dir / "cli.log").is_file()
    assert_nowhere(key, res, tmp_path)


def test_evaluate_with_run_checks_and_a_server_leaking_a_non_key_shaped_key(tmp_path, monkeypatch):
    """A key of any shape, read from a version's own ``api_key_env``, is masked by value in
    every output of a full evaluation with the endpoint checks (checks.json, reports, verdict,
    MLflow params / tags / artifacts)."""
    key = "tok9f8e7d6c5b4a3928h16"  # not key-shaped: only its value identifies it
    monkeypatch.setenv("EVALKIT_H16_KEY", key)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FaultServer(dim=8, api_key=key, leak_key=True) as server:
        res = run_evalkit(
            "models=[openai,e5_small_openai]",
            *version(server, "openai", "EVALKIT_H16_KEY"),
            *version(server, "e5_small_openai", "EVALKIT_H16_KEY"),
            "run_checks=true",
            *CHECKS,
            "tracking=sqlite",
            "latency.probe=0",
            *SMALL_DEMO,
            work=tmp_path,
        )
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    written = (res.out_dir / "openai" / "checks.json").read_text()
    assert f"(request key {MASK})" in written  # the server did leak it into the checks
    files = assert_nowhere(key, res, tmp_path)
    names = {p.name for p in files}
    assert {"checks.json", "cli.log", "mlflow_runs.json"} <= names
    logged = artifacts(f"sqlite:///{tmp_path}/mlflow.db")
    assert sum(p.name == "checks.json" for p in logged) == 2


def test_run_checks_from_python_masks_the_versions_own_key(monkeypatch):
    """Without the CLI: run_checks registers the version's api_key_env, so a key of any shape
    that the server quotes is masked in every Check (and so in checks.json)."""
    from evalkit.checks import run_checks
    from evalkit.embed import OpenAIEmbedder

    key = "plain7c0ffee1234h16key"
    monkeypatch.setenv("EVALKIT_H16_PY_KEY", key)
    with FaultServer(dim=8, api_key=key, leak_key=True) as server:
        version = OpenAIEmbedder(
            "leaky",
            base_url=server.base_url,
            model="fault-model",
            api_key_env="EVALKIT_H16_PY_KEY",
            max_retries=0,
        )
        checks = run_checks(
            version, {"sections": ["contract"], "contract": {"over_long_words": 50}}
        )
    text = json.dumps([c.to_dict() for c in checks])
    assert f"(request key {MASK})" in text and key not in text
