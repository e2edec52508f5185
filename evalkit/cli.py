"""The ``evalkit`` command: a thin ``@hydra.main`` entry point.

Exit codes (a contract CI jobs rely on): 0 = PASS or WARN, 3 = BLOCK, 1 = error (bad input,
bad configuration, unreachable endpoint), 2 = command-line usage error (Hydra's own).
"""

from __future__ import annotations

import logging
import os
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

EXIT_OK, EXIT_ERROR, EXIT_BLOCK = 0, 1, 3
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
        return evaluation.exit_code
    if cfg.task == "check":
        from evalkit.checks.task import run_check_task

        return run_check_task(cfg)
    if cfg.task == "vectors":
        from evalkit.embed.listing import run_vectors_task

        return run_vectors_task(cfg)
    raise EvalkitError(f"task={cfg.task!r} is unknown (expected evaluate, check or vectors)")


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> None:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        code = _run(cfg)
    except EvalkitError as exc:
        log.error("evalkit: %s", exc)
        if multirun:  # one failed sweep job must not stop the others
            raise
        sys.exit(EXIT_ERROR)
    if not multirun and code:
        sys.exit(code)


def main() -> None:
    """Console-script entry point (``evalkit ...``)."""
    app()


if __name__ == "__main__":
    main()
