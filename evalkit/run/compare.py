"""The comparison stage: the click report, the verdict with its report files, and the judging
worklist."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.clicks.stage import ClickReport, click_report
from evalkit.compare import Verdict, compare_versions, write_report
from evalkit.compare.click_tests import click_tests as compare_click_tests
from evalkit.compare.reindex_analysis import ReindexAnalysis
from evalkit.compare.report import Section
from evalkit.compare.worklist import WORKLIST_FILE, Worklist, evaluation_worklist
from evalkit.data.schema import EvalData
from evalkit.results import VersionResult
from evalkit.run.observer import RunObserver
from evalkit.run.run_settings import RunSettings

log = logging.getLogger(__name__)


def report_clicks(
    results: Sequence[VersionResult], data: EvalData, s: RunSettings, observer: RunObserver
) -> ClickReport | None:
    """The click report and ``click_scatter.png`` (None: no version has click similarities),
    observers told its metrics."""
    sims = {r.name: r.click_similarity for r in results if r.click_similarity is not None}
    if data.clicks is None or not sims:
        return None
    baseline = results[0].name if results[0].name in sims else None
    if baseline is None:
        log.warning(
            "baseline %s has no click similarities: no click-correlation deltas", results[0].name
        )
    plot, log_ = s.output_dir / "click_scatter.png", data.clicks
    clicks = click_report(
        log_, log_.pairs(), sims, baseline=baseline, cfg=s.clicks or {}, plot_path=plot
    )
    for r in results:
        if r.name in clicks.correlations:
            observer.version_metrics(r.name, clicks.metrics(r.name), clicks.params())
    # the parent run's click-correlation deltas (prefixed by the candidate with several)
    n = sum(1 for r in results if r.name in clicks.correlations)
    deltas = {
        k if n == 2 else f"{r.name}/{k}": v
        for r in results[1:]
        if r.name in clicks.differences
        for k, v in clicks.differences[r.name].metrics().items()
    }
    observer.run_metrics(deltas, clicks.params())
    if clicks.plot is not None:
        observer.artifact_written(clicks.plot)
    return clicks


def compare_and_report(
    results: Sequence[VersionResult],
    data: EvalData,
    settings: RunSettings,
    *,
    checks: list[dict[str, Any]] | None = None,
    clicks: ClickReport | None = None,
    reindex: dict[str, ReindexAnalysis] | None = None,
) -> tuple[Verdict, list[Path]]:
    """Compare every candidate with the baseline and write the report: ``(verdict, files)``."""
    click_tests = None  # each candidate's paired click-correlation differences (the click gate)
    if clicks is not None and clicks.baseline is not None:
        base = clicks.correlations[clicks.baseline]
        click_tests = {
            name: compare_click_tests(corr, base, settings.gates.click_correlation.statistic)
            for name, corr in clicks.correlations.items()
            if name != clicks.baseline
        }
    verdict = compare_versions(
        results[0],
        list(results[1:]),
        data=data,
        gates=settings.gates,
        settings=settings.compare,
        checks=checks,
        metrics=list(settings.metrics),
        reindex=reindex,
        click_tests=click_tests,
    )
    sections = []
    if clicks is not None:
        head, rows = clicks.table()
        note = (
            f"Correlation between each version's cosine similarity and the logged {clicks.label} "
            "of every (query, item) pair; 95% bootstrap intervals resample queries, the delta is "
            "paired."
        )
        sections.append(Section(f"Similarity vs {clicks.label}", head, rows, note=note))
    scatter = clicks.plot if clicks is not None else None
    files = write_report(verdict, settings.output_dir, scatter_png=scatter, sections=sections)
    return verdict, [files.markdown, files.html, files.verdict_json]


def write_worklist(
    results: Sequence[VersionResult], data: EvalData, settings: RunSettings
) -> tuple[Worklist | None, Path | None]:
    """``judging_worklist.csv`` when either version's top k holds unjudged items:
    ``(worklist, path)``, else ``(None, None)``."""
    worklist = evaluation_worklist(
        results[0],
        list(results[1:]),
        data,
        settings.gates.metric,
        settings.compare.worklist_size,
        order=settings.compare.worklist_order,
        seed=settings.compare.seed,
    )
    if worklist is None or not worklist.rows:
        return None, None
    return worklist, worklist.write_csv(settings.output_dir / WORKLIST_FILE)
