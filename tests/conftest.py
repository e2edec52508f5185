"""Shared test set-up: no hub access, and the test collections shipped in ``tests/data``."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from evalkit.runtime import user_numba_dir
from tests.testdata import DATA, NAMES, collection

# Nothing may reach a model or data hub: set before any test module imports `datasets`.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
# ranx's and evalkit's numba functions compile once per machine, in the folder the `evalkit`
# command uses (evalkit.runtime.user_numba_dir), not again in every pytest-xdist worker.
os.environ.setdefault("NUMBA_CACHE_DIR", str(user_numba_dir(os.environ)))

REPO = Path(__file__).resolve().parents[1]
#: Test files that start a local Ray: one at a time, also across pytest-xdist workers.
RAY_FILES = {
    "test_engine_ray.py",
    "test_ray_catalog.py",
    "test_ray_existing.py",
    "test_store_claims_ray.py",
}


@pytest.fixture(scope="module", autouse=True)
def one_ray_at_a_time(request, tmp_path_factory):
    """The suite runs one test file per pytest-xdist worker (``--dist loadfile``, pyproject's
    addopts); a file that starts a local Ray holds a lock shared by the workers of this run, so
    two Ray clusters never start at once."""
    if request.path.name not in RAY_FILES:
        yield
        return
    lock = tmp_path_factory.getbasetemp().parent / "evalkit-ray.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``tests/data``: the test collections every test shares (Cranfield, CISI, MED, ADI in BEIR
    layout, gzip-compressed; ``<name>`` is a folder evalkit reads as ``dataset.path``)."""
    for name in NAMES:
        collection(name)  # fails, naming the folder, if the repository's copy is incomplete
    return DATA


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One embedding cache for CLI tests that do not assert cold behaviour: the cache is keyed by
    content, so sharing it is what users do and saves re-embedding ADI in every test."""
    return tmp_path_factory.mktemp("shared-embedding-cache")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of this process's own (2 CPUs, 127.0.0.1, 500 MB object store), started even
    when another Ray runs on the machine or a stale ``/tmp/ray/ray_current_cluster`` names a dead
    one (``address="local"``); stopped at the end of the module.  Skips when the optional Ray
    extra is not installed."""
    ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=500 * 1024 * 1024,
        _node_ip_address="127.0.0.1",
        logging_level="WARNING",
    )
    yield ray
    ray.shutdown()
