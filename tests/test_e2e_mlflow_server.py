"""evalkit against real MLflow servers and real process deaths (issue 9, items 1, 4, 5, 6, 7).

- MLflow UI: a fresh store served by ``mlflow server`` on 127.0.0.1, one evaluation through it,
  and headless Chromium opens the experiment page on the runs table (not the GenAI traces
  overview) with the evaluation's runs in it.
- kill -9 of a running evaluation: its parent run is KILLED after the next start.
- The tracking server dies mid-run: evalkit finishes on disk within seconds, exits 1 with one
  line naming ``evalkit task=log run_dir=...``, and that command reproduces the runs (params,
  metrics incl. ``embed_retries`` / ``embed_failed_requests``, dataset inputs, artifacts) in a
  live store.
- The tracking server dies after one version's child run finished, comes back, and ``task=log``
  logs the run into it: the failed attempt's parent ends FAILED (docs/how-to/mlflow.md), and every run of that
  attempt (also the finished child) is tagged ``evalkit.attempt=failed`` / ``evalkit.logged_as``.
- A server reached by a host name its DNS-rebinding guard does not allow (403 Invalid Host
  header): one line naming the cause and ``--allowed-hosts``, not credentials.
- ``mlflow server`` on PostgreSQL (Debian's package, started here on 127.0.0.1; skipped with the
  reason when it cannot be): an evaluation and ``compare.baseline_run_id`` through the server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.cli import REPO, child_runs, offline_env, run_evalkit
from tests.fault_server import FaultServer
from tests.mlflow_servers import start_mlflow_server, start_postgres
from tests.servers import free_port
from tests.test_report_html import CHROMIUM, CHROMIUM_FLAGS

pytestmark = pytest.mark.slow


def _openai(srv: FaultServer, **extra: object) -> list[str]:
    opts = {
        "base_url": srv.base_url,
        "model": "fault-model",
        "batch_size": 8,
        "concurrency": 1,
        "retry_initial_s": 0.01,
        **extra,
    }
    return ["models=[openai]", *(f"models.openai.{k}={v}" for k, v in opts.items())]


def _start(args: list[str], work: Path, out: Path) -> subprocess.Popen:
    """``evalkit`` in its own process group (so kill -9 hits it alone), output to files."""
    cmd = [sys.executable, "-m", "evalkit.cli", *args, f"hydra.run.dir={out}", "progress=false"]
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env=offline_env(),
        stdout=open(work / f"{out.name}.stdout", "w"),  # noqa: SIM115 - closed with the process
        stderr=open(work / f"{out.name}.stderr", "w"),  # noqa: SIM115
        start_new_session=True,
        # A terminal's Ctrl-C, even when pytest itself runs in the background of a
        # non-interactive shell (which starts it, and so evalkit, with SIGINT ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# ------------------------------------------------------------------------------------ MLflow UI


def test_mlflow_ui_opens_experiment_on_runs_table(tmp_path, shared_data, shared_cache):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not installed at {CHROMIUM} (CI: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    server = start_mlflow_server(tmp_path, f"sqlite:///{tmp_path}/server.db")
    try:
        res = run_evalkit(
            f"cache.dir={shared_cache}",
            "dataset=beir",
            f"dataset.path={shared_data / 'adi'}",
            "models=[use_m3]",
            "tracking=server",
            f"tracking.uri={server.uri}",
            work=tmp_path,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        assert "View run" not in res.stdout  # stdout is evalkit's tables only
        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name("evalkit")
        assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
        runs = client.search_runs([exp.experiment_id])
        names = sorted(r.info.run_name for r in runs)
        assert names == ["adi: use_m3", "use_m3"]
        child = next(r for r in runs if r.info.run_name == "use_m3")
        contexts = {i.tags[0].value: i.dataset for i in child.inputs.dataset_inputs}
        assert set(contexts) == {"catalog", "queries", "judgments"}
        fingerprint = child.data.params["dataset.fingerprint.catalog"]
        assert contexts["catalog"].digest == fingerprint[:32]

        # evalkit prints the link that opens the experiment on its runs table.
        [link] = [
            line.split("MLflow UI: ", 1)[1]
            for line in res.stdout.splitlines()
            if "MLflow UI: " in line
        ]
        assert (
            link == f"{server.uri}/#/experiments/{exp.experiment_id}?workflowType=machine_learning"
        )
        shot = tmp_path / "experiment.png"
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(link)
                page.get_by_text("adi: use_m3", exact=True).first.wait_for(timeout=60_000)
                page.get_by_text("adi/catalog").first.wait_for(timeout=30_000)  # dataset column
                page.screenshot(path=str(shot), full_page=True)
                url = page.url
                body = page.inner_text("body")
                grid_rows = page.locator("[role=row]").count()
            finally:
                browser.close()
    finally:
        server.stop()
    assert f"/experiments/{exp.experiment_id}/runs" in url and "overview" not in url
    assert "Run Name" in body and "Dataset" in body, body[:2000]
    assert "No data available" not in body  # not the GenAI traces overview
    assert grid_rows >= 2  # header + the evaluation's parent row (its child nests under it)
    assert shot.stat().st_size > 10_000


def test_mlflow_ui_shows_a_sweep_as_one_row_and_the_verdict_as_description(
    tmp_path, shared_data, shared_cache
):
    """Issue 27: the runs table holds one row per sweep (its jobs nested under it), and an
    evaluation's page opens with its verdict (the run description, mlflow.note.content)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not installed at {CHROMIUM} (CI: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    server = start_mlflow_server(tmp_path, f"sqlite:///{tmp_path}/server.db")
    try:
        res = run_evalkit(
            "--multirun",
            f"cache.dir={shared_cache}",
            "dataset=beir",
            f"dataset.path={shared_data / 'adi'}",
            "models=[use_m3,e5_small]",
            "models.e5_small.dimensions=128,384",
            "tracking=server",
            f"tracking.uri={server.uri}",
            f"hydra.sweep.dir={tmp_path / 'multirun'}",
            work=tmp_path,
        )
        assert res.returncode in (0, 3, 4), res.stderr[-3000:]
        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name("evalkit")
        runs = client.search_runs([exp.experiment_id])
        [sweep] = [r for r in runs if r.data.tags.get("evalkit.task") == "sweep"]
        jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweep.info.run_id]
        assert sweep.info.run_name == "sweep: adi models.e5_small.dimensions" and len(jobs) == 2
        job = min(jobs, key=lambda r: r.info.run_name)
        summary = job.data.tags["evalkit.summary"]
        assert summary.startswith(
            job.data.tags["evalkit.verdict"] + ": e5_small vs use_m3: ndcg@10"
        )
        assert job.data.tags["mlflow.note.content"].startswith(f"**{summary}**")
        table = f"{server.uri}/#/experiments/{exp.experiment_id}?workflowType=machine_learning"
        page_of_job = (
            f"{server.uri}/#/experiments/{exp.experiment_id}/runs/{job.info.run_id}"
            "?workflowType=machine_learning"
        )
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(table)
                page.get_by_text(sweep.info.run_name, exact=True).first.wait_for(timeout=60_000)
                page.screenshot(path=str(tmp_path / "sweep_table.png"), full_page=True)
                table_body = page.inner_text("body")
                page.goto(page_of_job)
                page.get_by_text("e5_small vs use_m3", exact=False).first.wait_for(timeout=60_000)
                page.screenshot(path=str(tmp_path / "job_run.png"), full_page=True)
                run_body = page.inner_text("body")
            finally:
                browser.close()
    finally:
        server.stop()
    # one row for the sweep: its jobs are nested (collapsed), not rows of their own
    assert table_body.count(sweep.info.run_name) == 1
    assert job.info.run_name not in table_body
    # the evaluation's page shows the verdict line as its description
    assert summary.split(" [")[0] in run_body, run_body[:3000]
    assert (tmp_path / "sweep_table.png").stat().st_size > 10_000


