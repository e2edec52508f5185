"""MLflow tracking: one parent run per evaluation, one nested child run per model version.

An explicit :class:`mlflow.MlflowClient` (no fluent global run stack), so sweep jobs never log
into each other's runs.  A SQLite store keeps its artifacts beside the database.

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
import itertools
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
from mlflow.entities import DatasetInput, Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from evalkit.errors import ConfigError
from evalkit.redact import SECRET_KEY, redact, redacted_copy
from evalkit.track.manifest import RunManifest
from evalkit.track.stale import END_REASON_TAG, mark_stale_runs, process_tags
from evalkit.track.timeout import CHECK_TIMEOUT_S

log = logging.getLogger(__name__)

_BATCH = 500  # MLflow's log_batch limit is 1000 metrics / 100 params per call
_PARAM_BATCH = 100
_MAX_PARAM_LEN = 6000
#: MLflow 3's UI opens an experiment tagged as model development on its runs table (not on
#: the GenAI traces overview).
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
UI_WORKFLOW = "machine_learning"


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


def check_reachable(uri: str, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """An ``http(s)://`` tracking server answers within ``timeout_s`` (one try, where MLflow's
    client retries for minutes), or ConfigError; a connected server gets twice ``timeout_s``."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    started = time.monotonic()
    try:
        resp = http_request(
            get_default_host_creds(uri),
            "/api/2.0/mlflow/experiments/search",
            "POST",
            max_retries=0,
            timeout=(timeout_s, 2 * timeout_s),  # (connect, read)
            raise_on_status=False,
            json={"max_results": 1},
        )
    except Exception as exc:
        cause = exc.__cause__ or exc
        if _read_timed_out(exc):
            raise ConfigError(
                f"MLflow tracking server tracking.uri={uri!r} accepted the connection but did "
                f"not answer within {2 * timeout_s:g} s (twice tracking.timeout_s={timeout_s:g}): "
                "a hung or overloaded server; check it, or raise tracking.timeout_s"
            ) from exc
        raise ConfigError(
            f"MLflow tracking server tracking.uri={uri!r} is unreachable "
            f"({type(cause).__name__}, no answer within {timeout_s:g} s): start it "
            "(mlflow server --host 127.0.0.1 ...) or use tracking=sqlite"
        ) from exc
    elapsed = time.monotonic() - started
    if elapsed > timeout_s:
        raise ConfigError(
            f"MLflow tracking server tracking.uri={uri!r} is up but slow: it answered in "
            f"{elapsed:.1f} s, over tracking.timeout_s={timeout_s:g}; raise tracking.timeout_s "
            f"(e.g. tracking.timeout_s={math.ceil(2 * elapsed)})"
        )
    host_problem = host_header_refused(uri, resp.status_code, resp.text)
    if host_problem:
        raise ConfigError(host_problem)
    if resp.status_code >= 500 or resp.status_code in (401, 403, 404):
        raise ConfigError(
            f"MLflow tracking server tracking.uri={uri!r} answered HTTP {resp.status_code} "
            "(expected an MLflow tracking server, with credentials in MLFLOW_TRACKING_TOKEN or "
            "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD if it needs them)"
        )


def _read_timed_out(exc: BaseException) -> bool:
    """Whether a request failed waiting for the answer (connected: not a down server)."""
    from requests.exceptions import ReadTimeout
    from urllib3.exceptions import ReadTimeoutError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ReadTimeout | ReadTimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Read timed out" in str(exc)


def host_header_refused(uri: str, status: int, body: str) -> str:
    """The message for MLflow's DNS-rebinding guard (``403 Invalid Host header``) refusing the
    host name in ``uri``, or "".

    >>> host_header_refused("http://mlflow.lan:5000", 403, "Invalid Host header")[:60]
    "MLflow tracking server tracking.uri='http://mlflow.lan:5000'"
    >>> host_header_refused("http://h:5000", 403, "Permission denied")
    ''
    """
    if status != 403 or "invalid host header" not in (body or "").lower():
        return ""
    from urllib.parse import urlsplit

    netloc = urlsplit(uri).netloc.rsplit("@", 1)[-1] or uri
    return (
        f"MLflow tracking server tracking.uri={uri!r} answered HTTP 403 Invalid Host header: "
        f"its DNS-rebinding guard does not accept the host name {netloc!r} (not a credentials "
        f"problem). Start the server with --allowed-hosts {netloc} (comma-separated host:port "
        "names clients use), or reach it by the address it listens on"
    )


