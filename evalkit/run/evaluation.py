"""The evaluation, end to end: load -> embed -> index -> replay -> score -> compare -> track.
:func:`run_evaluation` only wires the stages; tracking is an observer (:mod:`evalkit.run.observer`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from evalkit.compare import Verdict
from evalkit.compare.same_data import check_fingerprints
from evalkit.compare.thresholds import metric_cutoff
from evalkit.compare.worklist import Worklist
from evalkit.data.schema import EvalData
from evalkit.embed.model_version import ModelVersion
from evalkit.engine import SearchJob, open_engine
from evalkit.engine.resident import ResidentListeners
from evalkit.errors import ConfigError
from evalkit.pairs import pair_rows_of
from evalkit.results import VersionResult
from evalkit.retrieve.replay import id_ranks
from evalkit.run.compare import compare_and_report, report_clicks, write_worklist
from evalkit.run.latency_stage import measure_latency
from evalkit.run.load import load_data, load_versions
from evalkit.run.observer import Observers, RunObserver, RunStarted, VerdictMade, VersionDone
from evalkit.run.reindex_stage import ReindexPass, ReindexSetup, plan_pass, reindex_analyses
from evalkit.run.retrieved_pairs import score_retrieved_pairs
from evalkit.run.run_settings import RunSettings
from evalkit.run.version import evaluate_version
from evalkit.track.artifacts import write_version_files

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.clicks.stage import ClickReport, ClickStage
    from evalkit.embed.model_version import EmbeddingResult
    from evalkit.run.mlflow_observer import MlflowObserver

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """What one evaluation produced."""

    data: EvalData
    results: list[VersionResult]
    output_dir: Path
    parent_run_id: str | None = None
    child_run_ids: dict[str, str] = field(default_factory=dict)
    comparison: Verdict | None = None
    click_report: ClickReport | None = None
    exit_code: int = 0
    tracking_error: str | None = None  # the store failed mid-run: logged later with task=log
    ui_url: str | None = None  # the experiment's runs table in the MLflow UI
    run_url: str | None = None  # the evaluation's own run in the MLflow UI
    worklist: Worklist | None = None  # judging_worklist.csv's rows (None: nothing unjudged)
    #: each version's run statistics (index size, search latency, ann_recall_at_<k>, ...)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)


def end_of(exc: BaseException) -> tuple[str, str]:
    """A run's MLflow status and ``evalkit.end_reason`` when ``exc`` ended it.

    >>> end_of(KeyboardInterrupt())
    ('KILLED', 'interrupted (Ctrl-C, SIGINT)')
    """
    from evalkit.interrupts import Terminated

    if isinstance(exc, Terminated):
        return "KILLED", "terminated (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return "KILLED", "interrupted (Ctrl-C, SIGINT)"
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return "FAILED", f"failed: {text[:300]}"


def dataset_params(data: EvalData) -> dict[str, Any]:
    return {
        "dataset.name": data.name,
        "dataset.text_field": data.text_field,
        "dataset.title_separator": data.title_separator,
        "dataset.synthetic": data.synthetic,
        "dataset.items": len(data.catalog),
        "dataset.queries": len(data.queries),
        "dataset.judgments": len(data.judgments) if data.judgments is not None else 0,
        "dataset.judgment_method": data.judgments.method if data.judgments is not None else "none",
        **{f"dataset.fingerprint.{k}": v for k, v in data.fingerprint.items()},
        **{f"dataset.skipped.{k}": v for k, v in data.skipped.items()},
        **(data.extra_judgments.params() if data.extra_judgments is not None else {}),
    }


def run_evaluation(
    cfg: DictConfig,
    overrides: list[str] | None = None,
    observers: Sequence[RunObserver] = (),
) -> Evaluation:
    """Run the A/B evaluation described by ``cfg``; the first model version is the baseline.
    ``observers`` are told what happens, after the MLflow observer when ``tracking`` is on."""
    settings = RunSettings.from_config(cfg)
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    versions = load_versions(cfg)
    data, click_stage = load_data(cfg, settings.clicks)
    if settings.cache.enabled and not all(v.brings_vectors for v in versions):
        data.embedded_keys()  # the catalog's store keys, hashed once for every version
    mlflow = None
    if settings.tracking.enabled:  # MLflow is imported only when a run is tracked (~0.7 s)
        from evalkit.run.mlflow_observer import MlflowObserver

        mlflow = MlflowObserver(settings.tracking, settings.output_dir)
    observer = Observers([*([mlflow] if mlflow is not None else []), *observers])
    evaluation = Evaluation(data=data, results=[], output_dir=settings.output_dir)
    config_file = settings.output_dir / "config.yaml"
    config_file.write_text(OmegaConf.to_yaml(OmegaConf.create(settings.public)), encoding="utf-8")
    logged = add_logged_baseline(evaluation, settings, mlflow)
    observer.run_started(
        run_started(evaluation, versions, settings, click_stage, config_file, overrides, logged)
    )
    if mlflow is not None:
        evaluation.parent_run_id, evaluation.ui_url = mlflow.parent, mlflow.ui_url
        evaluation.run_url = mlflow.run_url
    try:
        evaluate_all(evaluation, versions, settings, observer, bool(logged))
        if mlflow is not None:
            evaluation.child_run_ids = {
                v.name: mlflow.run_ids[v.name] for v in versions if v.name in mlflow.run_ids
            }
    except BaseException as exc:
        observer.run_ended(*end_of(exc))
        raise
    observer.run_ended("FINISHED")
    if mlflow is not None and mlflow.error is not None:  # exit 1 unless already non-zero
        out = evaluation.output_dir
        evaluation.tracking_error = (
            f"{mlflow.error}; everything is in {out}: log it later with "
            f"`evalkit task=log run_dir={out}`"
        )
        evaluation.exit_code = evaluation.exit_code or 1
    return evaluation


def add_logged_baseline(
    evaluation: Evaluation, settings: RunSettings, mlflow: MlflowObserver | None
) -> dict[str, str]:
    """The baseline of ``compare.baseline_run_id`` from MLflow into ``evaluation.results`` (refused
    when logged on other data): ``{name: run id}``."""
    run_id = settings.baseline_run_id
    if not run_id:
        return {}
    if mlflow is None:
        raise ConfigError("compare.baseline_run_id needs MLflow tracking (tracking=sqlite/server)")
    data = evaluation.data
    baseline = mlflow.load_baseline(run_id, data)
    check_fingerprints(
        baseline.fingerprint, data.fingerprint, (f"baseline run {run_id}", "this dataset")
    )
    evaluation.results.append(baseline)
    log.info("baseline: %s from MLflow run %s", baseline.name, run_id)
    return {baseline.name: run_id}


def run_started(
    evaluation: Evaluation,
    versions: Sequence[ModelVersion],
    settings: RunSettings,
    click_stage: ClickStage | None,
    config_file: Path,
    overrides: Sequence[str] | None,
    logged: Mapping[str, str],
) -> RunStarted:
    data, names = evaluation.data, [v.name for v in versions]
    baseline_name = evaluation.results[0].name if logged else names[0]
    return RunStarted(
        data=data,
        versions=tuple(names),
        baseline=baseline_name,
        title=f"{data.name}: {' vs '.join(names)}",
        params={
            **dataset_params(data),
            "k": settings.k,
            "metrics": list(settings.metrics),
            "versions": names,
            "baseline": baseline_name,
            "baseline_run_id": settings.baseline_run_id or "",
            **settings.index.params(),
            **settings.engine.params(),
            **(click_stage.params() if click_stage is not None else {}),
        },
        tags={
            "evalkit.dataset": data.name,
            "evalkit.synthetic": str(data.synthetic).lower(),
            "evalkit.fingerprint": data.fingerprint.get("dataset", ""),
            "evalkit.judgments": data.judgments.method if data.judgments is not None else "none",
        },
        config_file=config_file,
        overrides=tuple(overrides or ()),
        logged=dict(logged),
    )


def evaluate_all(
    evaluation: Evaluation,
    versions: list[ModelVersion],
    settings: RunSettings,
    observer: RunObserver,
    logged_baseline: bool,
) -> None:
    data, s = evaluation.data, settings
    id_rank = id_ranks(data.catalog.ids)
    rpass = plan_pass(ReindexSetup.of(s, data, id_rank), versions, s.reindex, logged_baseline)
    check_rows = evaluate_each(evaluation, versions, s, observer, logged_baseline, id_rank, rpass)
    results, reindex = evaluation.results, {}
    if len(results) >= 2 and s.compare.score_thresholds:  # the threshold mapping's population
        cutoff = metric_cutoff(s.gates.metric, s.k)
        results[:] = score_retrieved_pairs(results, versions, data, s.cache, cutoff)
    if len(results) >= 2 and not logged_baseline:
        results[:], probes = measure_latency(results, versions, data, s.probe, s.reuse)
        for name, metrics in probes.items():
            observer.version_metrics(name, metrics)
        reindex = reindex_analyses(rpass, versions, results)
        if rpass is not None:
            observer.run_metrics({"reindex_seconds": rpass.seconds})
    clicks = None
    if data.clicks is not None:
        clicks = evaluation.click_report = report_clicks(results, data, s, observer)
    if len(results) < 2:
        return
    verdict, files = compare_and_report(
        results, data, s, checks=check_rows, clicks=clicks, reindex=reindex
    )
    observer.verdict_made(VerdictMade(verdict, files))
    evaluation.comparison, evaluation.exit_code = verdict, verdict.exit_code
    evaluation.worklist, path = write_worklist(results, data, s)
    if path is not None:
        observer.artifact_written(path)


def evaluate_each(
    evaluation: Evaluation,
    versions: list[ModelVersion],
    s: RunSettings,
    observer: RunObserver,
    logged_baseline: bool,
    id_rank: Any,
    rpass: ReindexPass | None,
) -> list[dict[str, Any]] | None:
    """Each version in turn on the engine, observers told; the endpoint checks' gate rows (None:
    not run)."""
    data = evaluation.data
    check_rows: list[dict[str, Any]] | None = None
    version_params = {**dataset_params(data), "k": s.k, **s.index.params()}
    with open_engine(s.engine, s.model_configs) as engine:
        rows = pair_rows_of(data)
        listeners = ResidentListeners()
        early: dict[str, EmbeddingResult] = {}  # candidates' queries read before the baseline
        if rpass is not None:
            listeners.subscribe(rpass.on_resident)
            if not s.engine.distributed:  # engine=ray embeds every text on Ray, none here
                early = rpass.candidate_queries(versions)
        for i, version in enumerate(versions):
            log.info("evaluating model version %s", version.name)
            job = SearchJob(
                s.index, s.k, s.seed, s.cache, id_rank, rows, s.progress,
                queries=early.pop(version.name, None), listeners=listeners,
            )  # fmt: skip
            result, stats = evaluate_version(version, data, engine, job, s.metrics, s.gates.metric)
            click_pairs = data.clicks.pairs() if data.clicks is not None else None
            files = write_version_files(result, s.output_dir, click_pairs)
            checks = None
            if s.run_checks:  # the checks bring the openai client (~2 s of imports)
                from evalkit.checks import gate_rows, run_checks, write_checks
                from evalkit.checks.result import CHECKS_FILE

                checks = run_checks(version, s.checks)
                files["checks"] = write_checks(checks, s.output_dir / version.name / CHECKS_FILE)
                check_rows = [*(check_rows or []), *gate_rows(checks, version.name)]
            evaluation.results.append(result)
            evaluation.stats[result.name] = dict(stats)
            gc.collect()  # nothing of this version's matrices survives into the next one
            role = "baseline" if i == 0 and not logged_baseline else "candidate"
            observer.version_done(VersionDone(result, stats, files, role, version_params, checks))
    return check_rows
