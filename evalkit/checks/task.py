"""``evalkit task=check``: run the endpoint checks for every selected model version.

For each version: run the checks (:func:`~evalkit.checks.runner.run_checks`), print the table,
write ``<output_dir>/<version>/checks.json`` and, with tracking on, log one MLflow run per version
(params of the version and of the contract, metrics ``checks_pass`` / ``_warn`` / ``_fail`` /
``_skip``, tag ``evalkit.checks.verdict``, artifact ``checks.json``).  Exit code 3 (BLOCK) when
any check FAILed, else 0.

:func:`check_versions` is the Hydra-free core; :func:`log_checks` logs results into an MLflow
run someone else created (e.g. the evaluation's child run of that version).

    evalkit task=check models=[e5_served] checks=openai_default
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from evalkit.checks.config import ChecksConfig
from evalkit.checks.report import checks_table
from evalkit.checks.result import CHECKS_FILE, Check, counts, verdict, write_checks
from evalkit.checks.runner import as_config, run_checks
from evalkit.console import make_console
from evalkit.errors import ConfigError
from evalkit.instantiate import build

log = logging.getLogger(__name__)

EXIT_OK, EXIT_BLOCK = 0, 3


def check_metrics(checks: Sequence[Check]) -> dict[str, float]:
    """``checks_pass`` / ``checks_warn`` / ``checks_fail`` / ``checks_skip`` counts.

    >>> check_metrics([Check("a", "FAIL"), Check("b", "PASS")])["checks_fail"]
    1.0
    """
    return {f"checks_{k.lower()}": float(v) for k, v in counts(checks).items()}


def config_params(cfg: ChecksConfig) -> dict[str, Any]:
    """The contract as flat ``checks.*`` params (what the endpoint was held to)."""
    plain = dataclasses.asdict(cfg)
    plain["on_fail"] = {k: str(v) for k, v in cfg.on_fail.items()}
    plain.pop("versions", None)  # logged already merged, per version
    return {"checks": plain}


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


def check_versions(
    versions: Sequence[Any],
    checks_cfg: ChecksConfig | Mapping[str, Any] | None,
    output_dir: str | Path,
    *,
    tracker: Any = None,
    console: Console | None = None,
) -> dict[str, list[Check]]:
    """Run, print, write and (if ``tracker``) log the checks of each version; results by name."""
    cfg = as_config(checks_cfg)
    console = console or make_console()
    out: dict[str, list[Check]] = {}
    for version in versions:
        log.info("endpoint checks for %s", version.name)
        checks = run_checks(version, cfg)
        out[version.name] = checks
        path = write_checks(checks, Path(output_dir) / version.name / CHECKS_FILE)
        console.print(checks_table(checks, version.name))
        if tracker is not None:
            run_id = tracker.start_parent(
                f"check: {version.name}",
                tags={"evalkit.task": "check", "evalkit.model_version": version.name},
            )
            try:
                log_checks(
                    tracker,
                    run_id,
                    checks,
                    path,
                    {"model": version.params(), **config_params(cfg.for_version(version.name))},
                )
            except BaseException:
                tracker.finish(run_id, "FAILED")
                raise
            tracker.finish(run_id)
            console.print(f"logged to MLflow run {run_id} ({tracker.uri})")
    return out


def run_check_task(cfg: Any) -> int:
    """The ``task=check`` command on the composed Hydra config; returns the exit code."""
    if not cfg.models:
        raise ConfigError("no model version selected: use e.g. models=[e5_small]")
    versions = [build(cfg.models[name], f"model version {name!r}") for name in cfg.models]
    checks_cfg = ChecksConfig.from_mapping(cfg.get("checks"))
    tracker = None
    tracking = cfg.get("tracking")
    if tracking is not None and tracking.get("enabled"):
        from evalkit.track.mlflow_tracker import Tracker

        tracker = Tracker(tracking.uri, tracking.experiment)
    results = check_versions(versions, checks_cfg, cfg.output_dir, tracker=tracker)
    blocked = [name for name, checks in results.items() if verdict(checks) == "BLOCK"]
    if blocked:
        log.warning("endpoint checks FAILED for %s", ", ".join(blocked))
        return EXIT_BLOCK
    return EXIT_OK
