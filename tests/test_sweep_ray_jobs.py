"""Hydra Ray launcher jobs: relative paths resolved against the driver's working directory, or
refused in one line when the job runs where that directory does not exist."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from evalkit.errors import ConfigError
from evalkit.sweep.ray_jobs import job_path_updates
from evalkit.sweep.ray_jobs import ship_paths as _ship_paths


def _cfg():
    return OmegaConf.create(
        {
            "output_dir": "/job/cwd/multirun/x/0",
            "cache": {"dir": ".cache/evalkit"},
            "tracking": {"uri": "sqlite:///mlruns/mlflow.db"},
            "dataset": {"path": "tests/data/adi"},
            "clicks": {"path": None},
        }
    )


def _hc(driver_cwd, launcher="ray", sweep_dir="multirun/2026-11-29/20-00-00"):
    return SimpleNamespace(
        runtime=SimpleNamespace(cwd=str(driver_cwd), choices={"hydra/launcher": launcher}),
        sweep=SimpleNamespace(dir=sweep_dir, subdir="3"),
    )


def test_ray_job_paths_resolve_against_the_driver_cwd(tmp_path, monkeypatch):
    driver, job = tmp_path / "driver", tmp_path / "head"
    driver.mkdir()
    job.mkdir()
    monkeypatch.chdir(job)  # the Ray worker runs in the head's directory
    cfg = _cfg()
    _ship_paths(cfg, _hc(driver))
    assert cfg.cache.dir == f"{driver}/.cache/evalkit"
    assert cfg.tracking.uri == f"sqlite:///{driver}/mlruns/mlflow.db"
    assert cfg.dataset.path == f"{driver}/tests/data/adi"
    assert cfg.output_dir == f"{driver}/multirun/2026-11-29/20-00-00/3"
    assert cfg.clicks.path is None


def test_ray_job_on_another_machine_refuses_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        _ship_paths(_cfg(), _hc(tmp_path / "not-on-this-node"))
    message = str(err.value)
    assert "\n" not in message
    assert "is relative and this sweep job runs on another machine" in message
    assert "absolute path on storage every node shares, or a URL" in message


def test_other_launchers_and_absolute_paths_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _cfg()
    _ship_paths(cfg, _hc(tmp_path / "elsewhere", launcher="joblib"))
    assert cfg.cache.dir == ".cache/evalkit"
    assert (
        job_path_updates(
            {"cache.dir": "/shared/cache", "tracking.uri": "http://mlflow:5000"},
            driver_cwd="/nowhere",
            exists=lambda p: False,
        )
        == {}
    )
