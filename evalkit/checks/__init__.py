"""evalkit.checks: is this embedding endpoint safe to use? Vector sanity, long-text behaviour and
the OpenAI API contract, each check PASS / WARN / FAIL / SKIP, as plain data.

>>> from evalkit.checks import Check, Status, verdict
>>> verdict([Check("vectors.finite", Status.PASS), Check("contract.usage", Status.FAIL)])
'BLOCK'
"""

from evalkit.checks.config import ChecksConfig
from evalkit.checks.result import (
    CHECKS_FILE,
    Check,
    Status,
    check_metrics,
    counts,
    gate_rows,
    read_checks,
    to_json,
    verdict,
    write_checks,
)
from evalkit.checks.run_checks import run_checks

__all__ = [
    "CHECKS_FILE",
    "Check",
    "ChecksConfig",
    "Status",
    "check_metrics",
    "counts",
    "gate_rows",
    "read_checks",
    "run_checks",
    "to_json",
    "verdict",
    "write_checks",
]
