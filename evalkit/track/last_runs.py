"""The last evaluations in the tracking store, with their verdicts (``evalkit task=runs``).

One row per evaluation (parent run) or ``--multirun`` sweep, newest first, with the newest online
(canary) verdict of the same version pair.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import Any

from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

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
    online: str = "-"  # the newest canary verdict of the same pair (task=online), "-" when none


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
        if p.data.tags.get("evalkit.task") == "sweep":
            rows.append(_sweep_row(client, experiment_id, p))
            continue
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
        verdict = p.data.tags.get("evalkit.verdict", "-")
        rows.append(_row(p, p.info.run_name or "", versions, primary, verdict))
    online = online_verdicts(client, experiment_id)
    return [replace(r, online=online.get(",".join(r.versions[:2]), "-")) for r in rows]


def _sweep_row(client: Any, experiment_id: str, p: Any) -> EvaluationRow:
    jobs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{p.info.run_id}'"
    )
    versions = list(
        dict.fromkeys(v for j in jobs for v in _versions(j.data.params.get("versions")))
    )
    pick = p.data.tags.get("evalkit.sweep.pick")
    verdicts = sorted({j.data.tags.get("evalkit.verdict", "-") for j in jobs})
    verdict = (f"pick: {pick}" if pick else "not compared") + f"; jobs {'/'.join(verdicts)}"
    return _row(p, f"{p.info.run_name} ({len(jobs)} jobs)", versions, {}, verdict)


def _row(p: Any, name: str, versions: list[str], primary: dict, verdict: str) -> EvaluationRow:
    start = dt.datetime.fromtimestamp(p.info.start_time / 1000).strftime("%Y-%m-%d %H:%M:%S")
    dataset = p.data.tags.get("evalkit.dataset", "")
    return EvaluationRow(
        start, name, dataset, versions, primary, verdict, p.info.status, p.info.run_id
    )


def online_verdicts(client: Any, experiment_id: str) -> dict[str, str]:
    """``{"A,B": verdict}``: the newest ``task=online`` run's verdict per version pair (tag
    ``evalkit.versions``, control first)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string="tags.`evalkit.task` = 'online'",
        order_by=["attributes.start_time DESC"],
        max_results=500,
    )
    out: dict[str, str] = {}
    for r in runs:
        pair = r.data.tags.get("evalkit.versions")
        if pair and pair not in out:
            out[pair] = r.data.tags.get("evalkit.verdict", "-")
    return out


def _versions(param: str | None) -> list[str]:
    """The parent's ``versions`` param (a JSON list) as a list.

    >>> _versions('["use_m3", "e5_small"]')
    ['use_m3', 'e5_small']
    """
    try:
        value = json.loads(param) if param else []
    except ValueError:
        return [param] if param else []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
