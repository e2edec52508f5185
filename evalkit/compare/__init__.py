"""A/B comparison and release verdict: is candidate B safe to ship instead of baseline A?

:func:`compare_versions` gives a :class:`Verdict`; the ``report/`` package writes it.  Exit codes:
:data:`EXIT_CODES` (0 PASS / WARN, 3 BLOCK, 4 INCONCLUSIVE) and :data:`EXIT_ERROR` (1).
"""

from evalkit.compare.report import (
    checklist_lines,
    checklist_table,
    comparison_metrics,
    verdict_tags,
    write_report,
)
from evalkit.compare.status import EXIT_CODES, EXIT_ERROR
from evalkit.compare.verdict import Verdict, compare_versions

__all__ = [
    "EXIT_CODES",
    "EXIT_ERROR",
    "Verdict",
    "checklist_lines",
    "checklist_table",
    "compare_versions",
    "comparison_metrics",
    "verdict_tags",
    "write_report",
]
