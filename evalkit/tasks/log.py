"""``evalkit task=log run_dir=<outputs/...>``: log a finished evaluation's run dir to MLflow.

The replay itself (runs, tags, params, metrics, artifacts; the failed attempt's runs marked) is
:func:`evalkit.track.logdir.log_run_dir`; this task checks ``run_dir``, honours
``tracking.uri=`` / ``tracking.experiment=`` only when given on the command line, and prints
where the runs went.

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


def run_log_task(cfg: DictConfig, overrides: list[str]) -> int:
    """``task=log``: the command-line entry (prints where the runs went)."""
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
    return 0


def run(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """``task=log`` for :mod:`evalkit.cli`: the outcome (:class:`evalkit.sweep.JobOutcome`
    fields)."""
    return {"exit_code": run_log_task(cfg, overrides), "verdict": "-"}
