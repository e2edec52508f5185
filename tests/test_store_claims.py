"""Jobs sharing a cold vector store embed each text once (issue 26, item 9).

A parallel sweep on a cold store embedded the same texts once per job (3 jobs: 3x the calls).
Now a job claims the texts it embeds (``evalkit.embed.store.Claims``: a lock file created with O_EXCL,
a claim file per job with a heartbeat), and a job missing texts another job has claimed waits
for them and reads them from the store.  The server is a real OpenAI-compatible HTTP server on
127.0.0.1 (``tests.fault_server``) that records every text it is sent; it answers slowly, so the
jobs overlap.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from mlflow import MlflowClient

import evalkit.embed.store as claims_mod
from evalkit.embed import embed_texts
from evalkit.embed.cache import VectorCache, text_key_array
from evalkit.embed.openai_backend import OpenAIEmbedder
from evalkit.embed.store import Claims, inventory

from .cli import REPO, offline_env, run_evalkit
from .fault_server import FaultServer

DIM = 16


def sent_texts(server: FaultServer) -> collections.Counter[str]:
    return collections.Counter(t for r in server.embedding_requests for t in r.inputs)


def texts(n: int = 120) -> list[str]:
    return [f"shared catalog text {i}" for i in range(n)]


def version(base_url: str, batch_size: int = 10) -> OpenAIEmbedder:
    return OpenAIEmbedder("served", base_url=base_url, model="fault-model",
                          batch_size=batch_size, concurrency=2)  # fmt: skip


JOB = textwrap.dedent(
    """
    import pathlib, sys, time
    sys.path.insert(0, sys.argv[3])
    from tests.test_store_claims import texts, version
    from evalkit.embed import embed_texts

    root, n = pathlib.Path(sys.argv[1]), int(sys.argv[4])
    (root / f"ready-{sys.argv[5]}").touch()
    while not (root / "go").exists():  # all jobs start together
        time.sleep(0.01)
    r = embed_texts(version(sys.argv[2]), texts(n), "document", root / "cache", progress=False)
    print(r.n_requests, r.n_cached)
    """
)


def start_together(tmp_path, server: FaultServer, sizes: list[int]) -> list[tuple[int, int]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", JOB, str(tmp_path), server.base_url, str(REPO), str(n), str(j)],
            cwd=REPO,
            env=offline_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for j, n in enumerate(sizes)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(procs):
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (tmp_path / "go").touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        requests, cached = out.split()
        results.append((int(requests), int(cached)))
    return results


def test_three_jobs_on_a_cold_store_send_each_text_once(tmp_path):
    with FaultServer(dim=DIM, default="slow:0.3") as server:
        results = start_together(tmp_path, server, [120, 120, 120])
        sent = sent_texts(server)
    assert sorted(sent) == sorted(texts()) and set(sent.values()) == {1}
    assert sum(r for r, _ in results) == 12  # 120 texts in batches of 10, once
    assert sorted(c for _, c in results).count(120) >= 1  # someone read everything back
    (summary,) = inventory(tmp_path / "cache")
    assert summary.rows == 120
    assert not [n for n in os.listdir(tmp_path / "cache" / summary.hash) if "claim" in n]


def test_jobs_with_overlapping_texts_embed_the_shared_ones_once(tmp_path):
    with FaultServer(dim=DIM, default="slow:0.2") as server:
        start_together(tmp_path, server, [60, 120, 90])
        sent = sent_texts(server)
    assert sorted(sent) == sorted(texts()) and set(sent.values()) == {1}


def test_a_killed_jobs_claim_is_taken_over_at_once(tmp_path):
    """A claim whose process on this machine is gone (kill -9) does not hold anyone up."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    spec_texts = texts(20)
    with FaultServer(dim=DIM) as server:
        model = version(server.base_url)
        with VectorCache(tmp_path, model.cache_spec("document")) as cache:
            claim = Claims(cache.folder)
        claim.name = f".claim~{claims_mod.temp_name('x').split('~')[1]}~{dead.pid}~dead"
        claim.folder.write_array(claim.name + ".npy", text_key_array(spec_texts), fsync=False)
        started = time.monotonic()
        res = embed_texts(model, spec_texts, "document", tmp_path, progress=False)
        assert time.monotonic() - started < claims_mod.STALE_S / 2
        assert res.n_requests == 2 and sorted(sent_texts(server)) == sorted(spec_texts)
    assert not any(n.startswith(".claim~") for n in claim.folder.names())  # removed as stale


