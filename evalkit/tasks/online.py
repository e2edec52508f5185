"""``evalkit task=online``: read a canary's gateway log and give the rollout verdict.

    evalkit task=online online.path=canary/                  # a folder of Parquet parts
    evalkit task=online online=simulated                     # the demo's simulated canary

The log is reduced in one streamed pass (:func:`evalkit.online.read.aggregate_log`), analysed
(:func:`evalkit.online.analysis.analyse`), written as ``report.md`` / ``report.html`` /
``verdict.json`` with its plots (:mod:`evalkit.online.canary_report`), logged as one MLflow parent run
(tag ``evalkit.task=online``) in the offline runs' experiment, and printed.  Exit codes as
offline: 0 PASS / WARN, 3 BLOCK, 4 INCONCLUSIVE.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evalkit.compare.status import exit_code
from evalkit.online.canary_gates import OnlineGates
from evalkit.online.online_settings import OnlineSettings
from evalkit.terminal import make_console

log = logging.getLogger("evalkit")


def online_settings(cfg: DictConfig) -> tuple[OnlineSettings, OnlineGates]:
    """The ``online`` section and ``gates.online``, checked before anything is read."""
    gates = cfg.get("gates") or {}
    return OnlineSettings.from_mapping(cfg.get("online")), OnlineGates.from_mapping(
        gates.get("online")
    )


def simulated_canary(cfg: DictConfig, settings: OnlineSettings, out: Path) -> tuple[Path, Any]:
    """``online=simulated``: the offline demo A/B (its rankings and latency probes; cached
    embeddings), then a simulated canary log of its two versions in ``<out>/canary``."""
    from evalkit.online.simulate import simulate_canary
    from evalkit.run.evaluation import run_evaluation

    offline_cfg = OmegaConf.merge(cfg, {"output_dir": str(out / "offline"), "task": "evaluate"})
    evaluation = run_evaluation(offline_cfg)
    a, b = evaluation.results[0], evaluation.results[1]
    folder = out / "canary"
    simulate_canary(
        evaluation.data,
        {"control": a.ranking, "treatment": b.ranking},
        {"control": a.name, "treatment": b.name},
        {"control": a.latencies_s * 1000.0, "treatment": b.latencies_s * 1000.0},
        folder,
        users=settings.users,
        days=settings.days,
        split=settings.split,
        seed=settings.seed,
    )
    return folder, evaluation


def read_log(cfg: DictConfig, settings: OnlineSettings) -> Any:
    """The log reduced on this machine, or with ``engine=ray`` part by part on Ray Data (the
    same results: :func:`evalkit.online.read.aggregate_log_ray`) inside evalkit's Ray session."""
    from evalkit.instantiate import build
    from evalkit.online.read import aggregate_log, aggregate_log_ray

    spec = build(cfg.engine, "engine")
    if not spec.distributed:
        return aggregate_log(settings, settings.cutoffs)
    from evalkit.engine.session import RaySession

    with RaySession(spec):
        return aggregate_log_ray(settings, settings.cutoffs)


def run(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """``task=online`` for :mod:`evalkit.cli`: the outcome (:class:`evalkit.sweep.JobOutcome`)."""
    from dataclasses import replace

    from evalkit.online.analysis import analyse
    from evalkit.online.canary_report import print_online, write_online_report
    from evalkit.online.track import log_online

    settings, gates = online_settings(cfg)
    out = Path(str(cfg.output_dir))
    out.mkdir(parents=True, exist_ok=True)
    offline = None
    if settings.simulated:
        folder, offline = simulated_canary(cfg, settings, out)
        settings = replace(settings, path=str(folder))
    aggregate = read_log(cfg, settings)
    models = [str(m) for m in cfg.get("models") or ()]
    result = analyse(
        aggregate,
        settings,
        gates,
        simulated=settings.simulated,
        models=(models[0], models[1]) if len(models) >= 2 else None,
    )
    linked = None
    if cfg.tracking.enabled:
        from evalkit.online.track import offline_link

        linked = offline_link(cfg, result, settings, offline)
        result = replace(result, offline=linked)
    files = write_online_report(result, out)
    ui = None
    if cfg.tracking.enabled:
        ui = log_online(cfg, result, files, overrides)
    print_online(result, make_console(), files, ui)
    code = exit_code(result.status)
    return {"exit_code": code, "verdict": str(result.status)}
