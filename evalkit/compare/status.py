"""The outcome of a gate and of the verdict (:class:`Status`), and the process exit codes.

Exit codes (documented for CI): 0 PASS or WARN, 3 BLOCK, 4 INCONCLUSIVE, 1 error (any evalkit
error: bad data, config, endpoint, fingerprint mismatch).

>>> exit_code(worst([Status.PASS, Status.WARN])), exit_code(Status.BLOCK)
(0, 3)
>>> worst([Status.WARN, Status.INCONCLUSIVE]), exit_code(Status.INCONCLUSIVE)
(<Status.INCONCLUSIVE: 'INCONCLUSIVE'>, 4)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from enum import StrEnum
from typing import Any

import numpy as np


class Status(StrEnum):
    """A gate's (and the verdict's) outcome, ordered PASS < WARN < INCONCLUSIVE < BLOCK
    (INCONCLUSIVE: nothing blocks, but the data cannot show that B is no worse)."""

    PASS = "PASS"
    WARN = "WARN"
    INCONCLUSIVE = "INCONCLUSIVE"
    BLOCK = "BLOCK"

    @property
    def severity(self) -> int:
        return list(Status).index(self)

    @property
    def code(self) -> float:
        """The ``verdict_code`` metric: 0 PASS, 1 WARN, 1.5 INCONCLUSIVE, 2 BLOCK."""
        return _CODE[self]


_CODE = {Status.PASS: 0.0, Status.WARN: 1.0, Status.INCONCLUSIVE: 1.5, Status.BLOCK: 2.0}

#: Process exit code per verdict; any evalkit error exits with :data:`EXIT_ERROR`.
EXIT_CODES: dict[Status, int] = {
    Status.PASS: 0,
    Status.WARN: 0,
    Status.BLOCK: 3,
    Status.INCONCLUSIVE: 4,
}
EXIT_ERROR = 1


def exit_code(status: Status | str) -> int:
    """0 for PASS / WARN, 3 for BLOCK, 4 for INCONCLUSIVE."""
    return EXIT_CODES[Status(status)]


def worst(statuses: Iterable[Status | str]) -> Status:
    """The most severe status (PASS if there are none)."""
    return max((Status(s) for s in statuses), key=lambda s: s.severity, default=Status.PASS)


def jsonable(x: Any) -> Any:
    """Plain JSON data: dataclasses as dicts, tuples as lists, NaN / inf as None."""
    if is_dataclass(x) and not isinstance(x, type):
        return jsonable(asdict(x))
    if isinstance(x, Status):
        return str(x)
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
