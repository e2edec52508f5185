"""``evalkit task=online``: read a canary's gateway log and give the rollout verdict (reports,
one MLflow parent run tagged ``evalkit.task=online``; exit codes as offline).

    evalkit task=online online.path=canary/                  # a folder of Parquet parts
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


def simulated_canary(cfg: DictConfig, settings: OnlineSettings, out: Path) -> tuple[Path, Any]:
    """``online=simulated``: the offline demo A/B and a simulated canary log in ``<out>/canary``."""
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


def run(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    from dataclasses import replace

    from evalkit.instantiate import build
    from evalkit.online.analysis import analyse
    from evalkit.online.canary_report import print_online, write_online_report
    from evalkit.online.read import aggregate_log, aggregate_log_ray
    from evalkit.online.track import log_online, offline_link

    settings = OnlineSettings.from_mapping(cfg.get("online"))
    gates = OnlineGates.from_mapping((cfg.get("gates") or {}).get("online"))
    out = Path(str(cfg.output_dir))
    out.mkdir(parents=True, exist_ok=True)
    offline = None
    if settings.simulated:
        folder, offline = simulated_canary(cfg, settings, out)
        settings = replace(settings, path=str(folder))
    spec = build(cfg.engine, "engine")
    if not spec.distributed:  # the log reduced on this machine, else part by part on Ray Data
        aggregate = aggregate_log(settings, settings.cutoffs)
    else:
        from evalkit.engine.session import RaySession

        with RaySession(spec):
            aggregate = aggregate_log_ray(settings, settings.cutoffs)
    models = [str(m) for m in cfg.get("models") or ()]
    result = analyse(
        aggregate,
        settings,
        gates,
        simulated=settings.simulated,
        models=(models[0], models[1]) if len(models) >= 2 else None,
    )
    if cfg.tracking.enabled:
        result = replace(result, offline=offline_link(cfg, result, settings, offline))
    files = write_online_report(result, out)
    ui = log_online(cfg, result, files, overrides) if cfg.tracking.enabled else None
    print_online(result, make_console(), files, ui)
    return {"exit_code": exit_code(result.status), "verdict": str(result.status)}
