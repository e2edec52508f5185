"""``evalkit task=runs``: print the last evaluations in the tracking store, with their verdicts
(:func:`evalkit.track.last_runs.last_evaluations`: one per parent run, newest first).

    evalkit task=runs tracking=server tracking.uri=http://127.0.0.1:5000 runs.limit=5
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.markup import escape
from rich.table import Table

from evalkit.errors import ConfigError
from evalkit.metrics.ir import mlflow_name
from evalkit.terminal import make_console
from evalkit.track.last_runs import EvaluationRow, last_evaluations


def runs_table(rows: list[EvaluationRow], primary_metric: str, where: str) -> Table:
    table = Table(title=f"Last {len(rows)} evaluation(s) in {where}")
    for col in ("started", "run name", "dataset", "versions (baseline first)"):
        table.add_column(col, overflow="fold")  # a sweep job's overrides in full
    table.add_column(mlflow_name(primary_metric), justify="right")
    for col in ("verdict", "online", "status"):
        table.add_column(col)
    table.add_column("run id", no_wrap=True, min_width=32)
    for r in rows:
        values = [r.primary.get(v) for v in r.versions]  # None: a baseline logged elsewhere
        # Sweep jobs' run names end in `[models.e5_small.dimensions=128]`: text, not markup.
        table.add_row(
            r.start,
            escape(r.name),
            escape(r.dataset),
            escape(", ".join(r.versions)),
            " / ".join("-" if v is None else f"{v:.4f}" for v in values),
            escape(r.verdict),
            escape(r.online),
            escape(r.status),
            r.run_id,
        )
    return table


def run(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    from mlflow import MlflowClient

    from evalkit.track.mlflow_tracker import check_reachable
    from evalkit.track.timeout import tracking_timeout

    if not cfg.tracking.enabled:
        raise ConfigError(
            "task=runs reads the MLflow store: use tracking=sqlite or tracking=server"
        )
    limit = int(cfg.get("runs", {}).get("limit", 20))
    if limit < 1:
        raise ConfigError(f"runs.limit={limit} is invalid (expected an integer >= 1)")
    uri, name = str(cfg.tracking.uri), str(cfg.tracking.experiment)
    timeout_s = tracking_timeout(cfg.tracking)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ConfigError(
            f"tracking.uri={uri}: no MLflow store there yet (run an evaluation first)"
        )
    if uri.startswith(("http://", "https://")):
        check_reachable(uri, timeout_s)
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
    return {"exit_code": 0, "verdict": "-"}