# ------------------------------------------------------------------------------------- kill -9


def test_kill_9_leaves_a_run_that_the_next_start_marks_killed(tmp_path, shared_data):
    db = f"sqlite:///{tmp_path}/mlflow.db"
    common = [
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        f"tracking.uri={db}",
        "tracking.experiment=killed",
        f"cache.dir={tmp_path / 'cache'}",
    ]
    with FaultServer(dim=16, default="slow:0.3") as srv:
        proc = _start([*common, *_openai(srv)], tmp_path, tmp_path / "first")
        try:
            # Embedding has begun, so the parent run exists and is RUNNING.
            _wait_for(lambda: len(srv.embedding_requests) >= 3, 120, "embedding requests")
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        manifest = json.loads((tmp_path / "first" / "mlflow_runs.json").read_text())
        killed = manifest["runs"][0]["id"]
        client = MlflowClient(db)
        assert client.get_run(killed).info.status == "RUNNING"  # nothing could end it

        srv.default = "ok"
        second = _start([*common, *_openai(srv)], tmp_path, tmp_path / "second")
        assert second.wait(300) == 0, (tmp_path / "second.stderr").read_text()[-3000:]
    run = client.get_run(killed)
    assert run.info.status == "KILLED"
    assert (
        f"process {manifest['runs'][0]['tags']['evalkit.pid']}"
        in run.data.tags["evalkit.end_reason"]
    )
    assert run.data.tags["evalkit.host"] == os.uname().nodename


