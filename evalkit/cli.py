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

from evalkit.errors import EvalkitError, UsageError
from evalkit.redact import install_redaction

log = logging.getLogger("evalkit")

# `datasets` pings the Hub's download counter even for local files; evalkit never needs that.
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

EXIT_OK, EXIT_ERROR, EXIT_BLOCK = 0, 1, 3
#: The repository's conf/ (evalkit is installed editable, as README.md says).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def duplicate_models(overrides: list[str]) -> list[str]:
    """Model versions a ``models=[...]`` override names more than once (Hydra merges them into
    one silently).

    >>> duplicate_models(["k=5", "models=[e5_small,use_m3,e5_small]"])
    ['e5_small']
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    twice: set[str] = set()
    for override in OverridesParser.create().parse_overrides(
        [o for o in overrides if o.lstrip("+~").split("=", 1)[0] == "models"]
    ):
        value = override.value()
        if isinstance(value, list):
            names = [str(v) for v in value]
            twice |= {n for n in names if names.count(n) > 1}
    return sorted(twice)


def _api_key_envs(cfg: DictConfig) -> list[str]:
    """Environment variables holding API keys of the selected versions (for redaction)."""
    names = ["OPENAI_API_KEY"]
    for version in (cfg.get("models") or {}).values():
        env = version.get("api_key_env") if hasattr(version, "get") else None
        if isinstance(env, str) and env:
            names.append(env)
    return names


def _run(cfg: DictConfig) -> int:
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    twice = duplicate_models(overrides)
    if twice:
        raise UsageError(
            f"models= names {', '.join(twice)} more than once (expected each model version "
            "once; the first is the baseline)"
        )
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


def os_error_line(exc: OSError) -> str:
    """One line for a file-system error: the path and what was expected of it.

    >>> os_error_line(PermissionError(13, "Permission denied", "/ro/cache"))
    'cannot write /ro/cache: Permission denied (expected a writable folder; fix its permissions or point cache.dir / tracking.uri / hydra.run.dir elsewhere)'
    """
    path = exc.filename or "a file"
    reason = exc.strerror or str(exc)
    verb = "write" if isinstance(exc, PermissionError) or exc.errno in (30, 28) else "use"
    return (
        f"cannot {verb} {path}: {reason} (expected a writable folder; fix its permissions or "
        "point cache.dir / tracking.uri / hydra.run.dir elsewhere)"
    )


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> None:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    install_redaction(_api_key_envs(cfg))  # server error bodies may echo the API key
    try:
        code = _run(cfg)
    except (EvalkitError, OSError) as exc:
        log.error("evalkit: %s", exc if isinstance(exc, EvalkitError) else os_error_line(exc))
        if multirun:  # one failed sweep job must not stop the others
            raise
        sys.exit(getattr(exc, "exit_code", EXIT_ERROR))
    if not multirun and code:
        sys.exit(code)


def unwritable_output_dir(argv: list[str]) -> str | None:
    """The problem with the folder Hydra will create the run (or sweep) directory in, or None.

    Hydra creates it before evalkit runs, so a read-only location would end in Hydra's
    traceback: check the nearest existing ancestor of the literal part of the path.

    >>> print(unwritable_output_dir(["hydra.run.dir=/etc/passwd/${now:%H}"]))
    evalkit: hydra.run.dir='/etc/passwd/${now:%H}': /etc/passwd is not a folder (expected a writable folder for the run's outputs; set hydra.run.dir=<writable folder>)
    """
    multirun = any(a in ("-m", "--multirun") for a in argv)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    value = "multirun" if multirun else "outputs"
    for arg in argv:
        if arg.split("=", 1)[0].lstrip("+") == key and "=" in arg:
            value = arg.split("=", 1)[1]
    literal = Path(value.split("${", 1)[0] or ".")
    here = literal if literal.is_absolute() else Path.cwd() / literal
    while not here.exists() and here != here.parent:
        here = here.parent
    if here.is_dir() and os.access(here, os.W_OK | os.X_OK):
        return None
    what = "not a folder" if not here.is_dir() else "not writable"
    return (
        f"evalkit: {key}={value!r}: {here} is {what} (expected a writable folder for the run's "
        f"outputs; set {key}=<writable folder>)"
    )


def main() -> None:
    """Console-script entry point (``evalkit ...``)."""
    problem = unwritable_output_dir(sys.argv[1:])
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(EXIT_ERROR)
    app()


if __name__ == "__main__":
    main()
