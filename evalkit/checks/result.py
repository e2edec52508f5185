"""One endpoint check's outcome, and the ``checks.json`` file a list of them becomes.

``checks.json`` is a JSON list of objects with exactly ``name``, ``status`` (PASS / WARN / FAIL /
SKIP), ``observed``, ``expected`` and ``reason``.  A FAIL blocks a release (:func:`verdict`).

>>> c = Check("vectors.finite", Status.PASS, observed={"nan": 0}, expected="no NaN", reason="ok")
>>> to_json([c])[0]["status"], verdict([c]), verdict([c, c.replace(status=Status.FAIL)])
('PASS', 'PASS', 'BLOCK')
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from evalkit.errors import DataError
from evalkit.redact import redact, redact_data

FIELDS = ("name", "status", "observed", "expected", "reason")
CHECKS_FILE = "checks.json"
STYLES = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim"}


class Status(StrEnum):
    """A check's outcome; FAIL blocks a release, WARN is reported, SKIP did not apply."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


def plain(value: Any) -> Any:
    """``value`` as JSON-serialisable plain data (numpy scalars/arrays to Python, NaN to None).

    >>> plain({"a": np.float32(0.5), "b": [np.int64(2), float("nan")]})
    {'a': 0.5, 'b': [2, None]}
    """
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


@dataclass(frozen=True)
class Check:
    """One check, JSON-serialisable; server messages quoted in it are redacted when it is made."""

    name: str
    status: Status
    observed: Any = None
    expected: Any = None
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "observed", redact_data(plain(self.observed)))
        object.__setattr__(self, "expected", redact_data(plain(self.expected)))
        object.__setattr__(self, "reason", redact(str(self.reason or "")))

    @property
    def blocks(self) -> bool:
        return self.status is Status.FAIL

    def replace(self, **changes: Any) -> Check:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in FIELDS} | {"status": str(self.status)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "checks", row: int = 0) -> Check:
        """Parse one ``checks.json`` object; :class:`DataError` names the row and field."""

        def bad(problem: str, field: str | None = None, expected: str | None = None) -> DataError:
            expected = expected or f"an object with {', '.join(FIELDS)}"
            return DataError(problem, file=source, row=row or None, field=field, expected=expected)

        if not isinstance(d, Mapping):
            raise bad(f"entry is a {type(d).__name__}")
        missing = [f for f in FIELDS if f not in d]
        if missing:
            raise bad(f"missing {', '.join(missing)}", missing[0])
        try:
            status = Status(str(d["status"]).upper())
        except ValueError:
            raise bad(
                f"status {d['status']!r} is unknown", "status", "PASS, WARN, FAIL or SKIP"
            ) from None
        if not isinstance(d["name"], str) or not d["name"]:
            raise bad(f"name {d['name']!r} is invalid", "name", "a non-empty string")
        return cls(d["name"], status, d["observed"], d["expected"], str(d["reason"] or ""))


def to_json(checks: Iterable[Check]) -> list[dict[str, Any]]:
    """The ``checks.json`` content: one plain object per check, in order."""
    return [c.to_dict() for c in checks]


def write_checks(checks: Iterable[Check], path: str | Path) -> Path:
    """Write ``checks.json`` (UTF-8, indented, API keys redacted); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(redact_data(to_json(checks)), indent=2, ensure_ascii=False, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def read_checks(path: str | Path) -> list[Check]:
    """Read a ``checks.json`` file back (rows are 1-based in errors)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DataError(f"cannot read it ({err.strerror})", file=str(path)) from err
    except ValueError as err:
        raise DataError(f"not valid JSON ({err})", file=str(path), expected="a JSON list") from err
    if not isinstance(data, list):
        raise DataError(
            f"top level is a {type(data).__name__}", file=str(path), expected="a JSON list"
        )
    return [Check.from_dict(d, source=str(path), row=i) for i, d in enumerate(data, start=1)]


def counts(checks: Iterable[Check]) -> dict[str, int]:
    """Number of checks per status (every status present, zero if none)."""
    seen = Counter(str(c.status) for c in checks)
    return {str(s): seen[str(s)] for s in Status}


def check_metrics(checks: Sequence[Check]) -> dict[str, float]:
    """``checks_pass`` / ``checks_warn`` / ``checks_fail`` / ``checks_skip`` counts.

    >>> check_metrics([Check("a", "FAIL"), Check("b", "PASS")])["checks_fail"]
    1.0
    """
    return {f"checks_{k.lower()}": float(v) for k, v in counts(checks).items()}


def verdict(checks: Sequence[Check]) -> str:
    """``BLOCK`` if any check FAILed, ``WARN`` if any warned, else ``PASS`` (SKIPs ignored)."""
    statuses = {c.status for c in checks}
    if Status.FAIL in statuses:
        return "BLOCK"
    return "WARN" if Status.WARN in statuses else "PASS"


def gate_rows(checks: Iterable[Check], version: str | None = None) -> list[dict[str, Any]]:
    """Checks as the release gates consume them: SKIPs dropped, ``version`` added if given."""
    extra = {} if version is None else {"version": version}
    return [c.to_dict() | extra for c in checks if c.status is not Status.SKIP]


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
        status, values = str(c.status), (compact(c.observed), compact(c.expected), c.reason)
        table.add_row(c.name, f"[{STYLES[status]}]{status}[/]", *values)
    return table
