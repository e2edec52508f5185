"""``evalkit task=log run_dir=<outputs/...>``: log a finished evaluation's run dir to MLflow
(:func:`evalkit.track.logdir.log_run_dir`), to ``tracking.uri`` / ``tracking.experiment`` only
when given on the command line.

    evalkit task=log run_dir=outputs/2026-11-29/10-00-00
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from evalkit.errors import ConfigError
from evalkit.track.logdir import log_run_dir
from evalkit.track.manifest import MANIFEST_FILE, read_manifest
from evalkit.track.timeout import tracking_timeout


def _given(overrides: list[str], key: str) -> bool:
    return any(o.split("=", 1)[0].lstrip("+") == key for o in overrides)


def run(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    if not cfg.get("run_dir"):
        raise ConfigError(
            f"task=log needs run_dir=<the evaluation's output directory> (it holds {MANIFEST_FILE})"
        )
    run_dir = Path(str(cfg.run_dir))
    if not run_dir.is_dir():
        raise ConfigError(f"run_dir={run_dir} is not a directory (expected an evaluation's output)")
    uri = cfg.tracking.uri if _given(overrides, "tracking.uri") else None
    experiment = cfg.tracking.experiment if _given(overrides, "tracking.experiment") else None
    doc = read_manifest(run_dir / MANIFEST_FILE)
    ids = log_run_dir(run_dir, uri, experiment, tracking_timeout(cfg.tracking))
    first = ids[doc["runs"][0]["id"]]
    print(
        f"logged {run_dir} to {uri or doc['tracking_uri']} (experiment "
        f"{experiment or doc['experiment']!r}): parent run {first}, "
        f"{len(ids) - 1} child run(s)"
    )
    return {"exit_code": 0, "verdict": "-"}
