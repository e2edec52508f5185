"""``evalkit task=runs``: the last evaluations in the tracking store, with their verdicts.

One row per evaluation (parent run), newest first: start time, run name, dataset, model versions
(the first is the baseline), the primary metric of each version (from its child run), the
verdict (tag ``evalkit.verdict``; ``-`` when only one version was evaluated), the run status and
the parent run id.  Reads ``tracking.uri`` / ``tracking.experiment``; ``runs.limit`` rows.

    evalkit task=runs                                   # the embedded store, experiment evalkit
    evalkit task=runs tracking=server tracking.uri=http://127.0.0.1:5000 runs.limit=5
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig
from rich.table import Table

from evalkit.errors import ConfigError
from evalkit.metrics.ir import mlflow_name


@dataclass(frozen=True)
class EvaluationRow:
    """One evaluation as listed by ``task=runs``."""

    start: str
    name: str
    dataset: str
    versions: list[str]
    primary: dict[str, float | None]  # version -> primary metric
    verdict: str
    status: str
    run_id: str


def last_evaluations(
    client: Any, experiment_id: str, primary_metric: str, limit: int = 20
) -> list[EvaluationRow]:
    """The ``limit`` newest evaluations (parent runs) of an experiment."""
    parents = client.search_runs(
        [experiment_id],
        filter_string="tags.`evalkit.dataset` != ''",
        order_by=["attributes.start_time DESC"],
        max_results=max(limit * 20, 200),
    )
    parents = [r for r in parents if MLFLOW_PARENT_RUN_ID not in r.data.tags][:limit]
    metric = mlflow_name(primary_metric)
    rows = []
    for p in parents:
        children = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{p.info.run_id}'",
            order_by=["attributes.start_time ASC"],
        )
        primary = {
            c.data.tags.get("evalkit.model_version", c.info.run_name): c.data.metrics.get(metric)
            for c in children
        }
        versions = _versions(p.data.params.get("versions")) or list(primary)
        start = dt.datetime.fromtimestamp(p.info.start_time / 1000).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(
            EvaluationRow(
                start=start,
                name=p.info.run_name or "",
                dataset=p.data.tags.get("evalkit.dataset", ""),
                versions=versions,
                primary=primary,
                verdict=p.data.tags.get("evalkit.verdict", "-"),
                status=p.info.status,
                run_id=p.info.run_id,
            )
        )
    return rows


def _versions(param: str | None) -> list[str]:
    """The parent's ``versions`` param (a JSON list) as a list.

    >>> _versions('["use_m3", "e5_small"]')
    ['use_m3', 'e5_small']
    """
    import json

    try:
        value = json.loads(param) if param else []
    except ValueError:
        return [param] if param else []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def runs_table(rows: list[EvaluationRow], primary_metric: str, where: str) -> Table:
    table = Table(title=f"Last {len(rows)} evaluation(s) in {where}")
    for col in ("started", "run name", "dataset", "versions (baseline first)"):
        table.add_column(col)
    table.add_column(mlflow_name(primary_metric), justify="right")
    table.add_column("verdict")
    table.add_column("status")
    table.add_column("run id", no_wrap=True, min_width=32)
    for r in rows:
        # Versions without a child run here (a baseline logged elsewhere) show "-".
        values = [r.primary.get(v) for v in r.versions]
        table.add_row(
            r.start,
            r.name,
            r.dataset,
            ", ".join(r.versions),
            " / ".join("-" if v is None else f"{v:.4f}" for v in values),
            r.verdict,
            r.status,
            r.run_id,
        )
    return table


def run_runs_task(cfg: DictConfig) -> int:
    """``task=runs``: print the table (stdout)."""
    from mlflow import MlflowClient

    from evalkit.console import make_console
    from evalkit.track.mlflow_tracker import check_reachable

    if not cfg.tracking.enabled:
        raise ConfigError(
            "task=runs reads the MLflow store: use tracking=sqlite or tracking=server"
        )
    limit = int(cfg.get("runs", {}).get("limit", 20))
    if limit < 1:
        raise ConfigError(f"runs.limit={limit} is invalid (expected an integer >= 1)")
    uri, name = str(cfg.tracking.uri), str(cfg.tracking.experiment)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ConfigError(
            f"tracking.uri={uri}: no MLflow store there yet (run an evaluation first)"
        )
    if uri.startswith(("http://", "https://")):
        check_reachable(uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        exp = client.get_experiment_by_name(name)
    except Exception as exc:
        raise ConfigError(f"cannot read MLflow store tracking.uri={uri!r}: {exc}") from exc
    if exp is None:
        raise ConfigError(f"tracking.experiment={name!r} does not exist at tracking.uri={uri!r}")
    rows = last_evaluations(client, exp.experiment_id, cfg.primary_metric, limit)
    where = f"{cfg.tracking.uri} (experiment {cfg.tracking.experiment!r})"
    make_console().print(runs_table(rows, cfg.primary_metric, where))
    return 0