def test_a_claim_whose_heartbeat_stopped_expires(tmp_path, monkeypatch):
    """Another machine's claim (its process cannot be checked) expires once its heartbeat has
    not moved for STALE_S of the waiting job's own clock; a live one is waited for."""
    monkeypatch.setattr(claims_mod, "STALE_S", 1.0)
    spec_texts = texts(20)
    with FaultServer(dim=DIM) as server:
        model = version(server.base_url)
        with VectorCache(tmp_path, model.cache_spec("document")) as cache:
            frozen = Claims(cache.folder)
        frozen.name = ".claim~other-host~1~frozen"
        frozen.folder.write_array(frozen.name + ".npy", text_key_array(spec_texts), fsync=False)
        frozen.folder.write_bytes(frozen.name + ".beat", b"7", fsync=False)
        started = time.monotonic()
        res = embed_texts(model, spec_texts, "document", tmp_path, progress=False)
        waited = time.monotonic() - started
        assert 1.0 <= waited < 10 and res.n_requests == 2
        assert set(sent_texts(server).values()) == {1}


def test_a_store_on_an_fsspec_filesystem_is_coordinated_too(tmp_path):
    """Exclusive create on fsspec (mode "xb"): a second claimant finds the first one's keys."""
    url = f"memory://evalkit-claims-{tmp_path.name}"
    keys = text_key_array(texts(10))
    with VectorCache(url, {"backend": "claims"}) as cache:
        first, second = Claims(cache.folder), Claims(cache.folder)
        assert first.take(keys[:6]).all()
        mine = second.take(keys)
        np.testing.assert_array_equal(mine, [False] * 6 + [True] * 4)
        first.release()
        second.wait(keys[:6])  # returns: the claim is gone
        second.release()
        assert not [n for n in cache.folder.names() if n.startswith(".claim")]


def sweep_runs(tmp_path, shared_data, server: FaultServer, *launcher: str):
    """A 3-job sweep over ADI that shares one spec (a client-side ``dimensions`` sweep) on a cold
    store, through ``launcher``: the CLI's result and the jobs' child runs."""
    res = run_evalkit(
        "--multirun",
        *launcher,
        "dataset=beir",
        f"dataset.path={shared_data / 'adi'}",
        "models=[openai]",
        f"models.openai.base_url={server.base_url}",
        "models.openai.model=fault-model",
        "models.openai.batch_size=8",
        "models.openai.dimensions=8,12,16",
        "tracking.experiment=cold-sweep",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        work=tmp_path,
    )
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("cold-sweep")
    runs = client.search_runs([exp.experiment_id]) if exp else []
    # the version runs (each job's evaluation is itself nested under the sweep's run)
    return res, [r for r in runs if "evalkit.model_version" in r.data.tags]


@pytest.mark.slow
def test_a_three_job_joblib_sweep_on_a_cold_store_sends_each_text_once(tmp_path, shared_data):
    """``evalkit --multirun hydra/launcher=joblib`` with three jobs on a cold store: the server
    sees each of ADI's texts once."""
    with FaultServer(dim=DIM, default="slow:0.5") as server:
        res, children = sweep_runs(
            tmp_path, shared_data, server, "hydra/launcher=joblib", "hydra.launcher.n_jobs=3"
        )
        sent = sent_texts(server)
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    assert sent and set(sent.values()) == {1}, sent.most_common(3)
    assert len(children) == 3
    assert sum(c.data.metrics["embed_requests"] for c in children) == len(server.embedding_requests)
