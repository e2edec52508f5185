"""Scatter plot of similarity vs click rate (or click share), one colour per model version: a
seeded sample of at most ``max_points`` points per version, and binned means of *all* pairs.

>>> import numpy as np, tempfile, os
>>> rng = np.random.default_rng(0)
>>> rate = rng.random(500)
>>> out = plot_click_scatter({"a": (rate + rng.normal(0, .3, 500), rate)},
...                          os.path.join(tempfile.mkdtemp(), "clicks.png"), measure="click_share")
>>> out.suffix, out.stat().st_size > 0
('.png', True)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np


def binned_means(
    similarity: np.ndarray, rate: np.ndarray, n_bins: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean similarity, mean rate and pair count of ``n_bins`` equal-count similarity bins.

    >>> s, r, n = binned_means(np.arange(10.0), np.arange(10.0) * 2, n_bins=2)
    >>> s.tolist(), r.tolist(), n.tolist()
    ([2.0, 7.0], [4.0, 14.0], [5, 5])
    """
    x = np.asarray(similarity, dtype=float)
    y = np.asarray(rate, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    order = np.argsort(x, kind="stable")
    bins = np.minimum((np.arange(len(x)) * n_bins) // len(x), n_bins - 1)
    b = np.empty(len(x), dtype=np.int64)
    b[order] = bins
    count = np.bincount(b, minlength=n_bins)
    used = count > 0
    sx = np.bincount(b, weights=x, minlength=n_bins)[used] / count[used]
    sy = np.bincount(b, weights=y, minlength=n_bins)[used] / count[used]
    return sx, sy, count[used]


def plot_click_scatter(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    measure: str = "click_rate",
    n_bins: int = 20,
    max_points: int = 20000,
    seed: int = 0,
    title: str | None = None,
    simulated: bool = False,
) -> Path:
    """Write the PNG to ``path`` and return it; ``series`` maps version -> (similarity, rate)."""
    from matplotlib.figure import Figure  # no pyplot: Agg canvas, no global figure state

    label = measure.replace("_", " ")
    fig = Figure(figsize=(7.5, 5.0), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    rng = np.random.default_rng(seed)
    for i, (name, (sim, rate)) in enumerate(series.items()):
        x = np.asarray(sim, dtype=float)
        y = np.asarray(rate, dtype=float)
        ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        shown = ok if len(ok) <= max_points else np.sort(rng.choice(ok, max_points, replace=False))
        colour = f"C{i % 10}"
        ax.scatter(x[shown], y[shown], s=6, alpha=0.25, color=colour, linewidths=0)
        bx, by, _ = binned_means(x, y, n_bins)
        ax.plot(
            bx, by, "-o", color=colour, markersize=4, label=f"{name} (binned mean, n={len(ok)})"
        )
    ax.set_xlabel("cosine similarity (query, item)")
    ax.set_ylabel(label + (" (simulated clicks)" if simulated else ""))
    ax.set_title(title or f"similarity vs {label}")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(loc="best", fontsize=8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Title": ax.get_title(), "Description": f"x: cosine similarity; y: {label}"}
    fig.savefig(out, format="png", metadata=meta)
    return out
