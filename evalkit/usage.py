"""Command-line usage errors, found before Hydra runs anything: every job of the command line is
composed first, a failing one named in one line with the valid choices (exit code 2).

>>> usage_error(["models=[e5_small]", "models.e5_cut.dimensions=128"])
"models.e5_cut.dimensions=128: unknown key 'e5_cut' in models; valid keys: e5_small; to add a new key, add a leading +: +models.e5_cut.dimensions=128"
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

#: The repository's conf/ (evalkit is installed editable, as README.md says).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
#: Sweeps larger than this are validated on their first jobs only (composition costs ~10 ms/job).
MAX_JOBS_CHECKED = 200
#: Tasks that need at least one model version.
TASKS_WITH_MODELS = ("evaluate", "check")


def usage_error(argv: Sequence[str], conf_dir: Path = CONF_DIR) -> str | None:
    """The first usage error in ``argv`` (``sys.argv[1:]``) in one line, or None (``--help``,
    ``--info``, shell completion and custom config dirs are left to Hydra)."""
    if not argv:  # the default configuration (the demo) always composes
        return None
    from hydra._internal.utils import get_args_parser

    try:
        args = get_args_parser().parse_args(list(argv))
    except SystemExit:  # argparse already printed its usage message; Hydra will repeat it
        return None
    flags = (args.help, args.hydra_help, args.shell_completion)
    given = (args.info, args.experimental_rerun, args.config_path, args.config_dir)
    if any(flags) or any(a is not None for a in given):
        return None
    config_name = args.config_name or "config"
    overrides = list(args.overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            return _first_error(config_name, overrides, bool(args.multirun))
    finally:
        GlobalHydra.instance().clear()


def _jobs(overrides: list[str], multirun: bool) -> list[list[str]] | str:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        return _one_line(str(exc))
    if not multirun or not any(o.is_sweep_override() for o in parsed):
        return [overrides]
    try:
        batches = BasicSweeper.split_arguments(parsed, None)
    except HydraException as exc:
        return _one_line(str(exc))
    return [job for batch in batches for job in batch][:MAX_JOBS_CHECKED]


def _first_error(config_name: str, overrides: list[str], multirun: bool) -> str | None:
    jobs = _jobs(overrides, multirun)
    if isinstance(jobs, str):
        return jobs
    loader = GlobalHydra.instance().config_loader()
    for job in jobs:
        try:
            cfg = compose(config_name, job, return_hydra_config=True)
        except (HydraException, OmegaConfBaseException) as exc:
            return _diagnose(config_name, job, loader) or _one_line(str(exc))
        if problem := _empty_models(cfg, loader):
            return problem
    return None


def _diagnose(config_name: str, job: list[str], loader: Any) -> str | None:
    parsed = OverridesParser.create().parse_overrides(job)
    for o in parsed:
        if problem := _bad_group_option(o, loader):
            return problem
    groups = [o.input_line for o in parsed if _is_group(o, loader) and o.input_line]
    try:
        base = compose(config_name, groups, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException):
        return None
    for o in parsed:
        if o.is_add() or o.is_force_add() or _is_group(o, loader):
            continue
        if problem := _unknown_key(o, base):
            return problem
    return None


def _is_group(o: Override, loader: Any) -> bool:
    return bool(loader.repository.group_exists(o.key_or_group))


def _options(group: str, loader: Any) -> list[str]:
    return sorted(loader.get_group_options(group))


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _bad_group_option(o: Override, loader: Any) -> str | None:
    if not _is_group(o, loader) or o.is_delete():
        return None
    group, value = o.key_or_group, o.value()
    values = list(value) if isinstance(value, list | tuple) else [value]
    options = _options(group, loader)
    folder = "Hydra's plugins" if group.startswith("hydra/") else f"conf/{group}/"
    for v in values:
        if str(v) not in options:
            return (
                f"{o.input_line}: no option {str(v)!r} in config group {group} "
                f"({folder}); choose from: {', '.join(options)}{_suggest(str(v), options)}"
            )
    return None


def _unknown_key(o: Override, cfg: DictConfig) -> str | None:
    node: Any = cfg
    parts = o.key_or_group.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig):
            return None  # a list index or a value: leave it to Hydra's message
        keys = [str(k) for k in node]  # `part in node` is False for a ??? (missing) value
        if part not in keys:
            where = ".".join(parts[:depth]) or "the configuration"
            shown = [k for k in keys if not k.startswith("_") and k != "hydra"]
            shown = sorted(shown) if depth == 0 else shown
            near = _suggest(part, shown)
            add = "" if near else f"; to add a new key, add a leading +: +{o.input_line}"
            return (
                f"{o.input_line}: unknown key {part!r} in {where}; valid keys: "
                f"{', '.join(shown)}{near}{add}"
            )
        node = node._get_node(part)
    return None


def _empty_models(cfg: DictConfig, loader: Any) -> str | None:
    if cfg.get("task") not in TASKS_WITH_MODELS or cfg.get("models"):
        return None
    options = _options("models", loader)
    return (
        "models=[] selects no model version; choose one or more from conf/models/: "
        f"{', '.join(options)} (e.g. models=[use_m3,e5_small], the first is the baseline)"
    )


def _one_line(message: str) -> str:
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("To append to your config")]
    return "; ".join(lines) or "invalid command line"


def duplicate_models(overrides: list[str]) -> list[str]:
    """Model versions a ``models=[...]`` override names more than once.

    >>> duplicate_models(["k=5", "models=[e5_small,use_m3,e5_small]"])
    ['e5_small']
    """
    twice: set[str] = set()
    for override in OverridesParser.create().parse_overrides(
        [o for o in overrides if o.lstrip("+~").split("=", 1)[0] == "models"]
    ):
        value = override.value()
        if isinstance(value, list):
            names = [str(v) for v in value]
            twice |= {n for n in names if names.count(n) > 1}
    return sorted(twice)


def unwritable_output_dir(argv: list[str]) -> str | None:
    """The problem with the folder Hydra will create the run (or sweep) directory in, or None.

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
