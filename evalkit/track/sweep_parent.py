"""A ``--multirun`` job's evaluation run nested under its sweep's MLflow run, whose id and store
:func:`evalkit.sweep.sweep_run.start_sweep_run` exports to the jobs' environment.

>>> import os
>>> os.environ.pop(SWEEP_RUN_ENV, None) and None
>>> sweep_parent_tags("sqlite:///mlruns/mlflow.db")
{}
"""

from __future__ import annotations

import os

SWEEP_RUN_ENV = "EVALKIT_SWEEP_RUN_ID"
SWEEP_URI_ENV = "EVALKIT_SWEEP_TRACKING_URI"


def sweep_parent_tags(tracking_uri: str | None) -> dict[str, str]:
    """The tags that nest a job's evaluation run under the sweep run (none outside a sweep, or
    when the job logs to another store than the sweep's)."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    run_id = os.environ.get(SWEEP_RUN_ENV)
    if not run_id or os.environ.get(SWEEP_URI_ENV) != str(tracking_uri):
        return {}
    return {MLFLOW_PARENT_RUN_ID: run_id, "evalkit.sweep.run_id": run_id}
