"""Render a :class:`~evalkit.compare.verdict.Verdict`: report.md, report.html, verdict.json,
the MLflow comparison metrics and the terminal checklist, one module per writer.  This module
writes the three files (:func:`write_report`) and re-exports the names other layers use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.compare.report.cells import Section
from evalkit.compare.report.checklist import _slice_summary as _slice_summary
from evalkit.compare.report.checklist import checklist_lines, checklist_table
from evalkit.compare.report.html import render_html
from evalkit.compare.report.markdown import render_markdown
from evalkit.compare.report.mlflow import comparison_metrics, verdict_tags
from evalkit.compare.report.verdict_json import verdict_dict
from evalkit.compare.verdict import Verdict

__all__ = [
    "ReportFiles",
    "Section",
    "checklist_lines",
    "checklist_table",
    "comparison_metrics",
    "verdict_dict",
    "verdict_tags",
    "write_report",
]


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    verdict_json: Path


def write_report(
    verdict: Verdict,
    out_dir: str | Path,
    scatter_png: str | Path | None = None,
    sections: Sequence[Section] = (),
) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and ``verdict.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out / "report.md", out / "report.html", out / "verdict.json")
    files.markdown.write_text(render_markdown(verdict, sections), encoding="utf-8")
    files.html.write_text(render_html(verdict, scatter_png, sections), encoding="utf-8")
    files.verdict_json.write_text(
        json.dumps(verdict_dict(verdict), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return files
