"""The click stage after every version is evaluated: similarity-vs-click correlations, their
differences to the baseline (tested by the click gate: :func:`click_tests`) and the scatter plot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.clicks.stage import ClickReport, click_report
from evalkit.compare.click_tests import click_tests as compare_click_tests
from evalkit.compare.gate_config import GateConfig
from evalkit.data.schema import EvalData
from evalkit.results import VersionResult

log = logging.getLogger(__name__)


def report_clicks(
    results: Sequence[VersionResult],
    data: EvalData,
    clicks: dict[str, Any] | None,
    output_dir: Path,
) -> ClickReport | None:
    """The click report and ``click_scatter.png``; None when no version has click similarities."""
    log_ = data.clicks
    sims = {r.name: r.click_similarity for r in results if r.click_similarity is not None}
    if log_ is None or not sims:
        return None
    baseline = results[0].name if results[0].name in sims else None
    if baseline is None:
        log.warning(
            "baseline %s has no click similarities: no click-correlation deltas", results[0].name
        )
    plot = output_dir / "click_scatter.png"
    return click_report(
        log_, log_.pairs(), sims, baseline=baseline, cfg=clicks or {}, plot_path=plot
    )


def delta_metrics(report: ClickReport, results: Sequence[VersionResult]) -> dict[str, float]:
    """The parent run's click-correlation deltas (prefixed by the candidate with several)."""
    n = sum(1 for r in results if r.name in report.correlations)
    return {
        k if n == 2 else f"{r.name}/{k}": v
        for r in results[1:]
        if r.name in report.differences
        for k, v in report.differences[r.name].metrics().items()
    }


def click_tests(report: ClickReport | None, gates: GateConfig) -> dict[str, dict] | None:
    """Each candidate's paired click-correlation differences the click gate tests."""
    if report is None or report.baseline is None:
        return None
    base = report.correlations[report.baseline]
    return {
        name: compare_click_tests(corr, base, gates.click_correlation.statistic)
        for name, corr in report.correlations.items()
        if name != report.baseline
    }
