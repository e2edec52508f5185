"""``evalkit task=check``: the endpoint checks of every selected model version, printed, written
to ``<output_dir>/<version>/checks.json`` and (tracking on) logged, one MLflow run per version.
Exit code 3 (BLOCK) when any check FAILed, else 0.

    evalkit task=check models=[e5_served] checks=openai_default
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from evalkit.checks.config import ChecksConfig, config_params
from evalkit.checks.result import CHECKS_FILE, checks_table, verdict, write_checks
from evalkit.checks.run_checks import run_checks
from evalkit.errors import ConfigError
from evalkit.instantiate import build
from evalkit.terminal import make_console
from evalkit.track.checks import log_checks

log = logging.getLogger(__name__)

EXIT_OK, EXIT_BLOCK = 0, 3


def run(cfg: Any, overrides: list[str]) -> dict[str, Any]:
    """Run, print, write and (tracking on) log the checks of each version."""
    if not cfg.models:
        raise ConfigError("no model version selected: use e.g. models=[e5_small]")
    versions = [build(cfg.models[name], f"model version {name!r}") for name in cfg.models]
    checks_cfg = ChecksConfig.from_mapping(cfg.get("checks"))
    tracker, tracking = None, cfg.get("tracking")
    if tracking is not None and tracking.get("enabled"):
        from evalkit.track.mlflow_tracker import Tracker
        from evalkit.track.timeout import tracking_timeout

        tracker = Tracker(tracking.uri, tracking.experiment, timeout_s=tracking_timeout(tracking))
    console, blocked = make_console(), []
    for version in versions:
        log.info("endpoint checks for %s", version.name)
        checks = run_checks(version, checks_cfg)
        path = write_checks(checks, Path(cfg.output_dir) / version.name / CHECKS_FILE)
        console.print(checks_table(checks, version.name))
        if tracker is not None:
            params = {
                "model": version.params(),
                **config_params(checks_cfg.for_version(version.name)),
            }
            run_id = tracker.start_parent(
                f"check: {version.name}",
                tags={"evalkit.task": "check", "evalkit.model_version": version.name},
            )
            try:
                log_checks(tracker, run_id, checks, path, params)
            except BaseException:
                tracker.finish(run_id, "FAILED")
                raise
            tracker.finish(run_id)
            console.print(f"logged to MLflow run {run_id} ({tracker.uri})")
        if verdict(checks) == "BLOCK":
            blocked.append(version.name)
    if blocked:
        log.warning("endpoint checks FAILED for %s", ", ".join(blocked))
    return {
        "exit_code": EXIT_BLOCK if blocked else EXIT_OK,
        "verdict": "FAIL" if blocked else "PASS",
    }
