"""The evaluation, end to end: load -> embed -> index -> replay -> score -> compare -> track.

:func:`run_evaluation` takes the composed Hydra config and returns an :class:`Evaluation`;
:mod:`evalkit.cli` is only the thin ``@hydra.main`` entry point around it.  Every stage is a
call into its own layer, so this module reads as the data flow of the tool.

Per version: :func:`evalkit.evaluate_version.evaluate_version`; its files:
:mod:`evalkit.track.artifacts`; MLflow: :mod:`evalkit.track.mlflow_tracker`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evalkit.clicks.stage import ClickStage, click_report, load_clicks
from evalkit.compare import (
    CompareSettings,
    GateConfig,
    Verdict,
    compare_versions,
    comparison_metrics,
    verdict_tags,
    write_report,
)
from evalkit.compare.clicks import click_tests as compare_click_tests
from evalkit.compare.fingerprint import check_fingerprints
from evalkit.compare.latency import backend_kind
from evalkit.compare.reindex import ReindexAnalysis, dims_differ
from evalkit.compare.report import Section
from evalkit.compare.thresholds import metric_cutoff
from evalkit.compare.worklist import WORKLIST_FILE, Worklist, evaluation_worklist
from evalkit.data.extra import merge_extra_judgments, split_dataset_config
from evalkit.data.fingerprint import fingerprint_data
from evalkit.data.schema import EvalData
from evalkit.embed.latency_probe import ProbeSettings, probe_metrics
from evalkit.embed.latency_store import ReuseSettings, probe_or_reuse
from evalkit.engine import EngineSpec, open_engine
from evalkit.errors import ConfigError
from evalkit.evaluate_version import (
    embed_queries,
    evaluate_version,
    latency_metrics,
    pair_rows_of,
)
from evalkit.index.faiss_index import IndexSpec
from evalkit.instantiate import build
from evalkit.metrics.ir import check_metrics, check_primary_metric, check_scorable, mlflow_name
from evalkit.reindex_stage import ReindexPass, analyse_candidate, start_pass
from evalkit.results import VersionResult
from evalkit.retrieve.replay import id_ranks
from evalkit.retrieved_pairs import score_retrieved_pairs
from evalkit.track.artifacts import write_version_files
from evalkit.track.baseline import (
    load_version_result,
)
from evalkit.track.datasets import dataset_inputs
from evalkit.track.manifest import MANIFEST_FILE
from evalkit.track.mlflow_tracker import SECRET_KEY, Tracker, flatten
from evalkit.track.overrides import override_params, run_name, version_run_name

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """What one evaluation produced (also what tests inspect)."""

    data: EvalData
    results: list[VersionResult]
    output_dir: Path
    parent_run_id: str | None = None
    child_run_ids: dict[str, str] = field(default_factory=dict)
    comparison: Any = None
    click_report: Any = None
    exit_code: int = 0
    tracking_error: str | None = None  # the store failed mid-run: logged later with task=log
    ui_url: str | None = None  # the experiment's runs table in the MLflow UI
    worklist: Worklist | None = None  # judging_worklist.csv's rows (None: nothing unjudged)


def _dataset_params(data: EvalData) -> dict[str, Any]:
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


def _tags(data: EvalData) -> dict[str, str]:
    return {
        "evalkit.dataset": data.name,
        "evalkit.synthetic": str(data.synthetic).lower(),
        "evalkit.fingerprint": data.fingerprint.get("dataset", ""),
        "evalkit.judgments": data.judgments.method if data.judgments is not None else "none",
    }


def public_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data, secrets dropped (what is logged and dumped)."""
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    return _drop_secrets(plain)


def _drop_secrets(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_secrets(v) for k, v in node.items() if not SECRET_KEY.search(str(k))}
    if isinstance(node, list):
        return [_drop_secrets(v) for v in node]
    return node


