"""A run's hooks (:mod:`evalkit.run.observer`) as MLflow runs: one parent run per evaluation, one
nested child run per version; a store failing mid-run sets ``error`` and the run goes on offline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.compare import comparison_metrics, verdict_tags
from evalkit.data.schema import EvalData
from evalkit.metrics.ir import mlflow_name
from evalkit.results import VersionResult
from evalkit.run.observer import RunObserver, RunStarted, VerdictMade, VersionDone
from evalkit.run.run_settings import TrackingSettings
from evalkit.run.version import latency_metrics
from evalkit.track.datasets import dataset_inputs
from evalkit.track.logged_version import load_version_result
from evalkit.track.manifest import MANIFEST_FILE
from evalkit.track.mlflow_tracker import Tracker, flatten
from evalkit.track.overrides import override_params, run_name, version_run_name
from evalkit.track.sweep_parent import sweep_parent_tags


class MlflowObserver(RunObserver):
    def __init__(self, tracking: TrackingSettings, output_dir: Path) -> None:
        self.tracker = Tracker(
            tracking.uri,
            tracking.experiment,
            manifest=Path(output_dir) / MANIFEST_FILE,
            timeout_s=tracking.timeout_s,
        )
        self.run_name = tracking.run_name
        self.tracking_uri = tracking.uri
        self.parent: str | None = None
        self.run_ids: dict[str, str] = {}  # version name -> its run (children, a logged baseline)
        self.ui_url: str | None = None  # the experiment's runs table
        self.run_url: str | None = None  # the evaluation's own run page
        self._started: RunStarted | None = None

    @property
    def error(self) -> str | None:
        return self.tracker.error

    def load_baseline(self, run_id: str, data: EvalData) -> VersionResult:
        return load_version_result(self.tracker, run_id, data)

    def run_started(self, started: RunStarted) -> None:
        t = self.tracker
        self._started = started
        self.run_ids.update(started.logged)
        name = self.run_name or run_name(started.title, list(started.overrides))
        nest = sweep_parent_tags(self.tracking_uri)  # a --multirun job: under its sweep's run
        self.parent = t.start_parent(name, tags={**started.tags, **nest})
        self.ui_url = t.ui_url()
        self.run_url = t.run_url(self.parent)
        t.log_inputs(self.parent, dataset_inputs(started.data))
        t.log_params(self.parent, {**started.params, **override_params(list(started.overrides))})
        t.log_artifact(self.parent, started.config_file)

    def version_done(self, done: VersionDone) -> None:
        started = self._started
        if self.parent is None or started is None:
            return
        t, result = self.tracker, done.result
        tags = {**started.tags, "evalkit.model_version": result.name, "evalkit.role": done.role}
        child = t.start_child(self.parent, version_run_name(result.name), tags=tags)
        self.run_ids[result.name] = child
        t.log_inputs(child, dataset_inputs(started.data))
        t.log_params(child, {**flatten(result.params, "model."), **done.params})
        overall = {mlflow_name(m): v for m, v in result.overall.items()}
        t.log_metrics(child, {**overall, **done.stats, **latency_metrics(result)})
        t.log_artifact(child, started.config_file)
        t.log_artifact(child, done.files["trec"], "runs")
        for name in ("per_query", "pairs", "latency", "click_pairs"):
            if name in done.files:
                t.log_artifact(child, done.files[name])
        if done.checks is not None:
            from evalkit.track.checks import log_checks

            log_checks(t, child, done.checks, done.files["checks"])
        t.finish(child)

    def version_metrics(
        self, name: str, metrics: Mapping[str, float], params: Mapping[str, Any] | None = None
    ) -> None:
        run_id = self.run_ids.get(name)
        if run_id is None:
            return
        self.tracker.log_metrics(run_id, metrics)
        if params:
            self.tracker.log_params(run_id, params)

    def run_metrics(
        self, metrics: Mapping[str, float], params: Mapping[str, Any] | None = None
    ) -> None:
        if self.parent is None:
            return
        if params:
            self.tracker.log_params(self.parent, params)
        self.tracker.log_metrics(self.parent, metrics)

    def artifact_written(self, path: Path) -> None:
        if self.parent is not None:
            self.tracker.log_artifact(self.parent, path)

    def verdict_made(self, made: VerdictMade) -> None:
        if self.parent is None:
            return
        self.tracker.log_metrics(self.parent, comparison_metrics(made.verdict))
        self.tracker.set_tags(self.parent, verdict_tags(made.verdict))
        for path in made.files:
            self.tracker.log_artifact(self.parent, path)

    def run_ended(self, status: str, reason: str = "") -> None:
        if status == "FINISHED":
            if self.parent is not None:
                self.tracker.finish(self.parent)
        else:  # children first; KILLED on Ctrl-C / SIGTERM, tagged evalkit.end_reason
            self.tracker.abort(status, reason)