def short_error(exc: BaseException) -> str:
    """One short line for a store failure (MLflow's messages nest urllib3's whole retry story).

    >>> short_error(OSError("API request to http://h/api failed ... [Errno 111] Connection refused"))
    'connection refused (the server is down?)'
    """
    text = str(exc)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused (the server is down?)"
    if "timed out" in text.lower():
        return "request timed out"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the server closed the connection"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]


def _driver_hint(uri: str, exc: BaseException) -> str:
    """A store URI whose database driver is not installed: what to install / write instead."""
    text = str(exc)
    if "No module named" not in text:
        return ""
    if uri.startswith("postgresql://") or uri.startswith("postgres://"):
        return (
            " (SQLAlchemy's default PostgreSQL driver is psycopg 3: write "
            'postgresql+psycopg2://... with pip install -e ".[server]")'
        )
    if uri.startswith(("postgresql+", "mysql")):
        return ' (install the database driver: pip install -e ".[server]")'
    return ""


class Tracker:
    """:class:`MlflowClient` for evalkit's run layout; every call is also recorded in ``manifest``,
    and a store failing mid-run makes it **offline** (one warning, :attr:`error`: what failed) for
    ``evalkit task=log`` to log the run later.  Param / tag values and text artifacts are redacted.
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        manifest: str | Path | None = None,
        clean_stale: bool = True,
        timeout_s: float = CHECK_TIMEOUT_S,
    ) -> None:
        self.uri = uri
        self.experiment = experiment
        self.error: str | None = None
        self.manifest = RunManifest(Path(manifest), uri, experiment) if manifest else None
        self._open: list[str] = []
        self._offline_ids = itertools.count(1)
        self._tags = process_tags()
        if uri.startswith(("http://", "https://")):
            check_reachable(uri, timeout_s)
        if not uri.startswith("sqlite:///"):
            self.experiment_id = self._experiment(experiment)
        else:
            db = Path(uri.removeprefix("sqlite:///"))
            lock_file = db.parent / f".{db.name}.lock"
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
                if not os.access(db.parent, os.W_OK):
                    raise PermissionError(13, "Permission denied", str(db.parent))
                lock_handle = open(lock_file, "w")  # noqa: SIM115 - closed by the with below
            except OSError as err:
                raise ConfigError(
                    f"tracking.uri={uri!r}: cannot write the store folder "
                    f"{err.filename or db.parent} ({err.strerror or err}) (expected a writable "
                    "folder for the SQLite store and its artifacts; or tracking=none)"
                ) from err
            # MLflow's schema migration of a fresh SQLite store is not safe for parallel jobs.
            with lock_handle as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                self.experiment_id = self._experiment(experiment)
        if clean_stale:
            try:
                mark_stale_runs(self.client, self.experiment_id)
            except Exception as exc:  # never block an evaluation on housekeeping
                log.warning("could not check for runs left RUNNING: %s", exc)

    def _experiment(self, name: str) -> str:
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                location = None
                if self.uri.startswith("sqlite:///"):
                    db = Path(self.uri.removeprefix("sqlite:///"))
                    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
                    location = (db.parent.resolve() / "artifacts" / safe).as_uri()
                return self.client.create_experiment(
                    name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
                )
            kind = exp.tags.get(EXPERIMENT_KIND_TAG, "")
            if not kind or kind.endswith("inferred") or kind == "no_inferred_type":
                self.client.set_experiment_tag(
                    exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                )
            return exp.experiment_id
        except Exception as exc:  # MLflow raises many types for a bad URI / store
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"cannot open MLflow experiment {name!r} at tracking.uri={self.uri!r}: {first}"
                f"{_driver_hint(self.uri, exc)}"
            ) from exc

    @property
    def offline(self) -> bool:
        """True once the store failed: calls are only recorded in the manifest."""
        return self.error is not None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.error is not None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            self.error = f"MLflow {what} failed at tracking.uri={self.uri}: {short_error(exc)}"
            log.warning("%s; continuing without tracking (the run stays on disk)", self.error)
            return None

    def _create(self, name: str, tags: Mapping[str, str] | None, parent: str | None) -> str:
        tags = {
            **({MLFLOW_PARENT_RUN_ID: parent} if parent else {}),
            MLFLOW_RUN_NAME: name,
            **self._tags,
            **(tags or {}),
        }
        tags = {k: redact(str(v)) for k, v in tags.items()}
        run = self._call(
            "starting a run",
            self.client.create_run,
            self.experiment_id,
            run_name=name,
            tags=tags,
        )
        run_id = run.info.run_id if run is not None else f"offline-{next(self._offline_ids)}"
        if self.manifest is not None:
            self.manifest.add_run(run_id, name, parent, tags)
        self._open.append(run_id)
        return run_id

    def start_parent(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        return self._create(name, tags, None)

    def start_child(self, parent_id: str, name: str, tags: Mapping[str, str] | None = None) -> str:
        return self._create(name, tags, parent_id)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        items = [Param(mlflow_key(k), redact(_param_value(v))) for k, v in flatten(params).items()]
        self._send(run_id, "logging params", "params", items, _PARAM_BATCH)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        items = [
            Metric(mlflow_key(k), float(v), now, 0)
            for k, v in metrics.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        ]
        self._send(run_id, "logging metrics", "metrics", items, _BATCH)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        items = [RunTag(k, redact(str(v))) for k, v in tags.items()]
        self._send(run_id, "setting tags", "tags", items, max(len(items), 1))

    def _send(self, run_id: str, what: str, kind: str, items: list[Any], batch: int) -> None:
        if self.manifest is not None:
            self.manifest.update(run_id, kind, {i.key: i.value for i in items})
        for i in range(0, len(items), batch):
            self._call(what, self.client.log_batch, run_id, **{kind: items[i : i + batch]})

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        if self.manifest is not None:
            self.manifest.add_artifact(run_id, Path(path), artifact_path)
        if self.offline:
            return
        with redacted_copy(path) as sent:
            self._call(
                "logging an artifact", self.client.log_artifact, run_id, str(sent), artifact_path
            )

    def log_inputs(self, run_id: str, inputs: list[DatasetInput]) -> None:
        """Dataset inputs (:func:`evalkit.track.datasets.dataset_inputs`) of a run."""
        if self.manifest is not None:
            self.manifest.add_inputs(run_id, [input_record(i) for i in inputs])
        if inputs:
            self._call("logging dataset inputs", self.client.log_inputs, run_id, datasets=inputs)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        if self.manifest is not None:
            self.manifest.finish(run_id, status)
        if run_id in self._open:
            self._open.remove(run_id)
        self._call("ending a run", self.client.set_terminated, run_id, status)

    def abort(self, status: str = "FAILED", reason: str = "") -> None:
        """End every run this tracker started and did not finish (children first), tagged
        ``evalkit.end_reason`` with ``reason`` when given."""
        for run_id in reversed(list(self._open)):
            if reason:
                self.set_tags(run_id, {END_REASON_TAG: reason})
            self.finish(run_id, status)

    def ui_url(self) -> str:
        """Where the MLflow UI shows this experiment's runs table."""
        return self._ui_link("")

    def run_url(self, run_id: str) -> str:
        return self._ui_link(f"/runs/{run_id}")

    def _ui_link(self, path: str) -> str:
        """``workflowType`` selects the model-training view; a local store: after ``mlflow ui``."""
        remote = self.uri.startswith(("http://", "https://"))
        base = self.uri.rstrip("/") if remote else "http://127.0.0.1:5000"
        link = f"{base}/#/experiments/{self.experiment_id}{path}?workflowType={UI_WORKFLOW}"
        return link if remote else f"{link} (after: mlflow ui --backend-store-uri {self.uri})"

    def download(self, run_id: str, artifact_path: str, dst: str | Path) -> Path:
        return Path(self.client.download_artifacts(run_id, artifact_path, str(dst)))


#: The fields of an MLflow dataset the manifest stores (``schema`` and ``profile`` optional).
_DATASET_FIELDS = ("name", "digest", "source_type", "source", "schema", "profile")


def input_record(item: DatasetInput) -> dict[str, Any]:
    """A :class:`DatasetInput` as plain data (what the manifest stores)."""
    fields = {f: getattr(item.dataset, f) for f in _DATASET_FIELDS}
    return {**fields, "tags": {t.key: t.value for t in item.tags}}


def input_from_record(rec: Mapping[str, Any]) -> DatasetInput:
    """Inverse of :func:`input_record`."""
    from mlflow.entities import Dataset, InputTag

    ds = Dataset(**{f: rec[f] if f in _DATASET_FIELDS[:4] else rec.get(f) for f in _DATASET_FIELDS})
    return DatasetInput(ds, tags=[InputTag(k, v) for k, v in rec.get("tags", {}).items()])
