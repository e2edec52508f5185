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


#: The longest test files, longest first (whole-file seconds on 2 cores, pytest --durations).
#: pytest-xdist hands whole files to its workers (``--dist loadfile``) in collection order
#: (pyproject's ``--no-loadscope-reorder``; xdist's default order puts the files with the most
#: tests first, so these few-test files came last and one long file could keep a worker busy
#: after the other had finished): started first, the short files fill in at the end.  Ray
#: files (RAY_FILES, one at a time) are spread out, so two workers rarely queue for the Ray
#: lock; test_e2e_verdict.py embeds Cranfield titles into ``shared_cache`` before
#: test_reindex_stage.py reads them.  Files not listed keep their order, after these.
LONG_FILES_FIRST = (
    "test_e2e_mlflow_server.py",
    "test_faults_messages_name_the_fix.py",
    "test_e2e_verdict.py",
    "test_engine_ray.py",
    "test_e2e_online.py",
    "test_e2e_cranfield.py",
    "test_store_claims_ray.py",
    "test_e2e_sparse_judgments.py",
    "test_e2e_demo.py",
    "test_ray_existing.py",
    "test_reindex_stage.py",
    "test_e2e_sweep.py",
    "test_ray_catalog.py",
    "test_e2e_openai_server.py",
    "test_index_precision.py",
    "test_online_read.py",
    "test_e2e_baseline_run.py",
    "test_e2e_inconclusive.py",
    "test_track_mlflow.py",
    "test_faults_end_in_one_line.py",
    "test_extra_judgments.py",
    "test_store_claims.py",
    "test_probe_retries.py",
    "test_chunk_counts.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of LONG_FILES_FIRST first, in that order; every file's tests stay together
    and in their own order (a stable sort)."""
    here = Path(__file__).resolve().parent
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(
        key=lambda item: (
            rank.get(item.path.name, len(rank)) if item.path.parent == here else len(rank)
        )
    )


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


def run_root(tmp_path_factory) -> Path:
    """The folder of this pytest run that all its pytest-xdist workers share (``pytest-N``; a
    worker's own base is ``pytest-N/popen-gwK``); without xdist, the session's base folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One embedding cache for CLI tests that do not assert cold behaviour: the cache is keyed by
    content, so sharing it is what users do and saves re-embedding ADI in every test.  One folder
    for the whole run, shared by the pytest-xdist workers (a collection two files embed with the
    same model, e.g. Cranfield titles, is embedded once per run, not once per worker): the store's
    claims (``evalkit/embed/store.py``) make processes sharing a store embed each text once."""
    folder = run_root(tmp_path_factory) / "shared-embedding-cache"
    folder.mkdir(exist_ok=True)
    return folder


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
