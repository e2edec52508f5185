"""The evaluation, end to end: load -> embed -> index -> replay -> score -> compare -> track.

:func:`run_evaluation` takes the composed Hydra config and returns an :class:`Evaluation`;
:mod:`evalkit.cli` is only the thin ``@hydra.main`` entry point around it.  Every stage is a
call into its own layer, so this module reads as the data flow of the tool.

>>> from evalkit.pipeline import judged_pairs
>>> judged_pairs({"q1": {"d2": 1, "d1": 0}}, ["q1"], ["d1", "d2"])
([('q1', 'd1'), ('q1', 'd2')], array([0, 0]), array([0, 1]))
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from evalkit.checks import gate_rows, log_checks, run_checks, write_checks
from evalkit.clicks.stage import ClickStage, click_report, load_clicks, pair_rows
from evalkit.compare import (
    CompareSettings,
    GateConfig,
    Verdict,
    compare_versions,
    comparison_metrics,
    verdict_tags,
    write_report,
)
from evalkit.compare.fingerprint import check_fingerprints
from evalkit.compare.report import Section
from evalkit.data.fingerprint import fingerprint_data
from evalkit.data.schema import EvalData
from evalkit.embed import embed_texts
from evalkit.errors import ConfigError
from evalkit.index.faiss_index import IndexSpec, build_index, measure_ann_recall
from evalkit.instantiate import build
from evalkit.metrics.ir import check_metrics, mlflow_name, score
from evalkit.results import VersionResult
from evalkit.retrieve.replay import id_ranks, replay
from evalkit.retrieve.trec import write_trec
from evalkit.track.baseline import (
    CLICK_PAIRS_FILE,
    LATENCY_FILE,
    PAIRS_FILE,
    load_version_result,
    write_latency,
    write_pairs,
)
from evalkit.track.mlflow_tracker import Tracker, flatten

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


def judged_pairs(
    qrels: dict[str, dict[str, int]], query_ids: list[str], item_ids: list[str]
) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Every judged (query, item) pair, sorted, with their query and catalog row numbers."""
    q_row = {q: i for i, q in enumerate(query_ids)}
    i_row = {d: i for i, d in enumerate(item_ids)}
    pairs = sorted((q, d) for q, items in qrels.items() if q in q_row for d in items if d in i_row)
    qr = np.fromiter((q_row[q] for q, _ in pairs), dtype=np.int64, count=len(pairs))
    ir = np.fromiter((i_row[d] for _, d in pairs), dtype=np.int64, count=len(pairs))
    return pairs, qr, ir


def pair_cosine(
    q_vecs: np.ndarray, i_vecs: np.ndarray, qr: np.ndarray, ir: np.ndarray
) -> np.ndarray:
    """Row-wise inner products of the given query/item rows, in chunks (vectors are normalised)."""
    out = np.empty(len(qr), dtype=np.float32)
    for s in range(0, len(qr), 65536):
        a, b = q_vecs[qr[s : s + 65536]], i_vecs[ir[s : s + 65536]]
        out[s : s + 65536] = np.einsum("ij,ij->i", a, b)
    return out


def _latency_probe(
    version: Any, texts: list[str], sample: int, seed: int
) -> tuple[np.ndarray, float]:
    """Per-request latencies and texts/s on an uncached sample of query texts."""
    if not texts or sample <= 0:
        return np.zeros(0), float("nan")
    rng = np.random.default_rng(seed)
    take = rng.choice(len(texts), size=min(sample, len(texts)), replace=False)
    probe = [texts[i] for i in np.sort(take)]
    t0 = time.perf_counter()
    res = embed_texts(version, probe, "query", cache_dir=None, progress=False)
    wall = time.perf_counter() - t0
    return np.asarray(res.latencies_s, dtype=np.float64), len(probe) / wall if wall > 0 else float(
        "nan"
    )


