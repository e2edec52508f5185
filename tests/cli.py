"""Run the real ``evalkit`` command in a subprocess, offline, with its own MLflow store and cache."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

REPO = Path(__file__).resolve().parents[1]


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    out_dir: Path


def offline_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_UPDATE_DOWNLOAD_COUNTS="0")
    return env


def run_evalkit(*overrides: str, work: Path, out_name: str = "out", timeout: int = 900) -> CliRun:
    """``evalkit <overrides>`` with tracking, cache and output redirected under ``work``."""
    out = work / out_name
    defaults = [
        f"tracking.uri=sqlite:///{work}/mlflow.db",
        f"cache.dir={work}/cache",
        f"latency.store_dir={work}/latency",  # never the user's store: each test its own
        f"hydra.run.dir={out}",
        "progress=false",
    ]
    given = {o.split("=", 1)[0].lstrip("+") for o in overrides if "=" in o}
    flags = [o for o in overrides if o.startswith("-")]
    rest = [o for o in overrides if not o.startswith("-")]
    args = flags + [o for o in defaults if o.split("=", 1)[0] not in given] + rest
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", *args],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr, out)


def child_runs(db_uri: str, experiment: str) -> dict[str, object]:
    """The latest child run per model version (tag ``evalkit.model_version``)."""
    client = MlflowClient(tracking_uri=db_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
    out: dict[str, object] = {}
    for r in runs:
        v = r.data.tags.get("evalkit.model_version")
        if v and v not in out:
            out[v] = r
    return out
