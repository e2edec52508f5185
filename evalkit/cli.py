"""The ``evalkit`` command: a thin ``@hydra.main`` entry point (exit codes, a contract CI jobs
rely on: docs/reference/exit-codes.md)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from evalkit.errors import EvalkitError, UsageError, os_error_line
from evalkit.interrupts import exit_code_of, sigterm_as_exception
from evalkit.redact import api_key_envs, install_redaction, redact, redacted_std_streams
from evalkit.runtime import freeze_before_exit, import_long_lived
from evalkit.usage import CONF_DIR, duplicate_models, unwritable_output_dir, usage_error

log = logging.getLogger("evalkit")

# `datasets` pings the Hub's download counter even for local files; evalkit never needs that.
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow retries a failing server for ~4 min per call: fail within seconds instead (the run stays
# on disk for `evalkit task=log`).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
# stdout carries evalkit's tables: no "View run ... at" lines from the client per ended run.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BLOCK, EXIT_INCONCLUSIVE = 0, 1, 2, 3, 4
Outcome = dict[str, Any]  # :class:`evalkit.sweep.JobOutcome` fields


#: ``task=<name>``: each runs ``evalkit.tasks.<name>.run``; the first is the default.
TASKS = ("evaluate", "check", "vectors", "log", "runs", "online")


def _run(cfg: DictConfig) -> Outcome:
    from evalkit.runtime import numba_cache_env
    from evalkit.terminal import quiet_libraries

    numba_cache_env(cfg, os.environ)  # before numba is first imported (ranx)
    # numba's coloured messages call colorama.init(), which wraps the stdout of that moment (a
    # sweep job's stdout.txt, closed when the job ends) and writes to it again at exit
    os.environ.setdefault("NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING", "1")
    quiet_libraries()
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    if hc.mode == RunMode.MULTIRUN:
        from evalkit.sweep.ray_jobs import ship_paths

        ship_paths(cfg, hc)  # Ray-launched jobs: relative paths mean the driver's
    twice = duplicate_models(overrides)
    if twice:
        raise UsageError(
            f"models= names {', '.join(twice)} more than once (expected each model version "
            "once; the first is the baseline)"
        )
    if str(cfg.task) not in TASKS:
        raise EvalkitError(f"task={cfg.task!r} is unknown (expected one of {', '.join(TASKS)})")
    # imported now, after numba's cache folder is set, and long-lived (runtime.import_long_lived)
    return import_long_lived(f"evalkit.tasks.{cfg.task}").run(cfg, overrides)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> dict[str, Any] | None:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    # Server error bodies may echo the API key: logs, stdout and stderr are redacted (the files
    # and MLflow calls are redacted where they are written: evalkit.redact).
    install_redaction(api_key_envs(cfg))
    with redacted_std_streams():
        try:
            with sigterm_as_exception():
                outcome = _run(cfg)
        except KeyboardInterrupt as exc:
            code = exit_code_of(exc)
            log.error("evalkit: %s", "terminated (SIGTERM)" if code == 143 else "interrupted")
            sys.exit(code)
        except (EvalkitError, OSError) as exc:
            line = redact(str(exc) if isinstance(exc, EvalkitError) else os_error_line(exc))
            code = getattr(exc, "exit_code", EXIT_ERROR)
            log.error("evalkit: %s", line)
            if multirun:  # one failed sweep job must not stop the others; the summary counts it
                return {"exit_code": code, "verdict": "ERROR", "error": line}
            sys.exit(code)
        if multirun:
            return outcome
        if outcome["exit_code"]:
            sys.exit(outcome["exit_code"])
        return None


def main() -> None:
    """``evalkit ...``: usage errors exit 2 before Hydra runs, an unwritable output folder 1."""
    if problem := usage_error(sys.argv[1:]):
        print(f"evalkit: usage error: {problem}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if problem := unwritable_output_dir(sys.argv[1:]):
        print(problem, file=sys.stderr)
        sys.exit(EXIT_ERROR)
    try:
        app()
    finally:
        freeze_before_exit()  # the interpreter's last collections would walk every object


if __name__ == "__main__":
    main()
