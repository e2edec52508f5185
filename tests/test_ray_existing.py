"""Ray that is already there (issue 16, section 2).

- A stale ``/tmp/ray/ray_current_cluster`` (a head killed without ``ray stop``, here pointing at
  a dead address) and another Ray running on the machine (the ``local_ray`` fixture's): the
  fixture and ``evalkit engine=ray`` without ``engine.address`` still start a Ray of their own.
- evalkit's stderr holds no Ray INFO lines and no C++ core lines (``core_worker.cc``) unless
  ``verbose=true``.
- ``hydra/launcher=ray_local``: a sweep on its own local Ray, each job's output in plain-text
  files in its job folder, ``sweep_summary.json`` without Hydra's ``http\\://`` escaping.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')

from evalkit.engine.session import init_args  # noqa: E402
from evalkit.engine.spec import EngineSpec  # noqa: E402

from .cli import REPO, offline_env, run_evalkit  # noqa: E402
from .fault_server import FaultServer  # noqa: E402

pytestmark = pytest.mark.slow

DEAD = "127.0.0.1:1"  # nothing listens on port 1
RAY_INFO = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+\s+INFO \S+\.py:\d+ -- ", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SMALL = ("dataset.n_items=60", "dataset.n_queries=10", "dataset.simulate_clicks=false")


@pytest.fixture(scope="module")
def stale_address_file():
    """The file Ray reads to find "the" cluster, naming a dead head; any real one is restored."""
    from ray._common.utils import get_ray_address_file

    path = Path(get_ray_address_file(None))
    saved = path.read_bytes() if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEAD)
    try:
        yield path
    finally:
        if saved is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(saved)


def _model(srv: FaultServer) -> tuple[str, ...]:
    return (
        "models=[openai]",
        f"models.openai.base_url={srv.base_url}",
        "models.openai.model=fault-model",
        "models.openai.batch_size=16",
        "latency.probe=0",
        "tracking=none",
        *SMALL,
    )


def test_the_local_ray_fixture_starts_its_own_ray_beside_a_stale_address_file(
    stale_address_file, local_ray
):
    assert stale_address_file.read_text() == DEAD  # the stale file was there all along

    @local_ray.remote
    def square(x: int) -> int:
        return x * x

    assert local_ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
    assert local_ray.cluster_resources()["CPU"] == 2


def test_init_args_start_a_local_ray_unless_an_address_is_given():
    assert init_args(EngineSpec(kind="ray"))["address"] == "local"
    assert init_args(EngineSpec(kind="ray", address="local", num_cpus=2))["num_cpus"] == 2
    joined = init_args(EngineSpec(kind="ray", address="auto", num_cpus=2))
    assert joined["address"] == "auto" and "num_cpus" not in joined
    assert init_args(EngineSpec(kind="ray", verbose=True))["log_to_driver"] is True


def test_engine_ray_without_address_runs_beside_a_stale_file_and_another_ray(
    stale_address_file, local_ray, tmp_path
):
    """The pytest process runs a Ray (the fixture's) and the address file names a dead one."""
    with FaultServer(dim=16) as srv:
        res = run_evalkit("engine=ray", "engine.num_cpus=2", *_model(srv), work=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "engine=ray: started a local Ray with 2 CPUs" in res.stderr
    assert "cannot connect" not in res.stderr
    assert not RAY_INFO.search(res.stderr), RAY_INFO.findall(res.stderr)
    assert "core_worker.cc" not in res.stderr, res.stderr[-3000:]
    assert "ndcg@10" in res.stdout


def test_verbose_decides_ray_data_console_level_and_the_native_filter(local_ray):
    import logging

    from evalkit.engine.session import RaySession

    def console_levels() -> set[int]:
        handlers = logging.getLogger("ray.data").handlers
        return {h.level for h in handlers if h.get_name() == "console"}

    with RaySession(EngineSpec(kind="ray")) as quiet:
        assert console_levels() == {logging.WARNING}
        assert quiet._filter is not None and not quiet.started  # the fixture's Ray is reused
    assert quiet._filter is None and local_ray.is_initialized()
    with RaySession(EngineSpec(kind="ray", verbose=True)) as chatty:
        assert console_levels() == {logging.INFO} and chatty._filter is None


def test_native_ray_lines_are_kept_off_stderr_and_the_rest_passes(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        from evalkit.engine.session import NativeLogFilter
        with NativeLogFilter() as f:
            os.write(2, b"[2026-12-02 11:39:42,478 E 12407 12407] core_worker.cc:2465: Actor\\n")
            os.write(2, b"[2026-12-02 11:39:42,479 I 12407 12407] logging.cc:303: Set level\\n")
            print("evalkit line", file=sys.stderr, flush=True)
            os.write(2, b"progress 50%\\r")
            os.write(2, b"[2026-12-02 11:39:43,000 F 12407 12407] raylet.cc:1: fatal\\n")
        print(f.dropped)
        print("after", file=sys.stderr)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=REPO, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert proc.stdout.strip() == b"2"
    assert "core_worker.cc" not in err and "logging.cc" not in err
    assert "evalkit line\n" in err and "progress 50%\r" in err
    assert "raylet.cc:1: fatal" in err and err.endswith("after\n")


def test_ray_launcher_sweep_on_its_own_local_ray_writes_job_output_to_files(
    stale_address_file, tmp_path
):
    """docs/how-to/ray.md's local Ray-launcher sweep, with a stale address file present."""
    with FaultServer(dim=16) as srv:
        base_url = srv.base_url
        sweep = tmp_path / "sweep"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "evalkit.cli",
                "--multirun",
                "hydra/launcher=ray_local",
                "hydra.launcher.ray.init.num_cpus=2",
                f"hydra.sweep.dir={sweep}",
                f"cache.dir={tmp_path / 'cache'}",
                "progress=false",
                *[arg for arg in _model(srv) if arg != "tracking=none"],
                f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
                "tracking.experiment=ray_sweep",
                "models.openai.dimensions=8,16",
            ],
            cwd=REPO,
            env=offline_env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cannot connect" not in proc.stderr
    assert "(_run_job" not in proc.stdout + proc.stderr  # no Ray-forwarded job lines
    assert not RAY_INFO.search(proc.stderr), RAY_INFO.findall(proc.stderr)
    for job in ("0", "1"):
        out = (sweep / job / "stdout.txt").read_text(encoding="utf-8")
        err = (sweep / job / "stderr.txt").read_text(encoding="utf-8")
        assert "ndcg@10" in out, out
        assert not ANSI.search(out + err)
    summary = json.loads((sweep / "sweep_summary.json").read_text(encoding="utf-8"))
    text = json.dumps(summary)
    assert "\\\\:" not in text and f"models.openai.base_url={base_url}" in text
    assert [j["exit_code"] for j in summary["jobs"]] == [0, 0]
    assert os.path.exists(stale_address_file)
    # issue 27: the Ray-launched jobs' evaluations are nested under one sweep run, which holds
    # the configurations' comparison (the full 16 dimensions are the reference)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("ray_sweep")
    runs = client.search_runs([exp.experiment_id])
    sweeps = [r for r in runs if r.data.tags.get("evalkit.task") == "sweep"]
    assert len(sweeps) == 1 and "mlflow.parentRunId" not in sweeps[0].data.tags
    sweep_run = sweeps[0]
    jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweep_run.info.run_id]
    assert len(jobs) == 2 and all(j.info.status == "FINISHED" for j in jobs)
    assert sweep_run.data.tags["evalkit.sweep.reference"] == "models.openai.dimensions=16"
    assert "evalkit.sweep.pick" in sweep_run.data.tags
    names = {a.path for a in client.list_artifacts(sweep_run.info.run_id)}
    assert {"sweep_configs.csv", "sweep_report.html", "sweep_summary.json"} <= names
