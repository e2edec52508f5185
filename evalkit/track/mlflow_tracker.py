"""MLflow tracking: one parent run per evaluation, one nested child run per model version.

Uses an explicit :class:`mlflow.MlflowClient` (no fluent global run stack), so several sweep jobs
in one process or across processes never log into each other's runs.  With the embedded
SQLite store (``sqlite:///mlruns/mlflow.db``) artifacts go beside the database, under ``mlruns/``.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> t = Tracker(f"sqlite:///{d}/mlflow.db", "doc")
>>> parent = t.start_parent("eval", tags={"evalkit.dataset": "demo"})
>>> child = t.start_child(parent, "e5_small", tags={"evalkit.model_version": "e5_small"})
>>> t.log_metrics(child, {"ndcg_at_10": 0.5})
>>> t.finish(child); t.finish(parent)
>>> t.client.get_run(child).data.metrics
{'ndcg_at_10': 0.5}
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from evalkit.errors import ConfigError

log = logging.getLogger(__name__)

#: Keys whose values are never sent to MLflow, whatever the config says.
SECRET_KEY = re.compile(r"(api_key|apikey|token|secret|password|authorization)$", re.IGNORECASE)
_BATCH = 500  # MLflow's log_batch limit is 1000 metrics / 100 params per call
_PARAM_BATCH = 100
_MAX_PARAM_LEN = 6000


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"a.b.c": value}``; secret-looking keys are dropped.

    >>> flatten({"model": {"name": "x", "api_key": "s", "chunk": {"size": 3}}})
    {'model.name': 'x', 'model.chunk.size': 3}
    """
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if SECRET_KEY.search(str(k)):
            continue
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. :/]")


def mlflow_key(key: str) -> str:
    """A param / metric key MLflow accepts (alphanumerics, ``_ - . : /`` and space).

    >>> mlflow_key("override.+models.e5=x")
    'override._models.e5_x'
    """
    return _BAD_KEY_CHARS.sub("_", key)


def _param_value(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, (list, tuple, dict)) else str(v)
    return s[:_MAX_PARAM_LEN]


class Tracker:
    """Thin wrapper over :class:`MlflowClient` for evalkit's run layout."""

    def __init__(self, uri: str, experiment: str) -> None:
        self.uri = uri
        if not uri.startswith("sqlite:///"):
            self.client = MlflowClient(tracking_uri=uri)
            self.experiment_id = self._experiment(experiment)
            return
        db = Path(uri.removeprefix("sqlite:///"))
        lock_file = db.parent / f".{db.name}.lock"
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(db.parent, os.W_OK):
                raise PermissionError(13, "Permission denied", str(db.parent))
            lock_handle = open(lock_file, "w")  # noqa: SIM115 - closed by the with below
        except OSError as err:
            raise ConfigError(
                f"tracking.uri={uri!r}: cannot write the store folder {err.filename or db.parent}"
                f" ({err.strerror or err}) (expected a writable folder for the SQLite store and "
                "its artifacts; or tracking=none)"
            ) from err
        # Parallel sweep jobs (joblib, SLURM arrays) must not create / migrate one fresh SQLite
        # store at once: MLflow's schema migration (run when a client opens it) is not safe
        # under concurrency.
        with lock_handle as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.client = MlflowClient(tracking_uri=uri)
                self.experiment_id = self._experiment(experiment)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _experiment(self, name: str) -> str:
        try:
            exp = self.client.get_experiment_by_name(name)
            if exp is not None:
                return exp.experiment_id
            location = None
            if self.uri.startswith("sqlite:///"):
                db = Path(self.uri.removeprefix("sqlite:///"))
                safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
                location = (db.parent.resolve() / "artifacts" / safe).as_uri()
            return self.client.create_experiment(name, artifact_location=location)
        except Exception as exc:  # MLflow raises many types for a bad URI / store
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"cannot open MLflow experiment {name!r} at tracking.uri={self.uri!r}: {first}"
            ) from exc

    def start_parent(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={MLFLOW_RUN_NAME: name, **(tags or {})}
        )
        return run.info.run_id

    def start_child(self, parent_id: str, name: str, tags: Mapping[str, str] | None = None) -> str:
        all_tags = {MLFLOW_PARENT_RUN_ID: parent_id, MLFLOW_RUN_NAME: name, **(tags or {})}
        return self.client.create_run(self.experiment_id, run_name=name, tags=all_tags).info.run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        items = [Param(mlflow_key(k), _param_value(v)) for k, v in flatten(params).items()]
        for i in range(0, len(items), _PARAM_BATCH):
            self.client.log_batch(run_id, params=items[i : i + _PARAM_BATCH])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        items = [
            Metric(mlflow_key(k), float(v), now, 0)
            for k, v in metrics.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        ]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, metrics=items[i : i + _BATCH])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        if items:
            self.client.log_batch(run_id, tags=items)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status)

    def download(self, run_id: str, artifact_path: str, dst: str | Path) -> Path:
        return Path(self.client.download_artifacts(run_id, artifact_path, str(dst)))
