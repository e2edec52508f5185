"""Log a finished evaluation's run dir to MLflow (``evalkit task=log``: :mod:`evalkit.tasks.log`).

Recreates the runs recorded in ``<run_dir>/mlflow_runs.json`` and tags the failed attempt's runs
(tags: docs/reference/mlflow.md).

    evalkit task=log run_dir=outputs/2026-11-29/10-00-00
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from evalkit.errors import ConfigError
from evalkit.redact import redact, redacted_copy
from evalkit.track.manifest import MANIFEST_FILE, read_manifest
from evalkit.track.mlflow_tracker import _BATCH, _PARAM_BATCH, Tracker, input_from_record
from evalkit.track.stale import END_REASON_TAG, process_tags
from evalkit.track.timeout import CHECK_TIMEOUT_S

LOGGED_FROM_TAG, LOGGED_AS_TAG = "evalkit.logged_from", "evalkit.logged_as"
ATTEMPT_TAG, FAILED_ATTEMPT = "evalkit.attempt", "failed"


def log_run_dir(
    run_dir: str | Path,
    uri: str | None = None,
    experiment: str | None = None,
    timeout_s: float = CHECK_TIMEOUT_S,
) -> dict[str, str]:
    """Log the runs recorded in ``run_dir`` to MLflow; manifest id -> new run id."""
    run_dir = Path(run_dir)
    doc = read_manifest(run_dir / MANIFEST_FILE)
    uri = uri or doc["tracking_uri"]
    experiment = experiment or doc["experiment"]
    # No stale-run clean-up here: it would end the failed attempt's runs KILLED (their process
    # is gone) before they are ended FAILED below.
    tracker = Tracker(uri, experiment, clean_stale=False, timeout_s=timeout_s)
    client = tracker.client
    ids: dict[str, str] = {}
    for rec in doc["runs"]:
        missing = [
            a["path"]
            for a in rec.get("artifacts", [])
            if not (run_dir / a["path"]).is_file() and not Path(a["path"]).is_file()
        ]
        if missing:
            raise ConfigError(
                f"{run_dir / MANIFEST_FILE}: run {rec['name']!r} lists artifact {missing[0]} "
                f"that is not in {run_dir} (expected the run dir as the evaluation left it)"
            )
    for rec in doc["runs"]:
        tags = {k: redact(str(v)) for k, v in rec.get("tags", {}).items()}
        if rec.get("parent"):
            if rec["parent"] not in ids:
                raise ConfigError(
                    f"{run_dir / MANIFEST_FILE}: run {rec['name']!r} names parent "
                    f"{rec['parent']!r}, which is not recorded before it"
                )
            tags[MLFLOW_PARENT_RUN_ID] = ids[rec["parent"]]
        tags.update(process_tags())
        tags[LOGGED_FROM_TAG] = str(run_dir.resolve())
        run = client.create_run(
            tracker.experiment_id,
            start_time=rec.get("start_time"),
            tags=tags,
            run_name=rec["name"],
        )
        new = run.info.run_id
        ids[rec["id"]] = new
        _log_contents(client, new, rec, run_dir)
        recorded = rec.get("status") or "FINISHED"
        died = recorded == "RUNNING"  # the process died before ending it
        client.set_terminated(new, "KILLED" if died else recorded, end_time=rec.get("end_time"))
        _end_original(client, rec["id"], new, recorded)
    return ids


def _log_contents(client: Any, run_id: str, rec: dict[str, Any], run_dir: Path) -> None:
    params = [Param(k, redact(str(v))) for k, v in rec.get("params", {}).items()]
    for i in range(0, len(params), _PARAM_BATCH):
        client.log_batch(run_id, params=params[i : i + _PARAM_BATCH])
    stamp = rec.get("end_time") or int(time.time() * 1000)
    metrics = [Metric(k, float(v), stamp, 0) for k, v in rec.get("metrics", {}).items()]
    for i in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + _BATCH])
    if rec.get("inputs"):
        client.log_inputs(run_id, datasets=[input_from_record(r) for r in rec["inputs"]])
    for art in rec.get("artifacts", []):
        path = run_dir / art["path"]
        path = path if path.is_file() else Path(art["path"])
        with redacted_copy(path) as sent:
            client.log_artifact(run_id, str(sent), art.get("artifact_path"))


def _end_original(client: Any, original: str, new: str, recorded: str) -> None:
    """Tag the failed attempt's run, if this store has it; FAILED when it was left unfinished
    (RUNNING, or KILLED by the stale-run clean-up while ``recorded`` in the run dir is not)."""
    if original.startswith("offline-"):
        return
    try:
        run = client.get_run(original)
    except Exception:
        return  # created in another store, or never reached this one
    if run.data.tags.get(LOGGED_AS_TAG):
        return  # logged before: the first replacement stays the one named
    client.log_batch(
        original, tags=[RunTag(LOGGED_AS_TAG, new), RunTag(ATTEMPT_TAG, FAILED_ATTEMPT)]
    )
    status = run.info.status
    ended_as_stale = status == "KILLED" and END_REASON_TAG in run.data.tags
    if status == "RUNNING" or (ended_as_stale and recorded != "KILLED"):
        client.set_terminated(original, "FAILED")
