"""MLflow as its users expect it (issue 9, items 1-7), against real stores, fast.

- The experiment is marked as a model-development experiment (MLflow 3's UI then opens on runs).
- Each version's inputs are MLflow datasets: digest = evalkit's fingerprint, context = role.
- Swept overrides name the parent run; ``override.<key>`` params hold plain (unescaped) values.
- Runs left RUNNING by a dead process are KILLED at the next start; ``abort`` ends open runs.
- An unreachable http store fails in seconds with one line; ``postgresql://`` without its
  driver says what to write instead.
- Retries and failed requests against a faulty server are counted (``embed_retries``,
  ``embed_failed_requests``).
- ``task=runs`` lists the last evaluations with their verdicts.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from evalkit.data.schema import Catalog, EvalData, Judgments, Queries
from evalkit.embed import embed_texts
from evalkit.embed.openai_backend import OpenAIEmbedder
from evalkit.errors import ConfigError
from evalkit.track.datasets import dataset_inputs
from evalkit.track.manifest import MANIFEST_FILE, read_manifest
from evalkit.track.mlflow_tracker import EXPERIMENT_KIND_TAG, Tracker
from evalkit.track.overrides import override_params, run_name, swept_keys
from evalkit.track.stale import END_REASON_TAG, PID_START_TAG, PID_TAG, process_tags
from tests.cli import REPO, offline_env
from tests.fault_server import FaultServer
from tests.servers import free_port


def _data(tmp_path) -> EvalData:
    items = tmp_path / "items.csv"
    items.write_text("id,title\nd1,red shoe\n", encoding="utf-8")
    return EvalData(
        "toy",
        Catalog(["d1", "d2"], ["red shoe", "blue hat"], source=str(items)),
        Queries(["q1"], ["shoe"], language=["en"], source="generated"),
        Judgments({"q1": {"d1": 2}}),
        fingerprint={
            "catalog": "a" * 64,
            "queries": "b" * 64,
            "judgments": "c" * 64,
            "dataset": "d" * 64,
        },
    )


def test_experiment_opens_on_runs_view(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    t = Tracker(uri, "fresh")
    exp = t.client.get_experiment(t.experiment_id)
    assert exp.tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    # An experiment created by someone else (no kind, or one MLflow only inferred) is marked too.
    client = MlflowClient(uri)
    other = client.create_experiment("theirs")
    client.set_experiment_tag(other, EXPERIMENT_KIND_TAG, "genai_development_inferred")
    mine = client.create_experiment("chosen")
    client.set_experiment_tag(mine, EXPERIMENT_KIND_TAG, "genai_development")
    Tracker(uri, "theirs")
    Tracker(uri, "chosen")
    assert client.get_experiment(other).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert client.get_experiment(mine).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_dataset_inputs_carry_fingerprints_and_contexts(tmp_path):
    data = _data(tmp_path)
    t = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "ds")
    run = t.start_parent("p")
    t.log_inputs(run, dataset_inputs(data))
    t.finish(run)
    inputs = t.client.get_run(run).inputs.dataset_inputs
    got = {i.tags[0].value: i.dataset for i in inputs}
    assert set(got) == {"catalog", "queries", "judgments"}
    assert got["catalog"].digest == "a" * 32 and got["queries"].digest == "b" * 32
    assert got["catalog"].source_type == "local"
    assert (tmp_path / "items.csv").as_uri() in got["catalog"].source
    assert got["queries"].source_type == "code" and "generated" in got["queries"].source
    assert '"num_rows": 2' in got["catalog"].profile
    assert '"language"' in got["queries"].schema and '"grade"' in got["judgments"].schema
    # The runs table's dataset search finds the run by digest.
    found = t.client.search_runs([t.experiment_id], filter_string=f"dataset.digest = '{'a' * 32}'")
    assert [r.info.run_id for r in found] == [run]


def test_dataset_inputs_do_not_touch_rows():
    """A million-row catalog is described, not converted: building its inputs is instant."""
    n = 1_000_000
    ids = [f"d{i}" for i in range(n)]
    data = EvalData(
        "big",
        Catalog(ids, ids, source="catalog.parquet"),
        Queries(["q"], ["x"]),
        None,
        fingerprint={"catalog": "e" * 64, "queries": "f" * 64},
    )
    t0 = time.perf_counter()
    inputs = dataset_inputs(data)
    assert time.perf_counter() - t0 < 0.5
    assert [i.dataset.profile for i in inputs][0] == '{"num_rows": 1000000}'


def test_overrides_are_logged_plain_and_sweeps_name_runs(tmp_path):
    params = override_params(
        [r"models.openai.base_url=http\://127.0.0.1\:55000/v1", "models=[use_m3,e5_small]", "k=5"]
    )
    assert params == {
        "override.models.openai.base_url": "http://127.0.0.1:55000/v1",
        "override.models": ["use_m3", "e5_small"],
        "override.k": 5,
    }
    # Hydra's sweeper writes multirun.yaml with the sweep's own overrides before any job runs.
    (tmp_path / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task:\n"
        "    - models.e5_small.dimensions=128,256\n    - dataset=beir\n",
        encoding="utf-8",
    )
    swept = swept_keys(tmp_path)
    assert swept == {"models.e5_small.dimensions"}
    job = ["models.e5_small.dimensions=128", "dataset=beir"]
    name = run_name("demo: use_m3 vs e5_small", job, swept)
    assert name == "demo: use_m3 vs e5_small [models.e5_small.dimensions=128]"
    assert run_name("demo: a vs b", job, set()) == "demo: a vs b"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_of_dead_processes_are_killed_at_next_start(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    t = Tracker(uri, "stale")
    mine = process_tags()
    dead = {**mine, PID_TAG: str(_dead_pid()), PID_START_TAG: ""}
    recycled = {**mine, PID_START_TAG: "1"}  # our pid, another process's start time
    client = t.client
    runs = {
        name: client.create_run(t.experiment_id, tags=tags, run_name=name).info.run_id
        for name, tags in [("dead", dead), ("recycled", recycled), ("alive", mine)]
    }
    other_host = client.create_run(
        t.experiment_id, tags={**dead, "evalkit.host": "elsewhere"}
    ).info.run_id
    Tracker(uri, "stale")  # the next start
    status = {n: client.get_run(r).info.status for n, r in runs.items()}
    assert status == {"dead": "KILLED", "recycled": "KILLED", "alive": "RUNNING"}
    assert "ended without closing the run" in client.get_run(runs["dead"]).data.tags[END_REASON_TAG]
    assert client.get_run(other_host).info.status == "RUNNING"  # not ours to judge


def test_abort_ends_open_runs_and_manifest_records_everything(tmp_path):
    t = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "abort", manifest=tmp_path / MANIFEST_FILE)
    parent = t.start_parent("p")
    child = t.start_child(parent, "v")
    done = t.start_child(parent, "w")
    t.log_metrics(done, {"ndcg_at_10": 0.25})
    t.finish(done)
    t.abort("KILLED")
    status = {r: t.client.get_run(r).info.status for r in (parent, child, done)}
    assert status == {parent: "KILLED", child: "KILLED", done: "FINISHED"}
    doc = read_manifest(tmp_path / MANIFEST_FILE)
    assert [(r["name"], r["status"]) for r in doc["runs"]] == [
        ("p", "KILLED"),
        ("v", "KILLED"),
        ("w", "FINISHED"),
    ]
    assert doc["runs"][2]["metrics"] == {"ndcg_at_10": 0.25}
    assert doc["runs"][1]["tags"]["evalkit.pid"] == process_tags()["evalkit.pid"]


def test_unreachable_tracking_server_fails_in_seconds():
    port = free_port()  # nothing listens there
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        Tracker(f"http://127.0.0.1:{port}", "x")
    assert time.perf_counter() - t0 < 15
    message = str(err.value)
    assert "\n" not in message and f"127.0.0.1:{port}" in message and "unreachable" in message


def test_unreachable_server_cli_exits_1_with_one_line(tmp_path):
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "evalkit.cli",
            "tracking=server",
            f"tracking.uri=http://127.0.0.1:{port}",
            f"hydra.run.dir={tmp_path / 'out'}",
            "models=[use_m3]",
        ],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert time.perf_counter() - t0 < 60
    errors = [line for line in proc.stderr.splitlines() if "evalkit:" in line]
    assert len(errors) == 1 and "unreachable" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_postgresql_uri_without_driver_says_what_to_write(tmp_path):
    try:
        import psycopg  # noqa: F401

        pytest.skip("psycopg 3 is installed: postgresql:// URIs work here")
    except ImportError:
        pass
    with pytest.raises(ConfigError) as err:
        Tracker(f"postgresql://nobody@127.0.0.1:{free_port()}/mlflow", "x")
    assert "postgresql+psycopg2://" in str(err.value) and "\n" not in str(err.value)


def test_retries_and_failed_requests_are_counted():
    with FaultServer(dim=8) as srv:
        srv.push("429:0.01", "500", "ok")
        version = OpenAIEmbedder(
            "faulty",
            base_url=srv.base_url,
            model="fault-model",
            batch_size=4,
            concurrency=1,
            retry_initial_s=0.01,
        )
        res = embed_texts(version, ["a", "b", "c"], "document", progress=False)
    assert (res.n_retries, res.n_failed, res.n_requests) == (2, 2, 1)
    assert len(srv.embedding_requests) == 3


def test_task_runs_lists_last_evaluations(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    t = Tracker(uri, "listed")
    ids = []
    for i, verdict in enumerate(["PASS", "BLOCK"]):
        parent = t.start_parent(f"adi: use_m3 vs e5_small #{i}", tags={"evalkit.dataset": "adi"})
        t.log_params(parent, {"versions": ["use_m3", "e5_small"]})
        for name, ndcg in (("use_m3", 0.4 + i), ("e5_small", 0.3 + i)):
            child = t.start_child(parent, name, tags={"evalkit.model_version": name})
            t.log_metrics(child, {"ndcg_at_10": ndcg})
            t.finish(child)
        t.set_tags(parent, {"evalkit.verdict": verdict})
        t.finish(parent)
        ids.append(parent)
        time.sleep(0.01)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "evalkit.cli",
            "task=runs",
            f"tracking.uri={uri}",
            "tracking.experiment=listed",
            "runs.limit=1",
            f"hydra.run.dir={tmp_path / 'out'}",
        ],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert ids[1] in out and ids[0] not in out  # newest first, runs.limit honoured
    assert "#1" in out and "BLOCK" in out and "1.4000 / 1.3000" in out
    assert "use_m3, e5_small" in out and "adi" in out and "ndcg_at_10" in out
    # A store that does not exist is not created by reading it.
    missing = tmp_path / "none.db"
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", "task=runs", f"tracking.uri=sqlite:///{missing}",
         f"hydra.run.dir={tmp_path / 'out2'}"],
        cwd=REPO, env=offline_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and not missing.exists()
    assert "no MLflow store there yet" in proc.stderr


def test_docs_python_snippet_works_from_the_repo_root(tmp_path):
    """The docs' search_runs snippet (docs/how-to/mlflow.md), pasted into a Python started where
    mlruns/ is."""
    page = (REPO / "docs" / "how-to" / "mlflow.md").read_text(encoding="utf-8")
    start = page.index("In Python, set the tracking URI first")
    block = page[start:].split("```python\n", 1)[1].split("```", 1)[0]
    t = Tracker(f"sqlite:///{tmp_path}/mlruns/mlflow.db", "evalkit")
    parent = t.start_parent("adi: use_m3 vs e5_small")
    t.log_metrics(parent, {"delta_ndcg_at_10": -0.25})
    t.set_tags(parent, {"evalkit.verdict": "BLOCK"})
    t.finish(t.start_child(parent, "use_m3"))
    t.finish(parent)
    proc = subprocess.run(
        [sys.executable, "-c", block],
        cwd=tmp_path,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "adi: use_m3 vs e5_small" in proc.stdout and "BLOCK" in proc.stdout
    assert "-0.25" in proc.stdout and proc.stdout.count("use_m3") == 1  # parents only
    assert not (tmp_path / "mlflow.db").exists()  # no stray store


def test_click_log_is_a_dataset_input(tmp_path):
    import dataclasses

    import numpy as np

    from evalkit.data.click_log import ClickLog

    log_ = ClickLog(
        ["q1", "q1"],
        ["d1", "d2"],
        clicks=np.array([3.0, 1.0]),
        impressions=np.array([10.0, 10.0]),
        source="simulated:pbm",
    )
    data = dataclasses.replace(
        _data(tmp_path),
        clicks=log_,
        fingerprint={**_data(tmp_path).fingerprint, "clicks": "9" * 64},
    )
    [clicks] = [i for i in dataset_inputs(data) if i.tags[0].value == "clicks"]
    assert clicks.dataset.name == "toy/clicks" and clicks.dataset.digest == "9" * 32
    assert '"impressions"' in clicks.dataset.schema and '"num_rows": 2' in clicks.dataset.profile
