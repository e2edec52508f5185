"""Endpoint checks into an MLflow run: counts as metrics, the verdict as a tag, ``checks.json``.

The checks themselves (:mod:`evalkit.checks`) only produce plain data; this is where they meet
MLflow, for ``task=check`` (one run per version) and for the evaluation's child run of a version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.checks.result import Check, check_metrics, verdict


def log_checks(
    tracker: Any,
    run_id: str,
    checks: Sequence[Check],
    checks_file: str | Path,
    params: Mapping[str, Any] | None = None,
) -> None:
    """Log checks into an existing MLflow run via :class:`evalkit.track.mlflow_tracker.Tracker`.

    ``checks_file`` (written by :func:`~evalkit.checks.result.write_checks`) becomes the
    artifact ``checks.json``; ``params`` (e.g. ``{"model": version.params()}``) are flattened.
    """
    if params:
        tracker.log_params(run_id, params)
    tracker.log_metrics(run_id, check_metrics(checks))
    tracker.set_tags(run_id, {"evalkit.checks.verdict": verdict(checks)})
    tracker.log_artifact(run_id, checks_file)
