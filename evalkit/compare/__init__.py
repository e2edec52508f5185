"""A/B comparison and release verdict: is candidate B safe to ship instead of baseline A?

:func:`compare_versions` gives a :class:`Verdict`; the ``report/`` package writes it.  Exit codes:
:data:`EXIT_CODES` (0 PASS / WARN, 3 BLOCK, 4 INCONCLUSIVE) and :data:`EXIT_ERROR` (1).
"""

from evalkit.compare.gate_config import GateConfig
from evalkit.compare.gate_rules import GateResult
from evalkit.compare.report import (
    checklist_lines,
    checklist_table,
    comparison_metrics,
    verdict_dict,
    verdict_tags,
    write_report,
)
from evalkit.compare.status import EXIT_CODES, EXIT_ERROR, Status, exit_code
from evalkit.compare.verdict import (
    CandidateComparison,
    CompareSettings,
    Verdict,
    compare_pair,
    compare_versions,
)

__all__ = [
    "EXIT_CODES",
    "EXIT_ERROR",
    "CandidateComparison",
    "CompareSettings",
    "GateConfig",
    "GateResult",
    "Status",
    "Verdict",
    "checklist_lines",
    "checklist_table",
    "compare_pair",
    "compare_versions",
    "comparison_metrics",
    "exit_code",
    "verdict_dict",
    "verdict_tags",
    "write_report",
]
