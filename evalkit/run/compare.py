"""The comparison stage: the verdict, its report files and the judging worklist."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.clicks.stage import ClickReport
from evalkit.compare import Verdict, compare_versions, write_report
from evalkit.compare.reindex_analysis import ReindexAnalysis
from evalkit.compare.report import Section
from evalkit.compare.worklist import WORKLIST_FILE, Worklist, evaluation_worklist
from evalkit.data.schema import EvalData
from evalkit.results import VersionResult
from evalkit.run.click_stage import click_tests
from evalkit.run.run_settings import RunSettings


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
    verdict = compare_versions(
        results[0],
        list(results[1:]),
        data=data,
        gates=settings.gates,
        settings=settings.compare,
        checks=checks,
        metrics=list(settings.metrics),
        reindex=reindex,
        click_tests=click_tests(clicks, settings.gates),
    )
    sections = []
    if clicks is not None:
        head, rows = clicks.table()
        sections.append(
            Section(
                f"Similarity vs {clicks.label}",
                head,
                rows,
                note="Correlation between each version's cosine similarity and the logged "
                f"{clicks.label} of every (query, item) pair; 95% bootstrap "
                "intervals resample queries, the delta is paired.",
            )
        )
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
