"""The ``evalkit`` command: a thin ``@hydra.main`` entry point.

Exit codes (a contract CI jobs rely on): 0 = PASS or WARN, 3 = BLOCK, 1 = error (bad input,
bad configuration, unreachable endpoint or tracking store), 2 = command-line usage error (Hydra's
own), 130 / 143 = interrupted (Ctrl-C / SIGTERM; the MLflow runs are ended as KILLED).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from evalkit.errors import EvalkitError

log = logging.getLogger("evalkit")

# `datasets` pings the Hub's download counter even for local files; evalkit never needs that.
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow's client retries a failing server 7 times with doubling waits (~4 min per call): a
# server that dies mid-run would stall every remaining call.  Fail within seconds instead (the
# run stays on disk for `evalkit task=log`); users may still set these themselves.  The
# per-request timeout stays MLflow's (120 s): large artifacts go through the same requests.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
# stdout carries evalkit's tables: no "View run ... at" lines from the client per ended run.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

EXIT_OK, EXIT_ERROR, EXIT_BLOCK = 0, 1, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
#: The repository's conf/ (evalkit is installed editable, as README.md says).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def _run(cfg: DictConfig) -> int:
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    if cfg.task == "evaluate":
        from evalkit.console import print_evaluation
        from evalkit.pipeline import run_evaluation

        evaluation = run_evaluation(cfg, overrides)
        print_evaluation(evaluation)
        if evaluation.tracking_error:
            log.error("evalkit: %s", evaluation.tracking_error)
        return evaluation.exit_code
    if cfg.task == "check":
        from evalkit.checks.task import run_check_task

        return run_check_task(cfg)
    if cfg.task == "log":
        from evalkit.track.logdir import run_log_task

        return run_log_task(cfg, overrides)
    if cfg.task == "runs":
        from evalkit.track.runs import run_runs_task

        return run_runs_task(cfg)
    raise EvalkitError(f"task={cfg.task!r} is unknown (expected evaluate, check, log or runs)")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so ``finally`` blocks end the MLflow runs (KILLED)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _handle_sigterm(handler: object) -> object:
    """Install a SIGTERM handler (main thread only: launchers may run jobs in threads)."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return handler


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> None:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    previous = _handle_sigterm(_on_sigterm)
    try:
        code = _run(cfg)
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        log.error("evalkit: %s", "terminated (SIGTERM)" if terminated else "interrupted")
        sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
    except EvalkitError as exc:
        log.error("evalkit: %s", exc)
        if multirun:  # one failed sweep job must not stop the others
            raise
        sys.exit(EXIT_ERROR)
    finally:
        _handle_sigterm(previous)
    if not multirun and code:
        sys.exit(code)


def main() -> None:
    """Console-script entry point (``evalkit ...``)."""
    app()


if __name__ == "__main__":
    main()
