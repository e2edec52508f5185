"""One compiled pass over a log part's rows: per-request sums, position counts, the score grid.

:func:`scan_requests` walks each request's rows (the run ``starts[i] .. starts[i] + length[i]``)
once and returns :class:`Scan`: ``first_p`` is ``NO_CLICK`` without a click, ``auc2`` twice the
within-request Mann-Whitney U of score vs click; ``status`` 0 for a clean part, else the first
of :data:`REASONS` that sends the reader to its global path.

>>> import numpy as np
>>> starts, length = np.array([0, 3]), np.array([3, 2])
>>> arm = np.array([0, 1], np.int8)
>>> ck = np.array([0, 1, 0, 1, 1], np.int8)
>>> p = np.array([1, 2, 3, 1, 2], np.int32)
>>> s = np.array([0.9, 0.8, 0.1, 0.5, 0.4])
>>> out = scan_requests(starts, length, arm, ck, p, s, NONE_F, NONE_I, 0.1, 8.0, 8, CUTS_OFF)
>>> out.status, out.clicks.tolist(), out.first_p.tolist(), out.auc2.tolist()
(0, [1, 2], [2, 1], [2, 0])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

NO_CLICK = np.iinfo(np.int32).max
#: Why a part cannot take the fast path (``status``): the reader's global path decides.
REASONS = {
    1: "a position repeated within a request",
    2: "several rows of a request without a position column",
    3: "a non-finite score",
    4: "a negative or non-finite latency",
    5: "a request with a click and a non-click longer than MAX_RUN rows",
}
MAX_RUN = 1024
NONE_F = np.zeros(0, dtype=np.float64)  # an absent float column
NONE_I = np.zeros(0, dtype=np.int64)  # an absent timestamp column
CUTS_OFF = np.array([np.nan, np.nan])  # no score cut-offs


class Scan(NamedTuple):
    status: int
    clicks: np.ndarray
    first_p: np.ndarray
    auc2: np.ndarray
    lat_max: np.ndarray
    t_min: np.ndarray
    pos: np.ndarray  # (2 impressions | clicks, 2 arms, pmax + 1)
    grid: np.ndarray  # (4 n | k | score sum | smallest score, 2 arms, cells + 1)
    s_range: np.ndarray  # (2 arms, 2 smallest | largest)
    above: np.ndarray  # (2 arms,) clicked rows at or above the arm's cut-off


def scan_requests(
    starts: np.ndarray,
    length: np.ndarray,
    arm: np.ndarray,
    ck: np.ndarray,
    p: np.ndarray | None,
    s: np.ndarray | None,
    lat: np.ndarray,
    t: np.ndarray,
    grid_lo: float,
    scale: float,
    cells: int,
    cuts: np.ndarray,
) -> Scan:
    """See the module.  ``starts`` / ``length`` int64 per request, ``arm`` int8 per request,
    ``ck`` int8 0/1 per row; ``p`` int32 per row (None: no position column), ``s`` float64 per
    row (None: no score column), ``lat`` float64 and ``t`` int64 per row (:data:`NONE_F` /
    :data:`NONE_I` when absent); ``cuts`` the two arms' cut-offs (:data:`CUTS_OFF`: none)."""
    has_p, has_s = p is not None, s is not None
    p = p if has_p else np.ones(1, dtype=np.int32)
    s = s if has_s else NONE_F
    pmax = int(p.max()) if has_p and p.size else 1
    out = _scan(
        starts.astype(np.int64, copy=False),
        length.astype(np.int64, copy=False),
        arm,
        ck,
        p,
        has_p,
        s,
        has_s,
        lat,
        t,
        pmax,
        float(grid_lo),
        float(scale),
        int(cells),
        cuts.astype(np.float64),
        MAX_RUN,
    )
    return Scan(int(out[0]), *out[1:])