def run_evaluation(cfg: DictConfig, overrides: list[str] | None = None) -> Evaluation:
    """Run the A/B evaluation described by ``cfg``; the first model version is the baseline."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = check_metrics(list(cfg.metrics), int(cfg.k))
    check_primary_metric(str(cfg.primary_metric), metrics)
    if not cfg.models:
        raise ConfigError("no model version selected: use e.g. models=[use_m3,e5_small]")
    versions = [build(cfg.models[name], f"model version {name!r}") for name in cfg.models]
    for name, v in zip(cfg.models, versions):
        if v.name != name:
            raise ConfigError(f"conf/models/{name}.yaml names its version {v.name!r}; use {name!r}")
    spec: IndexSpec = build(cfg.index, "index")
    engine_spec: EngineSpec = build(cfg.engine, "engine") if cfg.get("engine") else EngineSpec()
    dataset_cfg, extra_judgments = split_dataset_config(cfg.dataset)
    data: EvalData = build(dataset_cfg, "dataset")
    data, click_stage = with_clicks(data, cfg.get("clicks"))
    data = merge_extra_judgments(data, extra_judgments)  # dataset.extra_judgments, any loader
    if data.judgments is None or not data.judgments.qrels:
        raise ConfigError(
            f"dataset {data.name!r} has no judgments: give human judgments or a click log "
            "to derive them from (clicks=log)"
        )
    check_scorable(data.judgments.qrels, data.queries.ids, data.judgments.source)

    tracker = (
        Tracker(cfg.tracking.uri, cfg.tracking.experiment, manifest=out / MANIFEST_FILE)
        if cfg.tracking.enabled
        else None
    )
    evaluation = Evaluation(data=data, results=[], output_dir=out)
    config_file = out / "config.yaml"
    config_file.write_text(
        OmegaConf.to_yaml(OmegaConf.create(public_config(cfg))), encoding="utf-8"
    )
    baseline_run = cfg.compare.get("baseline_run_id")
    if baseline_run:
        if tracker is None:
            raise ConfigError(
                "compare.baseline_run_id needs MLflow tracking (tracking=sqlite/server)"
            )
        logged = load_version_result(tracker, str(baseline_run), data)
        # Refuse a baseline logged on other data before spending anything on embeddings.
        check_fingerprints(
            logged.fingerprint, data.fingerprint, (f"baseline run {baseline_run}", "this dataset")
        )
        evaluation.results.append(logged)
        log.info("baseline: %s from MLflow run %s", evaluation.results[0].name, baseline_run)
    baseline_name = evaluation.results[0].name if baseline_run else versions[0].name
    parent = None
    if tracker is not None:
        name = cfg.tracking.run_name or run_name(
            f"{data.name}: {' vs '.join(v.name for v in versions)}", overrides or []
        )
        parent = tracker.start_parent(name, tags=_tags(data))
        evaluation.ui_url = tracker.ui_url()
        tracker.log_inputs(parent, dataset_inputs(data))
        evaluation.parent_run_id = parent
        tracker.log_params(
            parent,
            {
                **_dataset_params(data),
                "k": int(cfg.k),
                "metrics": metrics,
                "versions": [v.name for v in versions],
                "baseline": baseline_name,
                "baseline_run_id": baseline_run or "",
                **spec.params(),
                **engine_spec.params(),
                **(click_stage.params() if click_stage is not None else {}),
                **override_params(overrides or []),
            },
        )
        tracker.log_artifact(parent, config_file)
    check_rows: list[dict[str, Any]] | None = None  # None: the endpoint checks were not run
    engines = contextlib.ExitStack()  # engine=ray: Ray is up for the embedding / search stages
    try:
        model_configs = {n: OmegaConf.to_container(cfg.models[n], resolve=True) for n in cfg.models}
        engine = engines.enter_context(open_engine(engine_spec, model_configs))
        id_rank = id_ranks(data.catalog.ids)
        rows = pair_rows_of(data)
        rpass = reindex_pass(data, versions, cfg, spec, baseline_run)
        early: dict[str, Any] = {}  # the candidates' queries, embedded before the baseline's stage
        if rpass is not None and engine is None:
            for version in versions[1:]:
                early[version.name] = embed_queries(version, data, cfg)
                rpass.add_queries(version.name, early[version.name].vectors)
        for i, version in enumerate(versions):
            log.info("evaluating model version %s", version.name)
            result, stats = evaluate_version(
                version,
                data,
                cfg,
                spec,
                metrics,
                id_rank,
                rows,
                engine=engine,
                reindex=rpass,
                queries=early.pop(version.name, None),
            )
            click_pairs = data.clicks.pairs() if data.clicks is not None else None
            files = write_version_files(result, out, click_pairs)
            checks = None
            if cfg.get("run_checks"):
                # imported only when asked: the checks bring the openai client (~2 s of imports)
                from evalkit.checks import gate_rows, run_checks, write_checks
                from evalkit.checks.result import CHECKS_FILE

                checks = run_checks(version, cfg.get("checks"))
                files["checks"] = write_checks(checks, out / version.name / CHECKS_FILE)
                check_rows = [*(check_rows or []), *gate_rows(checks, version.name)]
            evaluation.results.append(result)
            gc.collect()  # nothing of this version's matrices survives into the next one
            if tracker is not None:
                role = "baseline" if i == 0 and not baseline_run else "candidate"
                log_version_run(
                    tracker, parent, result, stats, files, data, spec, cfg, role, checks
                )
                evaluation.child_run_ids[version.name] = result.run_id
        engines.close()
        if len(evaluation.results) >= 2 and cfg.compare.get("score_thresholds"):
            # The threshold mapping's non-relevant pairs: every version's top-k, scored by all.
            score_retrieved_pairs(
                evaluation.results,
                versions,
                data,
                cfg,
                metric_cutoff(
                    str(
                        (cfg.gates.get("primary_metric") or {}).get("metric") or cfg.primary_metric
                    ),
                    int(cfg.k),
                ),
            )
        reindex: dict[str, ReindexAnalysis] = {}
        if len(evaluation.results) >= 2 and not baseline_run:
            measure_latency(evaluation, versions, cfg, tracker)
            reindex = reindex_analyses(evaluation, versions, cfg, spec, rpass, id_rank)
            if rpass is not None and tracker is not None and parent is not None:
                tracker.log_metrics(parent, {"reindex_seconds": rpass.seconds})
        scatter = None
        if data.clicks is not None:
            scatter = report_clicks(evaluation, cfg, tracker, parent)
        if len(evaluation.results) >= 2:
            evaluation.comparison = compare_and_report(
                evaluation,
                cfg,
                metrics,
                tracker,
                parent,
                checks=check_rows,
                scatter_png=scatter,
                reindex=reindex,
            )
            evaluation.exit_code = evaluation.comparison.exit_code
    except BaseException as exc:
        engines.close()
        if tracker is not None:  # children first; KILLED on Ctrl-C / SIGTERM
            tracker.abort("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    if tracker is not None and parent is not None:
        tracker.finish(parent)
        if tracker.error is not None:
            evaluation.tracking_error = (
                f"{tracker.error}; everything is in {out}: log it later with "
                f"`evalkit task=log run_dir={out}`"
            )
            evaluation.exit_code = evaluation.exit_code or 1  # BLOCK stays 3, INCONCLUSIVE 4
    return evaluation


def log_version_run(
    tracker: Tracker,
    parent: str,
    result: VersionResult,
    stats: dict[str, float],
    files: dict[str, Path],
    data: EvalData,
    spec: IndexSpec,
    cfg: DictConfig,
    role: str,
    checks: list[Any] | None = None,
) -> str:
    """One nested MLflow run for a model version: params, metrics, tags and its files."""
    tags = {**_tags(data), "evalkit.model_version": result.name, "evalkit.role": role}
    child = tracker.start_child(parent, version_run_name(result.name), tags=tags)
    result.run_id = child
    tracker.log_inputs(child, dataset_inputs(data))
    tracker.log_params(
        child,
        {
            **flatten(result.params, "model."),
            **_dataset_params(data),
            "k": int(cfg.k),
            **spec.params(),
        },
    )
    tracker.log_metrics(
        child,
        {
            **{mlflow_name(m): v for m, v in result.overall.items()},
            **stats,
            **latency_metrics(result),
        },
    )
    tracker.log_artifact(child, Path(cfg.output_dir) / "config.yaml")
    tracker.log_artifact(child, files["trec"], "runs")
    for name in ("per_query", "pairs", "latency", "click_pairs"):
        if name in files:
            tracker.log_artifact(child, files[name])
    if checks is not None:
        from evalkit.checks import log_checks

        log_checks(tracker, child, checks, files["checks"])
    tracker.finish(child)
    return child


def measure_latency(
    evaluation: Evaluation, versions: list[Any], cfg: DictConfig, tracker: Tracker | None
) -> None:
    """The latency probe (:mod:`evalkit.embed.latency_probe`) over every version, interleaved and
    uncached.  Each result's latency fields are replaced by the probe's - what the latency gate
    compares - and logged on its child run as ``latency_probe_*`` (the embedding run's own
    latencies stay logged as ``latency_p50_ms`` ...).  ``latency.probe=0`` keeps those instead.
    When every probed version runs in process, a stored probe younger than ``latency.max_age_s``
    of exactly these versions on this machine is reused (:mod:`evalkit.embed.latency_store`;
    ``latency_probe_reused`` = 1 and ``latency_probe_age_s`` on the child runs)."""
    lat_cfg = cfg.get("latency")
    plain = OmegaConf.to_container(lat_cfg, resolve=True) if lat_cfg is not None else {}
    settings = ProbeSettings.from_mapping(plain, seed=int(cfg.seed))
    reuse = ReuseSettings.from_mapping(plain)
    if not settings.enabled:
        return
    # Precomputed versions (vectors the team brings) make no requests: nothing to time.
    timed = [v for v in versions if not hasattr(v, "vectors_for")]
    kinds = [backend_kind(v.params()) for v in timed]
    # Every version in process (the gate cannot block on them): latency.min_requests requests.
    chosen = settings.for_kinds(kinds)
    log.info(
        "latency probe: %d requests of %d query texts per version, interleaved%s",
        chosen.requests(min(chosen.texts, len(evaluation.data.queries))),
        chosen.batch_size,
        " (every version in process: latency.min_requests)" if chosen != settings else "",
    )
    settings = chosen
    # Every version in process: a stored probe of exactly these versions may be reused.
    probes = probe_or_reuse(timed, evaluation.data.queries.texts, settings, reuse)
    for i, r in enumerate(evaluation.results):
        p = probes.get(r.name)
        if p is None:
            continue
        evaluation.results[i] = replace(
            r,
            latencies_s=p.latencies_s,
            throughput=p.throughput,
            batch_size=p.batch_size,
            concurrency=p.concurrency,
            extra={
                **r.extra,
                "latency_probe_requests": p.n_requests,
                "latency_probe_retries": p.retries,
                # reused from an earlier run's probe (latency.max_age_s): its age, for the gate
                **({} if p.reused_age_s is None else {"latency_probe_age_s": p.reused_age_s}),
            },
        )
        if tracker is not None and r.run_id:
            tracker.log_metrics(r.run_id, probe_metrics(p))


def reindex_pass(
    data: EvalData, versions: list[Any], cfg: DictConfig, spec: IndexSpec, baseline_run: Any
) -> ReindexPass | None:
    """The re-index analysis's share of the main pass (:mod:`evalkit.reindex_stage`), or None
    when it does not run (``compare.reindex=false``, one version, a logged baseline, no cache)."""
    if len(versions) < 2 or baseline_run or not cfg.compare.get("reindex", True):
        return None
    if not cfg.cache.enabled and not all(hasattr(v, "vectors_for") for v in versions):
        log.warning("compare.reindex needs the embedding cache (cache.enabled=true): skipped")
        return None
    gates = GateConfig.from_mapping(
        OmegaConf.to_container(cfg.gates, resolve=True), primary_metric=cfg.primary_metric
    )
    st = CompareSettings.from_mapping(OmegaConf.to_container(cfg.compare, resolve=True))
    return start_pass(data, [v.name for v in versions], cfg, gates.metric, spec, st.seed)


def reindex_analyses(
    evaluation: Evaluation,
    versions: list[Any],
    cfg: DictConfig,
    spec: IndexSpec,
    rpass: ReindexPass | None,
    id_rank: Any,
) -> dict[str, ReindexAnalysis]:
    """Re-index or not (:mod:`evalkit.compare.reindex`) for every candidate (``compare.reindex``),
    on the pass's query sample (``compare.reindex_queries``): the cross states were scored in the
    main pass; the half-migrated catalog is built here once per candidate and freed
    (:func:`evalkit.reindex_stage.analyse_candidate`)."""
    if rpass is None:
        return {}
    data, (base_v, *cand_v) = evaluation.data, versions
    base_r, *cand_r = evaluation.results
    gates = GateConfig.from_mapping(
        OmegaConf.to_container(cfg.gates, resolve=True), primary_metric=cfg.primary_metric
    )
    st = CompareSettings.from_mapping(OmegaConf.to_container(cfg.compare, resolve=True))
    metric = gates.metric
    boot = {"n_resamples": st.bootstrap, "seed": st.seed, "confidence": st.confidence}
    quiet = OmegaConf.merge(cfg, {"progress": False})
    out = {}
    for v, r in zip(cand_v, cand_r):
        known = {"baseline": base_r.per_query[metric], "candidate": r.per_query[metric]}
        da, db = int(base_r.extra.get("dim", 0)), int(r.extra.get("dim", 0))
        if da != db:  # the two main evaluations' values: every query, nothing to search
            out[v.name] = dims_differ(da, db, metric, known, **boot)
            continue
        if "catalog_parts" in base_r.extra or "catalog_parts" in r.extra:
            # engine=ray streamed a precomputed catalog: it is never loaded on the driver whole
            log.info(
                "re-index %s: not analysed (catalog streamed on Ray, never on the driver)", v.name
            )
            continue
        out[v.name] = analyse_candidate(
            rpass,
            base_v,
            v,
            known,
            data,
            quiet,
            spec,
            id_rank,
            fraction=float(cfg.compare.get("reindex_fraction", 0.5)),
            margin=gates.primary_metric.margin,
            **boot,
        )
        log.info("re-index %s: %s", v.name, out[v.name].action)
    log.info("re-index analysis on %d sampled queries: %.1f s", len(rpass.query_ids), rpass.seconds)
    return out


def with_clicks(data: EvalData, clicks_cfg: Any) -> tuple[EvalData, ClickStage | None]:
    """Attach the configured click log (read or simulated): its new queries, its judgments when
    they are to be used, and its digest in the fingerprint.  A log the dataset brought itself
    (the demo's simulated one) is kept when no click log is configured."""
    stage = load_clicks(clicks_cfg, data) if clicks_cfg is not None else None
    if stage is None:
        return data, None
    queries = data.queries
    if stage.new_queries:
        queries = replace(
            queries,
            ids=[*queries.ids, *stage.new_queries],
            texts=[*queries.texts, *stage.new_queries.values()],
            language=None
            if queries.language is None
            else [*queries.language, *[""] * len(stage.new_queries)],
            frequency=None
            if queries.frequency is None
            else [*queries.frequency, *[0.0] * len(stage.new_queries)],
            attributes={
                k: [*v, *[""] * len(stage.new_queries)] for k, v in queries.attributes.items()
            },
        )
    judgments = stage.judgments if stage.judgments is not None else data.judgments
    fingerprint = fingerprint_data(
        data.catalog,
        queries,
        judgments,
        data.text_field,
        clicks=stage.log.digest(),
        known={"catalog": data.fingerprint.get("catalog", "")},
        title_separator=data.title_separator,
    )
    data = replace(
        data, queries=queries, judgments=judgments, clicks=stage.log, fingerprint=fingerprint
    )
    return data, stage


def report_clicks(
    evaluation: Evaluation, cfg: DictConfig, tracker: Tracker | None, parent: str | None
) -> Path | None:
    """Similarity-vs-click correlations per version (and vs the baseline), logged and plotted."""
    log_ = evaluation.data.clicks
    sims = {
        r.name: r.click_similarity for r in evaluation.results if r.click_similarity is not None
    }
    if not sims:
        return None
    baseline = evaluation.results[0].name if evaluation.results[0].name in sims else None
    if baseline is None:
        log.warning(
            "baseline %s has no click similarities: no click-correlation deltas",
            evaluation.results[0].name,
        )
    clicks_cfg = OmegaConf.to_container(cfg.clicks, resolve=True) if cfg.get("clicks") else {}
    plot = evaluation.output_dir / "click_scatter.png"
    report = click_report(
        log_, log_.pairs(), sims, baseline=baseline, cfg=clicks_cfg, plot_path=plot
    )
    evaluation.click_report = report
    if tracker is not None and parent is not None:
        for r in evaluation.results:
            if r.name in sims and r.run_id:
                tracker.log_metrics(r.run_id, report.metrics(r.name))
                tracker.log_params(r.run_id, report.params())
        tracker.log_params(parent, report.params())
        tracker.log_metrics(
            parent,
            {
                f"{k}" if len(sims) == 2 else f"{r.name}/{k}": v
                for r in evaluation.results[1:]
                if r.name in report.differences
                for k, v in report.differences[r.name].metrics().items()
            },
        )
        if report.plot is not None:
            tracker.log_artifact(parent, report.plot)
    return report.plot


def click_tests(evaluation: Evaluation, gates: GateConfig) -> dict[str, dict] | None:
    """Each candidate's paired click-correlation differences the click gate tests (pooled
    ``gates.click_correlation.statistic`` and within-query Spearman)."""
    report = evaluation.click_report
    if report is None or report.baseline is None:
        return None
    base = report.correlations[report.baseline]
    return {
        name: compare_click_tests(corr, base, gates.click_correlation.statistic)
        for name, corr in report.correlations.items()
        if name != report.baseline
    }


def compare_and_report(
    evaluation: Evaluation,
    cfg: DictConfig,
    metrics: list[str],
    tracker: Tracker | None,
    parent: str | None,
    checks: list[dict[str, Any]] | None = None,
    scatter_png: Path | None = None,
    reindex: dict[str, ReindexAnalysis] | None = None,
) -> Verdict:
    """Compare every candidate with the baseline, write the report and log it on the parent run."""
    gates = GateConfig.from_mapping(
        OmegaConf.to_container(cfg.gates, resolve=True), primary_metric=cfg.primary_metric
    )
    verdict = compare_versions(
        evaluation.results[0],
        evaluation.results[1:],
        data=evaluation.data,
        gates=gates,
        settings=CompareSettings.from_mapping(OmegaConf.to_container(cfg.compare, resolve=True)),
        checks=checks,
        metrics=metrics,
        reindex=reindex,
        click_tests=click_tests(evaluation, gates),
    )
    sections = []
    if evaluation.click_report is not None:
        head, rows = evaluation.click_report.table()
        sections.append(
            Section(
                f"Similarity vs {evaluation.click_report.label}",
                head,
                rows,
                note="Correlation between each version's cosine similarity and the logged "
                f"{evaluation.click_report.label} of every (query, item) pair; 95% bootstrap "
                "intervals resample queries, the delta is paired.",
            )
        )
    files = write_report(verdict, evaluation.output_dir, scatter_png=scatter_png, sections=sections)
    if tracker is not None and parent is not None:
        tracker.log_metrics(parent, comparison_metrics(verdict))
        tracker.set_tags(parent, verdict_tags(verdict))
        for path in (files.markdown, files.html, files.verdict_json):
            tracker.log_artifact(parent, path)
    evaluation.worklist = write_worklist(evaluation, cfg, tracker, parent)
    return verdict


def write_worklist(
    evaluation: Evaluation, cfg: DictConfig, tracker: Tracker | None, parent: str | None
) -> Worklist | None:
    """``judging_worklist.csv`` (:mod:`evalkit.compare.worklist`) in the run folder and on the
    parent run, when either version's top k (the primary metric's cut-off) holds unjudged items."""
    gate = cfg.gates.get("primary_metric") if cfg.get("gates") else None
    metric = (gate.get("metric") if hasattr(gate, "get") else None) or cfg.primary_metric
    size = int(cfg.compare.get("worklist_size", 200))
    worklist = evaluation_worklist(
        evaluation.results[0], evaluation.results[1:], evaluation.data, str(metric), size
    )
    if worklist is None or not worklist.rows:
        return None
    path = worklist.write_csv(evaluation.output_dir / WORKLIST_FILE)
    if tracker is not None and parent is not None:
        tracker.log_artifact(parent, path)
    return worklist
