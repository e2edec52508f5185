"""The ``evalkit`` command: a thin ``@hydra.main`` entry point.

Exit codes (a contract CI jobs rely on): 0 = PASS or WARN, 3 = BLOCK, 1 = error (bad input,
bad configuration, unreachable endpoint), 2 = command-line usage error (unknown key, unknown
config group option, no model version: :mod:`evalkit.usage`).  A ``--multirun`` sweep exits with
the worst job's code (:mod:`evalkit.sweep`).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from evalkit.errors import EvalkitError
from evalkit.usage import CONF_DIR, usage_error

log = logging.getLogger("evalkit")

# `datasets` pings the Hub's download counter even for local files; evalkit never needs that.
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BLOCK = 0, 1, 2, 3


def _run(cfg: DictConfig) -> dict[str, Any]:
    """Run the task; the outcome as :class:`evalkit.sweep.JobOutcome` fields."""
    from evalkit.terminal import quiet_libraries

    quiet_libraries()
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    if cfg.task == "evaluate":
        from evalkit.console import print_evaluation
        from evalkit.pipeline import run_evaluation

        evaluation = run_evaluation(cfg, overrides)
        print_evaluation(evaluation)
        verdict = evaluation.comparison.status.value if evaluation.comparison else "-"
        metric = str(cfg.primary_metric)
        return {
            "exit_code": evaluation.exit_code,
            "verdict": verdict,
            "primary_metric": metric,
            "metrics": {
                r.name: r.overall[metric] for r in evaluation.results if metric in r.overall
            },
        }
    if cfg.task == "check":
        from evalkit.checks.task import run_check_task

        code = run_check_task(cfg)
        return {"exit_code": code, "verdict": "FAIL" if code == EXIT_BLOCK else "PASS"}
    raise EvalkitError(f"task={cfg.task!r} is unknown (expected evaluate or check)")


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> dict[str, Any] | None:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        outcome = _run(cfg)
    except EvalkitError as exc:
        log.error("evalkit: %s", exc)
        if multirun:  # one failed sweep job must not stop the others; the summary counts it
            return {"exit_code": EXIT_ERROR, "verdict": "ERROR", "error": str(exc)}
        sys.exit(EXIT_ERROR)
    if multirun:
        return outcome
    if outcome["exit_code"]:
        sys.exit(outcome["exit_code"])
    return None


def main() -> None:
    """Console-script entry point (``evalkit ...``): usage errors exit 2 before Hydra runs."""
    problem = usage_error(sys.argv[1:])
    if problem:
        print(f"evalkit: usage error: {problem}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    app()


if __name__ == "__main__":
    main()
