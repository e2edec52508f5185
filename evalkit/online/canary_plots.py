"""The online A/B's figures as PNG files on a bare matplotlib ``Figure`` (no pyplot state), one
function per figure returning the path; ``simulated=True`` says so in titles and CTR axes.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> days = np.arange("2026-11-23", "2026-11-26", dtype="datetime64[D]")
>>> band = (np.array([.30, .31, .29]), np.array([.28, .29, .27]), np.array([.32, .33, .31]))
>>> out = plot_daily_ctr(days, {"control": band}, os.path.join(d, "daily.png"), simulated=True)
>>> out.name, out.stat().st_size > 0
('daily.png', True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_daily_ctr", "plot_latency_cdf", "plot_position_ctr", "plot_score_ctr"]

#: Control grey and treatment blue, as the offline report's baseline / candidate.
_ARM_COLOURS = ("#5f6368", "#1a73e8", "C2", "C3", "C4", "C5")


def _colour(i: int) -> str:
    return _ARM_COLOURS[i % len(_ARM_COLOURS)]


def _sim(text: str, simulated: bool) -> str:
    return f"{text} (simulated)" if simulated else text


def _save(fig, title: str, path: str | Path, description: str) -> Path:
    """Save ``fig`` as PNG at ``path`` with ``Title`` / ``Description`` metadata."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Title": title, "Description": description}
    fig.savefig(out, format="png", metadata=meta, bbox_inches="tight")
    return out


def plot_daily_ctr(
    days: Sequence | np.ndarray,
    per_arm: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    simulated: bool = False,
) -> Path:
    """Write the daily request CTR per arm: ``per_arm`` maps arm -> ``(ctr, low, high)`` arrays
    aligned with ``days`` (dates, or int days since 1970-01-01); NaN leaves a gap."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    x = np.asarray(days).astype("datetime64[D]")
    fig = Figure(figsize=(8.0, 4.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    for i, (arm, (ctr, low, high)) in enumerate(per_arm.items()):
        c = _colour(i)
        lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        ax.fill_between(x, lo, hi, color=c, alpha=0.2, linewidth=0, label=f"{arm}: 95% interval")
        ax.plot(x, np.asarray(ctr, dtype=float), "-o", color=c, markersize=3.5, label=f"{arm}")
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlabel("day (UTC)")
    ax.set_ylabel(_sim("request CTR", simulated))
    ax.set_title(_sim("Daily request CTR per arm", simulated))
    ax.grid(alpha=0.3)
    if per_arm:
        ax.legend(loc="best", fontsize=8)
    description = "x: day (UTC); y: request CTR with 95% interval per arm"
    return _save(fig, ax.get_title(), path, description)


def plot_score_ctr(
    per_arm: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    simulated: bool = False,
) -> Path:
    """Write the click rate against the similarity score, one panel per arm on its own score
    axis: ``per_arm`` maps arm -> ``(mean_score, ctr, impressions)`` of its score bins."""
    from matplotlib.figure import Figure

    n = max(len(per_arm), 1)
    fig = Figure(figsize=(4.2 * n + 0.6, 4.2), dpi=110)
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True, squeeze=False)[0])
    for i, (ax, (arm, (score, ctr, imps))) in enumerate(zip(axes, per_arm.items())):
        c = _colour(i)
        s = np.asarray(score, dtype=float)
        y = np.asarray(ctr, dtype=float)
        w = np.asarray(imps, dtype=float)
        size = 12 + 60 * w / w.max() if len(w) and w.max() > 0 else 12
        ax.plot(s, y, "-", color=c, linewidth=1.2)
        ax.scatter(s, y, s=size, color=c, zorder=3)
        ax.set_title(f"{arm} ({int(w.sum()):,} impressions)", fontsize=9)
        ax.set_xlabel(f"similarity score ({arm}'s own scale)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(_sim("impression CTR", simulated))
    heading = _sim("Click rate vs similarity score, equal-count bins per arm", simulated)
    fig.suptitle(heading, fontsize=11)
    description = (
        "one panel per arm, x: the arm's own similarity score (bin mean), y: impression CTR"
    )
    return _save(fig, heading, path, description)


def plot_latency_cdf(
    per_arm: Mapping[str, np.ndarray], path: str | Path, *, simulated: bool = False
) -> Path:
    """Write the empirical CDF of per-request latency (ms) per arm (2,000 quantiles), P95 dashed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    for i, (arm, values) in enumerate(per_arm.items()):
        c = _colour(i)
        v = np.sort(np.asarray(values, dtype=float).ravel())
        v = v[np.isfinite(v)]
        if len(v) == 0:
            continue
        n = len(v)
        k = np.unique(np.linspace(0, n - 1, min(2000, n)).round().astype(np.int64))
        ax.step(v[k], (k + 1) / n, where="post", color=c, label=f"{arm} (n={n:,} requests)")
        p95 = float(np.quantile(v, 0.95))
        ax.axvline(p95, color=c, linestyle="--", linewidth=1, label=f"{arm} P95 = {p95:.1f} ms")
    ax.axhline(0.95, color="#202124", linewidth=0.6, alpha=0.6)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("latency per request (ms)")
    ax.set_ylabel("share of requests at or below")
    ax.set_title(_sim("Latency CDF per arm", simulated))
    ax.grid(alpha=0.3)
    if per_arm:
        ax.legend(loc="lower right", fontsize=8)
    description = "x: latency per request (ms); y: empirical CDF; dashed: P95"
    return _save(fig, ax.get_title(), path, description)


def plot_position_ctr(
    per_arm: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    simulated: bool = False,
) -> Path:
    """Write the CTR at each 1-based result position per arm (arm -> ``(positions, ctr)``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    shown: list[int] = []
    for i, (arm, (pos, ctr)) in enumerate(per_arm.items()):
        p = np.asarray(pos, dtype=float)
        ax.plot(p, np.asarray(ctr, dtype=float), "-o", color=_colour(i), markersize=4, label=arm)
        shown.extend(int(v) for v in p[np.isfinite(p)])
    if shown and max(shown) <= 30:
        ax.set_xticks(sorted(set(shown)))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("position (1 = top)")
    ax.set_ylabel(_sim("impression CTR", simulated))
    ax.set_title(_sim("CTR by result position per arm", simulated))
    ax.grid(alpha=0.3)
    if per_arm:
        ax.legend(loc="best", fontsize=8)
    return _save(fig, ax.get_title(), path, "x: result position; y: impression CTR per arm")
