"""The report's figures as PNG bytes, drawn on matplotlib's Agg canvas (no pyplot global state)."""

from __future__ import annotations

import io

import numpy as np

from evalkit.compare.verdict import CandidateComparison
from evalkit.metrics.ir import mlflow_name

_COLORS = {"baseline": "#5f6368", "candidate": "#1a73e8", "worse": "#b3261e", "better": "#1b7f3b"}


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def plot_metric_bars(c: CandidateComparison) -> bytes:
    """PNG: each metric's mean per version with 95% intervals, and the deltas with their CIs."""
    from matplotlib.figure import Figure

    names = [mlflow_name(m.metric) for m in c.metrics]
    x = np.arange(len(names))
    fig = Figure(figsize=(11, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    for off, role, mean_key, ci_key, label in (
        (-0.2, "baseline", "baseline_mean", "baseline_ci", c.baseline),
        (0.2, "candidate", "candidate_mean", "candidate_ci", c.candidate),
    ):
        means = np.array([getattr(m, mean_key) for m in c.metrics])
        ci = np.array([getattr(m, ci_key) for m in c.metrics], dtype=float).reshape(-1, 2)
        err = np.nan_to_num(np.abs(np.stack([means - ci[:, 0], ci[:, 1] - means])))
        ax1.bar(x + off, means, 0.4, yerr=err, capsize=3, label=label, color=_COLORS[role])
    ax1.set_xticks(x, names, rotation=30, ha="right")
    ax1.set_title("Metric means (95% bootstrap CI)")
    ax1.legend(fontsize=8)
    deltas = np.array([m.delta for m in c.metrics])
    lo = np.array([m.ci_low for m in c.metrics])
    hi = np.array([m.ci_high for m in c.metrics])
    err = np.nan_to_num(np.abs(np.stack([deltas - lo, hi - deltas])))
    colors = [_COLORS["worse"] if d < 0 else _COLORS["better"] for d in deltas]
    ax2.bar(x, deltas, 0.6, yerr=err, capsize=3, color=colors)
    ax2.axhline(0.0, color="#202124", lw=0.8)
    ax2.set_xticks(x, names, rotation=30, ha="right")
    ax2.set_title(f"{c.candidate} - {c.baseline} (95% bootstrap CI)")
    return _png(fig)


def plot_distributions(c: CandidateComparison) -> bytes:
    """PNG: per-version similarity of judged/logged pairs, and per-query primary-metric values."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6))
    ax1, ax2 = fig.subplots(1, 2)

    def panel(ax, edges, hb, hc, title: str, threshold: float | None = None) -> None:
        e = np.asarray(edges)
        ax.stairs(hb, e, label=c.baseline, color=_COLORS["baseline"], lw=1.6)
        ax.stairs(hc, e, label=c.candidate, color=_COLORS["candidate"], lw=1.6)
        if threshold is not None:
            ax.axvline(
                threshold, color=_COLORS["worse"], ls="--", lw=1, label=f"low score {threshold:g}"
            )
        ax.set_title(title)
        ax.set_ylabel("count")
        ax.legend(fontsize=8)

    d = c.drift
    if d is not None and d.hist_edges:
        title = f"Cosine similarity of {d.n_pairs} judged/logged pairs"
        panel(ax1, d.hist_edges, d.baseline_hist, d.candidate_hist, title, d.threshold)
    else:
        ax1.text(0.5, 0.5, "pair similarities not available", ha="center", va="center")
        ax1.set_axis_off()
    h = c.primary_hist
    if h:
        title = f"Per-query {mlflow_name(c.primary_metric)}"
        panel(ax2, h["edges"], h["baseline"], h["candidate"], title)
    return _png(fig)
