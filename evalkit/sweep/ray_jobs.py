"""Paths of a sweep job that Hydra's Ray launcher ships to another process or machine.

A Ray worker's working directory is the Ray head's, so a job's relative paths are resolved
against the driver's (``hydra.runtime.cwd``), or refused when that does not exist where the job
runs (a remote machine: give absolute paths on shared storage, or URLs).

>>> job_path_updates({"cache.dir": ".cache/evalkit", "tracking.uri": "sqlite:///mlruns/mlflow.db"},
...                  driver_cwd="/home/me/proj", exists=lambda p: True)
{'cache.dir': '/home/me/proj/.cache/evalkit', 'tracking.uri': 'sqlite:////home/me/proj/mlruns/mlflow.db'}
>>> job_path_updates({"cache.dir": "s3://bucket/vectors", "dataset.path": "/data/adi"},
...                  driver_cwd="/home/me/proj", exists=lambda p: True)
{}
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

from omegaconf import DictConfig, OmegaConf, open_dict

from evalkit.errors import ConfigError

log = logging.getLogger("evalkit")

#: Config keys holding local paths a job reads or writes (missing keys are skipped).
PATH_KEYS = (
    "output_dir",
    "cache.dir",
    "store.dir",
    "store.path",
    "dataset.path",
    "dataset.catalog.path",
    "dataset.queries.path",
    "dataset.judgments.path",
    "dataset.extra_judgments",
    "clicks.path",
    "tracking.uri",
)
SQLITE = "sqlite:///"


def _relative(value: str) -> str | None:
    """The relative local path inside ``value``, or None (absolute, a URL, or not a path)."""
    if value.startswith(SQLITE):
        rest = value[len(SQLITE) :]
        return None if rest.startswith("/") or rest == ":memory:" else rest
    if "://" in value or value.startswith("/") or not value:
        return None
    return value


def job_path_updates(
    values: Mapping[str, str | None],
    *,
    driver_cwd: str,
    exists: Callable[[str], bool] = os.path.isdir,
) -> dict[str, str]:
    """New values for the relative paths among ``values`` (config key -> value); ConfigError when
    ``driver_cwd`` does not exist here."""
    updates: dict[str, str] = {}
    for key, value in values.items():
        rel = _relative(value) if isinstance(value, str) else None
        if rel is None:
            continue
        if not exists(driver_cwd):
            raise ConfigError(
                f"{key}={value!r} is relative and this sweep job runs on another machine "
                f"({socket.gethostname()}, where the driver's working directory {driver_cwd} "
                "does not exist): give an absolute path on storage every node shares, or a URL"
            )
        absolute = str(PurePosixPath(driver_cwd) / rel)
        updates[key] = SQLITE + absolute if value.startswith(SQLITE) else absolute
    return updates


def ray_launched(choices: Mapping[str, str | None]) -> bool:
    """Whether the job was launched by one of Hydra's Ray launchers (``hydra/launcher=ray*``)."""
    return (choices.get("hydra/launcher") or "").startswith("ray")


def ship_paths(cfg: DictConfig, hc: object) -> None:
    """A Ray-launched sweep job: relative paths resolved against the driver's working directory."""
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
