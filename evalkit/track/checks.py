"""Endpoint checks into an MLflow run: counts as metrics, the verdict as a tag, ``checks.json``."""

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
    """Log checks into an existing run of ``tracker`` (``checks_file``: the ``checks.json``)."""
    if params:
        tracker.log_params(run_id, params)
    tracker.log_metrics(run_id, check_metrics(checks))
    tracker.set_tags(run_id, {"evalkit.checks.verdict": verdict(checks)})
    tracker.log_artifact(run_id, checks_file)
