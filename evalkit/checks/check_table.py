"""The terminal table of endpoint checks: one row per check, status coloured.

>>> import os
>>> from rich.console import Console
>>> from evalkit.checks.result import Check
>>> console = Console(width=120, record=True, file=open(os.devnull, "w"))
>>> console.print(checks_table([Check("vectors.finite", "PASS", {"with_nan": 0}, "no NaN", "ok")], "e5"))
>>> "with_nan=0" in console.export_text()
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from evalkit.checks.result import Check, counts, verdict

STYLES = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim"}


def compact(value: Any, limit: int = 70) -> str:
    """A short one-line rendering of an observed / expected value.

    >>> compact({"min": 0.99912345, "ok": True, "n": 3}), compact(None), compact([1, 2])
    ('min=0.9991, ok=True, n=3', '-', '1, 2')
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, dict):
        text = ", ".join(f"{k}={compact(v, limit)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(compact(v, limit) for v in value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checks_table(checks: Sequence[Check], version: str) -> Table:
    """A rich table of ``checks`` titled with the version and its verdict."""
    n = counts(checks)
    title = (
        f"Endpoint checks: {version} -> {verdict(checks)} "
        f"({n['PASS']} pass, {n['WARN']} warn, {n['FAIL']} fail, {n['SKIP']} skip)"
    )
    table = Table(title=title, show_lines=False)
    table.add_column("check", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for column in ("observed", "expected", "reason"):
        table.add_column(column, overflow="fold")
    for c in checks:
        status = str(c.status)
        table.add_row(
            c.name,
            f"[{STYLES[status]}]{status}[/]",
            compact(c.observed),
            compact(c.expected),
            c.reason,
        )
    return table
