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


def _ship_paths(cfg: DictConfig, hc: object) -> None:
    """A Ray-launched sweep job: relative paths resolved against the driver's working directory."""
    from omegaconf import OmegaConf, open_dict

    from evalkit.engine.paths import PATH_KEYS, job_path_updates, ray_launched

    if not ray_launched(hc.runtime.choices):  # type: ignore[attr-defined]
        return
    driver_cwd = str(hc.runtime.cwd)  # type: ignore[attr-defined]
    if os.path.realpath(driver_cwd) == os.path.realpath(os.getcwd()):
        return  # the job runs where the driver does: relative paths already mean the same
    values = {k: OmegaConf.select(cfg, k, default=None) for k in PATH_KEYS if k != "output_dir"}
    sweep_dir = str(hc.sweep.dir)  # type: ignore[attr-defined]
    if not os.path.isabs(sweep_dir):  # Hydra made the output folder under the job's cwd
        values["output_dir"] = os.path.join(sweep_dir, str(hc.sweep.subdir))  # type: ignore[attr-defined]
    updates = job_path_updates(values, driver_cwd=driver_cwd)
    with open_dict(cfg):
        for key, value in updates.items():
            OmegaConf.update(cfg, key, value, force_add=True)
    if updates:
        log.info("paths resolved against the driver's %s: %s", driver_cwd, sorted(updates))


def _run(cfg: DictConfig) -> int:
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    if hc.mode == RunMode.MULTIRUN:
        _ship_paths(cfg, hc)
    if cfg.task == "evaluate":
        from evalkit.console import print_evaluation
        from evalkit.pipeline import run_evaluation

        evaluation = run_evaluation(cfg, overrides)
        print_evaluation(evaluation)
        return evaluation.exit_code
    if cfg.task == "check":
        from evalkit.checks.task import run_check_task

        return run_check_task(cfg)
    raise EvalkitError(f"task={cfg.task!r} is unknown (expected evaluate or check)")


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