@pytest.mark.parametrize(
    ("how", "code", "status"),
    [("sigterm", 143, "KILLED"), ("sigint", 130, "KILLED"), ("crash", 1, "FAILED")],
)
def test_interrupted_or_crashed_run_is_ended_at_once(tmp_path, shared_data, how, code, status):
    """SIGTERM / Ctrl-C end the open runs as KILLED, an error as FAILED: nothing stays RUNNING."""
    db = f"sqlite:///{tmp_path}/mlflow.db"
    args = [
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        f"tracking.uri={db}",
        "tracking.experiment=ended",
        f"cache.dir={tmp_path / 'cache'}",
    ]
    with FaultServer(dim=16, default="slow:0.3") as srv:
        if how == "crash":
            srv.push("ok", "ok", "ok", "400")  # a permanent error mid-embedding
        proc = _start([*args, *_openai(srv)], tmp_path, tmp_path / how)
        try:
            _wait_for(lambda: len(srv.embedding_requests) >= 3, 120, "embedding requests")
            if how != "crash":
                proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
            assert proc.wait(120) == code, (tmp_path / f"{how}.stderr").read_text()[-3000:]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    stderr = (tmp_path / f"{how}.stderr").read_text()
    assert "Traceback" not in stderr, stderr[-3000:]
    manifest = json.loads((tmp_path / how / "mlflow_runs.json").read_text())
    client = MlflowClient(db)
    assert [client.get_run(r["id"]).info.status for r in manifest["runs"]] == [status]
    assert [r["status"] for r in manifest["runs"]] == [status]
    # ... and says why (issue 26: a SIGTERM'd run had no end_reason tag)
    reason = client.get_run(manifest["runs"][0]["id"]).data.tags.get("evalkit.end_reason", "")
    want = {"sigterm": "terminated (SIGTERM)", "sigint": "interrupted (Ctrl-C, SIGINT)"}
    assert reason == want[how] if how in want else reason.startswith("failed: "), reason


# ------------------------------------------------------- tracking server dies mid-run; task=log


