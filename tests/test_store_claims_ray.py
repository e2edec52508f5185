"""A 3-job sweep with Hydra's Ray launcher on a cold store sends each text once (issue 26,
item 9): the jobs run as Ray workers on this machine and coordinate through the store's claim
files, as joblib jobs do (``tests/test_store_claims.py``)."""

from __future__ import annotations

import pytest

from .fault_server import FaultServer
from .test_store_claims import DIM, sent_texts, sweep_runs

pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')

pytestmark = pytest.mark.slow


def test_a_three_job_ray_sweep_on_a_cold_store_sends_each_text_once(tmp_path, shared_data):
    with FaultServer(dim=DIM, default="slow:0.5") as server:
        res, children = sweep_runs(
            tmp_path,
            shared_data,
            server,
            "hydra/launcher=ray_local",
            "hydra.launcher.ray.init.num_cpus=3",  # the three jobs at once
        )
        sent = sent_texts(server)
    assert res.returncode in (0, 3, 4), res.stderr[-3000:]
    assert sent and set(sent.values()) == {1}, sent.most_common(3)
    assert len(children) == 3
    assert sum(c.data.metrics["embed_requests"] for c in children) == len(server.embedding_requests)