def evaluate_version(
    version: Any,
    data: EvalData,
    cfg: DictConfig,
    spec: IndexSpec,
    metrics: list[str],
    id_rank: np.ndarray,
) -> tuple[VersionResult, dict[str, float]]:
    """Embed, index, replay and score one model version. Returns its result and run statistics."""
    cache_dir = Path(cfg.cache.dir) if cfg.cache.enabled else None
    stats: dict[str, float] = {}
    t0 = time.perf_counter()
    docs = embed_texts(
        version,
        data.catalog.text_for(data.text_field),
        "document",
        cache_dir=cache_dir,
        progress=cfg.progress,
    )
    tq = time.perf_counter()
    queries = embed_texts(
        version, data.queries.texts, "query", cache_dir=cache_dir, progress=cfg.progress
    )
    q_seconds = time.perf_counter() - tq
    stats["embed_seconds"] = time.perf_counter() - t0
    stats["embed_requests"] = docs.n_requests + queries.n_requests
    stats["embed_cached"] = docs.n_cached + queries.n_cached
    stats["dim"] = docs.vectors.shape[1]

    t0 = time.perf_counter()
    index = build_index(docs.vectors, spec)
    stats["index_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ranking = replay(
        index,
        queries.vectors,
        data.queries.ids,
        data.catalog.ids,
        int(cfg.k),
        batch_size=spec.search_batch,
        progress=cfg.progress,
        id_rank=id_rank,
    )
    stats["search_seconds"] = time.perf_counter() - t0
    stats["ties"] = ranking.ties
    stats["boundary_ties"] = ranking.boundary_ties
    if not spec.exact:
        recall = measure_ann_recall(
            docs.vectors,
            queries.vectors,
            ranking.indices,
            ranking.k,
            spec.ann_recall_sample,
            cfg.seed,
        )
        stats[f"ann_recall_at_{ranking.k}"] = recall

    qrels = data.judgments.qrels if data.judgments is not None else {}
    scores = score(ranking, qrels, metrics)
    stats["queries_scored"] = scores.n_scored
    stats["queries_without_relevant"] = scores.n_without_relevant

    pairs, qr, ir = judged_pairs(qrels, data.queries.ids, data.catalog.ids)
    similarity = pair_cosine(queries.vectors, docs.vectors, qr, ir)
    click_similarity = None
    if data.clicks is not None:
        cq, ci = pair_rows(data.clicks, data.queries.ids, data.catalog.ids)
        click_similarity = np.full(len(cq), np.nan, dtype=np.float32)
        ok = (cq >= 0) & (ci >= 0)
        click_similarity[ok] = pair_cosine(queries.vectors, docs.vectors, cq[ok], ci[ok])

    # Latency of the query requests made now (none on a warm rerun), or of an explicit probe.
    latencies = np.asarray(queries.latencies_s, dtype=np.float64)
    throughput = len(data.queries) / q_seconds if queries.n_requests and q_seconds > 0 else None
    if cfg.latency.probe:
        latencies, throughput = _latency_probe(
            version, data.queries.texts, int(cfg.latency.probe), cfg.seed
        )
        stats["latency_probe_requests"] = len(latencies)
    result = VersionResult(
        name=version.name,
        params=version.params(),
        overall=scores.overall,
        per_query=scores.per_query,
        ranking=ranking,
        pair_ids=pairs,
        pair_similarity=similarity,
        latencies_s=latencies,
        throughput=throughput,
        batch_size=getattr(version, "batch_size", None),
        concurrency=getattr(version, "concurrency", 1),
        fingerprint=dict(data.fingerprint),
        click_similarity=click_similarity,
        extra=stats,
    )
    return result, stats


def _write_version_files(
    result: VersionResult, out: Path, click_pairs: list[tuple[str, str]] | None = None
) -> dict[str, Path]:
    """The per-query metric table and the TREC run file of one version."""
    out = out / result.name
    out.mkdir(parents=True, exist_ok=True)
    per_query = out / "per_query.csv"
    metrics = list(result.per_query)
    qids = sorted(next(iter(result.per_query.values()), {}))
    with open(per_query, "w", encoding="utf-8") as fh:
        fh.write(",".join(["query_id", *metrics]) + "\n")
        for q in qids:
            fh.write(",".join([_csv(q), *(repr(result.per_query[m][q]) for m in metrics)]) + "\n")
    trec = out / "runs" / f"{result.name}.trec"
    trec.parent.mkdir(parents=True, exist_ok=True)
    write_trec(result.ranking, trec, result.name)
    pairs = out / PAIRS_FILE
    write_pairs(pairs, result.pair_ids, result.pair_similarity)
    files = {"pairs": pairs}
    if result.click_similarity is not None and click_pairs is not None:
        files["click_pairs"] = out / CLICK_PAIRS_FILE
        write_pairs(files["click_pairs"], click_pairs, result.click_similarity)
    latency = out / LATENCY_FILE
    write_latency(
        latency,
        result.latencies_s,
        result.throughput,
        batch_size=result.batch_size,
        concurrency=result.concurrency,
    )
    return {**files, "per_query": per_query, "trec": trec, "latency": latency}