@njit(cache=True, nogil=True)
def _scan(starts, length, arm, ck, p, has_p, s, has_s, lat, t, pmax, lo, scale, cells, cuts, mr):
    nreq = starts.size
    has_lat, has_t = lat.size > 0, t.size > 0
    clicks, first_p, auc2, lat_max, t_min, pos, grid, s_range, above = _outputs(
        nreq, has_lat, has_t, pmax, cells
    )
    cut_on = not np.isnan(cuts[0])
    status = 0
    for i in range(nreq):
        a, b, m = arm[i], starts[i], length[i]
        if not has_p and m > 1:
            status = 2
            break
        nc, fp, lmax, tmin = 0, NO_CLICK, -np.inf, np.iinfo(np.int64).max
        prev, mask, increasing, big = 0, np.uint64(0), True, False  # the positions seen
        for j in range(b, b + m):
            c = ck[j]
            pj = p[j] if has_p else 1
            if has_p:
                if pj <= prev:
                    increasing = False
                prev = pj
                if pj <= 64:
                    mask |= np.uint64(1) << np.uint64(pj - 1)
                else:
                    big = True
            if c:
                nc += 1
                if pj < fp:
                    fp = pj
            if has_lat:
                v = lat[j]
                if not (v >= 0.0 and v < np.inf):
                    status = 4
                    break
                lmax = max(lmax, v)
            if has_t and t[j] < tmin:
                tmin = t[j]
            if has_s:
                x = s[j]
                if not (x > -np.inf and x < np.inf):
                    status = 3
                    break
                if a < 2:
                    key = int(np.floor((x - lo) * scale))
                    key = min(max(key, 0), cells)
                    grid[0, a, key] += 1.0
                    grid[1, a, key] += c
                    grid[2, a, key] += x
                    grid[3, a, key] = min(grid[3, a, key], x)
                    s_range[a, 0] = min(s_range[a, 0], x)
                    s_range[a, 1] = max(s_range[a, 1], x)
                    if cut_on and c and x >= cuts[a]:
                        above[a] += 1.0
            if has_p and a < 2:
                pos[0, a, pj] += 1.0
                pos[1, a, pj] += c
        if status:
            break
        # positions out of order: each must still be distinct
        if has_p and not increasing and (big or _bits(mask) != m):
            status = 1
            break
        clicks[i] = nc
        first_p[i] = fp
        if has_lat:
            lat_max[i] = lmax
        if has_t:
            t_min[i] = tmin
        if has_s and 0 < nc < m:
            if m > mr:
                status = 5
                break
            auc2[i] = _u2(ck, s, b, m)
    return status, clicks, first_p, auc2, lat_max, t_min, pos, grid, s_range, above


@njit(inline="always")
def _outputs(nreq, has_lat, has_t, pmax, cells):
    """The kernel's output arrays, zeroed (the grid's minima and the score ranges at +-inf)."""
    grid = np.zeros((4, 2, cells + 1), np.float64)
    grid[3] = np.inf
    s_range = np.empty((2, 2), np.float64)
    s_range[:, 0] = np.inf
    s_range[:, 1] = -np.inf
    return (
        np.zeros(nreq, np.int32),
        np.full(nreq, NO_CLICK, np.int32),
        np.zeros(nreq, np.int32),
        np.empty(nreq if has_lat else 0, np.float64),
        np.empty(nreq if has_t else 0, np.int64),
        np.zeros((2, 2, pmax + 1), np.float64),
        grid,
        s_range,
        np.zeros(2, np.float64),
    )


@njit(inline="always")
def _bits(mask):
    """The set bits of ``mask``."""
    bits = 0
    while mask:
        mask &= mask - np.uint64(1)
        bits += 1
    return bits


@njit(inline="always")
def _u2(ck, s, b, m):
    """Twice the Mann-Whitney U of score vs click over the rows ``b .. b + m`` (ties: 1)."""
    u2 = 0
    for j in range(b, b + m):
        if ck[j]:
            for k in range(b, b + m):
                if not ck[k]:
                    if s[k] < s[j]:
                        u2 += 2
                    elif s[k] == s[j]:
                        u2 += 1
    return u2
