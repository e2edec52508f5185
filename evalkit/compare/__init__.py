"""A/B comparison and release verdict: is candidate B safe to ship instead of baseline A?

Entry points (see each module's docstring for definitions and conventions):

- :func:`compare_versions` (``verdict.py``): significance (``significance.py``, ``bootstrap.py``),
  drift (``drift.py``, ``overlap.py``, ``unjudged.py``), latency (``latency.py``), gates
  (``gates.py``, ``conf/gates/*.yaml``), slices (``slices.py``), regressions (``regressions.py``),
  fingerprint check (``same_data.py``) -> :class:`Verdict`.
- :func:`write_report`, :func:`comparison_metrics`, :func:`verdict_tags`, :func:`checklist_lines`,
  :func:`checklist_table` (the ``report/`` package: one module per writer, MLflow, JSON,
  terminal, plots, Markdown and HTML).
- Exit codes: :data:`EXIT_CODES` (0 PASS / WARN, 3 BLOCK, 4 INCONCLUSIVE) and :data:`EXIT_ERROR`
  (1).
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