def _csv(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s


def _dataset_params(data: EvalData) -> dict[str, Any]:
    return {
        "dataset.name": data.name,
        "dataset.text_field": data.text_field,
        "dataset.synthetic": data.synthetic,
        "dataset.items": len(data.catalog),
        "dataset.queries": len(data.queries),
        "dataset.judgments": len(data.judgments) if data.judgments is not None else 0,
        "dataset.judgment_method": data.judgments.method if data.judgments is not None else "none",
        **{f"dataset.fingerprint.{k}": v for k, v in data.fingerprint.items()},
        **{f"dataset.skipped.{k}": v for k, v in data.skipped.items()},
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
    from evalkit.track.mlflow_tracker import SECRET_KEY

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
    if not cfg.models:
        raise ConfigError("no model version selected: use e.g. models=[use_m3,e5_small]")
    versions = [build(cfg.models[name], f"model version {name!r}") for name in cfg.models]
    for name, v in zip(cfg.models, versions):
        if v.name != name:
            raise ConfigError(f"conf/models/{name}.yaml names its version {v.name!r}; use {name!r}")
    spec: IndexSpec = build(cfg.index, "index")
    data: EvalData = build(cfg.dataset, "dataset")
    data, click_stage = with_clicks(data, cfg.get("clicks"))
    if data.judgments is None or not data.judgments.qrels:
        raise ConfigError(
            f"dataset {data.name!r} has no judgments: give human judgments or a click log "
            "to derive them from (clicks=log)"
        )

    tracker = Tracker(cfg.tracking.uri, cfg.tracking.experiment) if cfg.tracking.enabled else None
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
        run_name = cfg.tracking.run_name or f"{data.name}: {' vs '.join(v.name for v in versions)}"
        parent = tracker.start_parent(run_name, tags=_tags(data))
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
                **(click_stage.params() if click_stage is not None else {}),
                **{
                    f"override.{o.split('=', 1)[0]}": o.split("=", 1)[1]
                    for o in overrides or []
                    if "=" in o
                },
            },
        )
        tracker.log_artifact(parent, config_file)
    check_rows: list[dict[str, Any]] | None = None  # None: the endpoint checks were not run
    try:
        id_rank = id_ranks(data.catalog.ids)
        for i, version in enumerate(versions):
            log.info("evaluating model version %s", version.name)
            result, stats = evaluate_version(version, data, cfg, spec, metrics, id_rank)
            click_pairs = data.clicks.pairs() if data.clicks is not None else None
            files = _write_version_files(result, out, click_pairs)
            if cfg.get("run_checks"):
                checks = run_checks(version, cfg.get("checks"))
                files["checks"] = write_checks(checks, out / version.name / "checks.json")
                check_rows = [*(check_rows or []), *gate_rows(checks, version.name)]
            evaluation.results.append(result)
            if tracker is not None:
                child = tracker.start_child(
                    parent,
                    version.name,
                    tags={
                        **_tags(data),
                        "evalkit.model_version": version.name,
                        "evalkit.role": "baseline" if i == 0 and not baseline_run else "candidate",
                    },
                )
                result.run_id = child
                evaluation.child_run_ids[version.name] = child
                tracker.log_params(
                    child,
                    {
                        **flatten(version.params(), "model."),
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
                        **_latency_metrics(result),
                    },
                )
                tracker.log_artifact(child, config_file)
                tracker.log_artifact(child, files["per_query"])
                tracker.log_artifact(child, files["trec"], "runs")
                tracker.log_artifact(child, files["pairs"])
                tracker.log_artifact(child, files["latency"])
                if "checks" in files:
                    log_checks(tracker, child, checks, files["checks"])
                if "click_pairs" in files:
                    tracker.log_artifact(child, files["click_pairs"])
                tracker.finish(child)
        scatter = None
        if data.clicks is not None:
            scatter = report_clicks(evaluation, cfg, tracker, parent)
        if len(evaluation.results) >= 2:
            evaluation.comparison = compare_and_report(
                evaluation, cfg, metrics, tracker, parent, checks=check_rows, scatter_png=scatter
            )
            evaluation.exit_code = evaluation.comparison.exit_code
    except BaseException:
        if tracker is not None and parent is not None:
            tracker.finish(parent, "FAILED")
        raise
    if tracker is not None and parent is not None:
        tracker.finish(parent)
    return evaluation


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


def compare_and_report(
    evaluation: Evaluation,
    cfg: DictConfig,
    metrics: list[str],
    tracker: Tracker | None,
    parent: str | None,
    checks: list[dict[str, Any]] | None = None,
    scatter_png: Path | None = None,
) -> Verdict:
    """Compare every candidate with the baseline, write the report and log it on the parent run."""
    verdict = compare_versions(
        evaluation.results[0],
        evaluation.results[1:],
        data=evaluation.data,
        gates=GateConfig.from_mapping(
            OmegaConf.to_container(cfg.gates, resolve=True), primary_metric=cfg.primary_metric
        ),
        settings=CompareSettings.from_mapping(OmegaConf.to_container(cfg.compare, resolve=True)),
        checks=checks,
        metrics=metrics,
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
    return verdict


def _latency_metrics(result: VersionResult) -> dict[str, float]:
    lat = result.latencies_s
    if len(lat) == 0:
        return {}
    p50, p95, p99 = np.percentile(lat * 1000.0, [50, 95, 99])
    return {
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_p99_ms": p99,
        "throughput_texts_per_s": result.throughput or float("nan"),
    }