def test_server_dying_mid_run_keeps_the_run_and_task_log_reproduces_it(tmp_path, shared_data):
    server = start_mlflow_server(tmp_path, f"sqlite:///{tmp_path}/server.db")
    out = tmp_path / "run"
    try:
        with FaultServer(dim=16, default="slow:0.2") as srv:
            srv.push("429:0.01", "500")  # two failed requests, retried
            proc = _start(
                [
                    "dataset=beir",
                    f"dataset.path={shared_data / 'adi'}",
                    "tracking=server",
                    f"tracking.uri={server.uri}",
                    "tracking.experiment=dies",
                    f"cache.dir={tmp_path / 'cache'}",
                    *_openai(srv),
                ],
                tmp_path,
                out,
            )
            try:
                _wait_for(lambda: len(srv.embedding_requests) >= 4, 120, "embedding requests")
                server.kill()  # the tracking server dies mid-run
                t0 = time.monotonic()
                code = proc.wait(240)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(30)
            after_death = time.monotonic() - t0
    finally:
        server.stop()
    stderr = (tmp_path / "run.stderr").read_text()
    assert code == 1, stderr[-3000:]
    assert after_death < 120, after_death  # seconds, not MLflow's default ~4 min per call
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if "evalkit task=log" in line]
    assert len(lines) == 1 and f"run_dir={out}" in lines[0], stderr[-3000:]
    for name in ("config.yaml", "mlflow_runs.json", "openai/per_query.csv", "openai/pairs.npz"):
        assert (out / name).is_file(), name

    later = f"sqlite:///{tmp_path}/later.db"
    res = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", "task=log", f"run_dir={out}",
         f"tracking.uri={later}", f"hydra.run.dir={tmp_path / 'log'}"],
        cwd=REPO, env=offline_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "logged" in res.stdout and "1 child run(s)" in res.stdout

    manifest = json.loads((out / "mlflow_runs.json").read_text())
    client = MlflowClient(later)
    exp = client.get_experiment_by_name("dies")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    parent_rec, child_rec = manifest["runs"]
    parent, child = runs[parent_rec["name"]], runs["openai"]
    assert parent.info.status == child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.params == child_rec["params"]
    assert child.data.metrics == pytest.approx(child_rec["metrics"])
    assert child.data.metrics["embed_retries"] == 2
    assert child.data.metrics["embed_failed_requests"] == 2
    # The metric agrees with the per-query file written on disk.
    rows = (out / "openai" / "per_query.csv").read_text().splitlines()
    col = rows[0].split(",").index("ndcg@10")
    per_query = [float(r.split(",")[col]) for r in rows[1:]]
    assert child.data.metrics["ndcg_at_10"] == pytest.approx(sum(per_query) / len(per_query))
    assert {i.tags[0].value for i in child.inputs.dataset_inputs} == {
        "catalog",
        "queries",
        "judgments",
    }
    files = {f.path for f in client.list_artifacts(child.info.run_id)}
    assert {"per_query.csv", "pairs.npz", "latency.json", "runs"} <= files
    assert parent.data.tags["evalkit.logged_from"] == str(out.resolve())


def test_server_back_after_dying_gets_the_failed_attempt_marked_by_task_log(tmp_path):
    """Issue 16: the store keeps the dead attempt's runs; ``task=log`` into the same store ends
    its parent FAILED (not KILLED by the stale-run clean-up) and tags all of its runs."""
    db = f"sqlite:///{tmp_path}/server.db"
    server = start_mlflow_server(tmp_path, db)
    out = tmp_path / "run"
    experiment = "back"
    versions = ["models=[openai,e5_small_openai]"]
    with FaultServer(dim=16) as fast, FaultServer(dim=16, default="slow:2.0") as slow:
        for name, srv in (("openai", fast), ("e5_small_openai", slow)):
            versions += [
                f"models.{name}.base_url={srv.base_url}",
                f"models.{name}.model=fault-model",
                f"models.{name}.batch_size=8",
                f"models.{name}.concurrency=1",
            ]
        proc = _start(
            [
                "dataset.n_items=50",
                "dataset.n_queries=8",
                "latency.probe=0",
                "tracking=server",
                f"tracking.uri={server.uri}",
                f"tracking.experiment={experiment}",
                f"cache.dir={tmp_path / 'cache'}",
                *versions,
            ],
            tmp_path,
            out,
        )
        try:
            client = MlflowClient(server.uri)

            def first_child_finished() -> bool:
                exp = client.get_experiment_by_name(experiment)
                runs = client.search_runs([exp.experiment_id]) if exp else []
                return any(
                    r.info.status == "FINISHED" and "mlflow.parentRunId" in r.data.tags
                    for r in runs
                )

            # ... while the second version still embeds (8 requests of 2 s): its child run is
            # created only after that, with the server dead
            _wait_for(first_child_finished, 180, "the first child run to finish")
            server.kill()
            code = proc.wait(240)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    stderr = (tmp_path / "run.stderr").read_text()
    assert code in (1, 3, 4) and "evalkit task=log" in stderr, stderr[-3000:]  # 3 / 4 stay
    manifest = json.loads((out / "mlflow_runs.json").read_text())
    old_parent, old_child, offline_child = (r["id"] for r in manifest["runs"])
    assert offline_child.startswith("offline-")

    server = start_mlflow_server(tmp_path, db)  # the same store, back (on another port)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "evalkit.cli", "task=log", f"run_dir={out}",
             f"tracking.uri={server.uri}", f"hydra.run.dir={tmp_path / 'log'}"],
            cwd=REPO, env=offline_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name(experiment)
        runs = {r.info.run_id: r for r in client.search_runs([exp.experiment_id])}
    finally:
        server.stop()
    parent, child = runs[old_parent], runs[old_child]
    assert parent.info.status == "FAILED"  # as docs/how-to/mlflow.md says; not KILLED
    assert child.info.status == "FINISHED"  # it did finish, but belongs to the failed attempt
    for run in (parent, child):
        assert run.data.tags["evalkit.attempt"] == "failed"
        assert runs[run.data.tags["evalkit.logged_as"]].data.tags["evalkit.logged_from"]
    fresh = [r for r in runs.values() if "evalkit.logged_from" in r.data.tags]
    assert len(fresh) == 3 and {r.info.status for r in fresh} == {"FINISHED"}
    assert not any("evalkit.attempt" in r.data.tags for r in fresh)
    new_parent = runs[parent.data.tags["evalkit.logged_as"]]
    assert {r.info.run_name for r in fresh} - {new_parent.info.run_name} == {
        "openai",
        "e5_small_openai",
    }


