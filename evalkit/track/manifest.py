"""``mlflow_runs.json``: everything an evaluation sent (or meant to send) to MLflow, in its run dir.

Rewritten atomically after every change, so ``evalkit task=log`` (:mod:`evalkit.track.logdir`)
can replay it later; artifact paths inside the run dir are stored relative to it.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> m = RunManifest(d / MANIFEST_FILE, "sqlite:///x.db", "evalkit")
>>> m.add_run("r1", "demo: a vs b", None, {"evalkit.dataset": "demo"})
>>> m.update("r1", "metrics", {"delta_ndcg_at_10": -0.1})
>>> m.finish("r1", "FINISHED")
>>> [(r["name"], r["metrics"], r["status"]) for r in read_manifest(d / MANIFEST_FILE)["runs"]]
[('demo: a vs b', {'delta_ndcg_at_10': -0.1}, 'FINISHED')]
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError

MANIFEST_FILE = "mlflow_runs.json"
FORMAT = 1


class RunManifest:
    """The run records of one evaluation, kept in ``path``."""

    def __init__(self, path: Path, uri: str, experiment: str) -> None:
        self.path = Path(path)
        self.doc: dict[str, Any] = {
            "format": FORMAT,
            "tracking_uri": uri,
            "experiment": experiment,
            "runs": [],
        }
        self._runs: dict[str, dict[str, Any]] = {}

    def add_run(self, run_id: str, name: str, parent: str | None, tags: dict[str, str]) -> None:
        run = {
            "id": run_id,
            "name": name,
            "parent": parent,
            "status": "RUNNING",
            "start_time": int(time.time() * 1000),
            "end_time": None,
            "tags": dict(tags),
            "params": {},
            "metrics": {},
            "artifacts": [],
            "inputs": [],
        }
        self._runs[run_id] = run
        self.doc["runs"].append(run)
        self.save()

    def update(self, run_id: str, what: str, values: dict[str, Any]) -> None:
        """Merge ``values`` into the run's ``tags`` / ``params`` / ``metrics``."""
        if run_id in self._runs:
            self._runs[run_id][what].update(values)
            self.save()

    def add_artifact(self, run_id: str, path: Path, artifact_path: str | None) -> None:
        if run_id not in self._runs:
            return
        path, here = Path(path).resolve(), self.path.parent.resolve()
        shown = str(path.relative_to(here) if path.is_relative_to(here) else path)
        self._runs[run_id]["artifacts"].append({"path": shown, "artifact_path": artifact_path})
        self.save()

    def add_inputs(self, run_id: str, inputs: list[dict[str, Any]]) -> None:
        if run_id in self._runs:
            self._runs[run_id]["inputs"].extend(inputs)
            self.save()

    def finish(self, run_id: str, status: str) -> None:
        if run_id in self._runs:
            self._runs[run_id].update(status=status, end_time=int(time.time() * 1000))
            self.save()

    def save(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, self.path)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path``, or :class:`ConfigError` saying what is wrong with it."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path} not found: run_dir must be the output folder of an evalkit evaluation "
            f"run with tracking enabled (it holds {MANIFEST_FILE})"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not readable JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list) or not doc["runs"]:
        raise ConfigError(f"{path} holds no runs (expected an evalkit {MANIFEST_FILE})")
    return doc
