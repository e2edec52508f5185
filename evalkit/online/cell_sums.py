"""Per-(group, unit) sums of requests in one compiled pass (the reader's heaviest step), added
in request order as ``bincount`` adds them (the same floats); ``nogil``: arms run side by side.

>>> import numpy as np
>>> arm, code, group = np.array([0, 0, 0, 1]), np.array([1, 0, 1, 0]), np.array([0, 0, 1, 0])
>>> imp, clicks = np.array([3, 2, 1, 5], np.int32), np.array([1, 0, 1, 0], np.int32)
>>> first_p, auc2 = np.array([2, 0, 1, 0], np.int32), np.array([4, 0, 0, 0], np.int32)
>>> cells, sums = cell_sums(arm, 0, code, group, 2, 2, imp, clicks, first_p, auc2, True, True)
>>> cells.tolist(), sums[:, 0].tolist(), sums[:, 4].tolist()
([0, 1, 3], [1.0, 1.0, 1.0], [0.0, 0.5, 1.0])
"""

from __future__ import annotations

import numpy as np
from numba import njit

FULL_FIELDS = 7  # UnitSums.FIELDS, in order
REQUEST_FIELDS = 2  # RequestSums.FIELDS, in order


def cell_sums(
    arm: np.ndarray,
    k: int,
    code: np.ndarray,
    group: np.ndarray | None,
    units: int,
    groups: int,
    imp: np.ndarray,
    clicks: np.ndarray,
    first_p: np.ndarray,
    auc2: np.ndarray,
    has_score: bool,
    full: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The sorted cells (int64) of the requests of arm ``k`` (``arm[i] == k``) and their sums,
    shape ``(cells, 7)`` with ``full`` (the :class:`UnitSums` fields) else ``(cells, 2)``
    (requests, clicked requests).  ``group`` None: one group (the cell is the unit)."""
    # one compiled signature (each cached one costs its load time in every process)
    g = np.zeros(0, np.int64) if group is None else group.astype(np.int64, copy=False)
    i32 = [np.asarray(x).astype(np.int32, copy=False) for x in (imp, clicks, first_p, auc2)]
    return _cell_sums(
        arm.astype(np.int8, copy=False), int(k), code.astype(np.int64, copy=False), g,
        int(units), int(groups), *i32, bool(has_score), bool(full),
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _cell_sums(arm, a, code, group, units, groups, imp, clicks, first_p, auc2, has_score, full):
    n = code.size
    size = groups * units
    grouped = group.size > 0
    rank = np.zeros(size, np.int32)
    for i in range(n):
        if arm[i] != a:
            continue
        k = group[i] * units + code[i] if grouped else code[i]
        rank[k] = 1
    m = 0
    for k in range(size):
        if rank[k]:
            m += 1
            rank[k] = m
    cells = np.empty(m, np.int64)
    for k in range(size):
        if rank[k]:
            cells[rank[k] - 1] = k
    out = np.zeros((m, FULL_FIELDS if full else REQUEST_FIELDS), np.float64)
    for i in range(n):
        if arm[i] != a:
            continue
        k = group[i] * units + code[i] if grouped else code[i]
        j = rank[k] - 1
        c = clicks[i]
        out[j, 0] += 1.0
        if c > 0:
            out[j, 1] += 1.0
        if full:
            out[j, 2] += imp[i]
            out[j, 3] += c
            if first_p[i] > 0:
                out[j, 4] += 1.0 / first_p[i]
            if has_score:
                out[j, 5] += auc2[i] * 0.5
                out[j, 6] += c * (imp[i] - c)
    return cells, out