def test_server_reached_by_a_host_name_it_does_not_allow(tmp_path):
    """MLflow's DNS-rebinding guard (403 Invalid Host header): the message names it and
    --allowed-hosts, not credentials."""
    port = free_port()
    server = start_mlflow_server(
        tmp_path,
        f"sqlite:///{tmp_path}/server.db",
        port=port,
        extra_args=("--allowed-hosts", f"127.0.0.1:{port}"),
    )
    try:
        res = run_evalkit(
            "task=runs", "tracking=server", f"tracking.uri=http://localhost:{port}", work=tmp_path
        )
        ok = run_evalkit(
            "task=runs", "tracking=server", f"tracking.uri={server.uri}",
            "tracking.experiment=Default", work=tmp_path, out_name="ok",
        )  # fmt: skip
    finally:
        server.stop()
    assert res.returncode == 1, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if "evalkit:" in ln and "ERROR" in ln]
    assert len(lines) == 1, res.stderr[-3000:]
    assert "HTTP 403 Invalid Host header" in lines[0]
    assert f"--allowed-hosts localhost:{port}" in lines[0]
    assert "credentials" not in lines[0].replace("not a credentials problem", "")
    assert ok.returncode == 0, ok.stderr[-3000:]  # the allowed name works


# ----------------------------------------------------------------------- PostgreSQL-backed server


def test_mlflow_server_on_postgresql_with_baseline_run_id(tmp_path, shared_data, shared_cache):
    pg = start_postgres()
    try:
        pg.create_database("mlflow")
        server = start_mlflow_server(tmp_path, pg.uri("mlflow"))
        try:
            common = [
                f"cache.dir={shared_cache}",
                "dataset=beir",
                f"dataset.path={shared_data / 'adi'}",
                "tracking=server",
                f"tracking.uri={server.uri}",
                "tracking.experiment=pg",
            ]
            base = run_evalkit(*common, "models=[use_m3]", work=tmp_path, out_name="base")
            assert base.returncode == 0, base.stderr[-3000:]
            base_run = child_runs(server.uri, "pg")["use_m3"].info.run_id
            cand = run_evalkit(
                *common,
                "models=[e5_small]",
                f"compare.baseline_run_id={base_run}",
                work=tmp_path,
                out_name="cand",
            )
            assert cand.returncode in (0, 3, 4), cand.stderr[-3000:]
            assert "use_m3/document" not in cand.stdout + cand.stderr  # not re-embedded
            runs = child_runs(server.uri, "pg")
            parent = MlflowClient(server.uri).get_run(
                runs["e5_small"].data.tags["mlflow.parentRunId"]
            )
        finally:
            server.stop()
    finally:
        pg.stop()
    verdict = json.loads((cand.out_dir / "verdict.json").read_text())
    assert verdict["baseline"] == "use_m3"
    assert parent.data.params["baseline_run_id"] == base_run
    assert parent.data.tags["evalkit.verdict"] == verdict["verdict"]
    assert "delta_ndcg_at_10" in parent.data.metrics
