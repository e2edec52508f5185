"""The canary in MLflow: one parent run per online analysis, beside the offline runs (its tags,
metrics and artifacts: docs/how-to/online-ab.md, "Outputs and MLflow").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from evalkit.track.timeout import tracking_timeout

ONLINE_TAG = "evalkit.task"


def pair_tag(control: str | None, treatment: str | None) -> str:
    """``evalkit.versions`` of an online run: ``A,B`` (control first).

    >>> pair_tag("use_m3", "e5_small")
    'use_m3,e5_small'
    """
    return f"{control or '-'},{treatment or '-'}"


def find_offline(client: Any, experiment_id: str, pair: tuple[str, str]) -> Any | None:
    """The newest offline evaluation (parent run) whose versions are ``pair`` (baseline first)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string="tags.`evalkit.dataset` != ''",
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    from evalkit.track.last_runs import _versions

    for r in runs:
        if MLFLOW_PARENT_RUN_ID in r.data.tags:
            continue
        if _versions(r.data.params.get("versions"))[:2] == list(pair):
            return r
    return None


def offline_link(cfg: Any, result: Any, settings: Any, evaluation: Any = None) -> dict | None:
    """The offline verdict and deltas to show beside the online ones: ``online.offline_run_id``,
    else the evaluation just run, else the newest offline run of the pair."""
    from mlflow import MlflowClient

    from evalkit.track.mlflow_tracker import Tracker

    client = MlflowClient(str(cfg.tracking.uri))
    run = None
    if settings.offline_run_id:
        run = client.get_run(settings.offline_run_id)
    elif evaluation is not None and evaluation.parent_run_id:
        run = client.get_run(evaluation.parent_run_id)
    else:
        tracker = Tracker(
            str(cfg.tracking.uri),
            str(cfg.tracking.experiment),
            clean_stale=False,
            timeout_s=tracking_timeout(cfg.tracking),
        )
        control, treatment = result.versions
        if control and treatment:
            run = find_offline(client, tracker.experiment_id, (control, treatment))
    if run is None:
        return None
    m = run.data.metrics
    return {
        "run_id": run.info.run_id,
        "name": run.info.run_name or "",
        "verdict": run.data.tags.get("evalkit.verdict", "-"),
        "quality": run.data.tags.get("evalkit.quality", "-"),
        "metrics": {
            k: m[k]
            for k in (
                "delta_ndcg_at_10",
                "ci_low_ndcg_at_10",
                "ci_high_ndcg_at_10",
                "delta_click_spearman",
                "latency_p95_ratio",
                "top3_agreement",
            )
            if k in m
        },
    }


def log_online(cfg: Any, result: Any, files: Any, overrides: list[str]) -> str | None:
    """One parent run for the canary (tags, params, metrics, artifacts); returns the UI link."""
    from evalkit.track.mlflow_tracker import Tracker
    from evalkit.track.overrides import override_params

    tracker = Tracker(
        str(cfg.tracking.uri),
        str(cfg.tracking.experiment),
        Path(files.folder) / "mlflow_runs.json",
        timeout_s=tracking_timeout(cfg.tracking),
    )
    control, treatment = result.versions
    name = cfg.tracking.get("run_name") or f"online: {control} vs {treatment}"
    tags = {
        ONLINE_TAG: "online",
        "evalkit.versions": pair_tag(control, treatment),
        "evalkit.simulated": str(result.simulated).lower(),
    }
    if result.offline:
        tags["evalkit.offline_run_id"] = result.offline["run_id"]
    run = tracker.start_parent(str(name), tags=tags)
    tracker.log_params(run, {**result.params, **override_params(overrides)})
    tracker.log_metrics(run, result.metrics)
    tracker.set_tags(
        run,
        {
            "evalkit.verdict": str(result.status),
            "evalkit.exit_code": str(result.exit_code),
        },
    )
    for path in files.all():
        tracker.log_artifact(run, path)
    tracker.finish(run)
    return tracker.ui_url()
