"""A sweep's quality-versus-cost frontier: plots (PNG) and ``sweep_report.html``.

Each configuration is a point at (cost, delta against the reference) with its interval; the
no-worse band is shaded, the non-dominated configurations are ringed and the pick is named.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

from evalkit.sweep.configs import frontier

COSTS = {
    "frontier_memory.png": ("index_bytes", "index size (bytes)"),
    "frontier_latency.png": ("search_p95_ms", "single-query search p95 (ms)"),
}


def short_label(label: str) -> str:
    """A configuration's overrides by their last key segment, for a plot's point labels.

    >>> short_label("models.e5_small.dimensions=256 index.precision=sq8")
    '256, sq8'
    """
    return ", ".join(o.split("=", 1)[-1] for o in label.split())


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def frontier_png(comparison: Any, cost_key: str, cost_label: str) -> bytes | None:
    """One frontier plot (None when no configuration measured ``cost_key``)."""
    from matplotlib.figure import Figure

    calls = comparison.calls
    ref_cost = comparison.reference_costs.get(cost_key, math.nan)
    points = [(c.costs.get(cost_key, math.nan), c.delta) for c in calls]
    if not any(math.isfinite(x) for x, _ in points):
        return None
    everything = [*points, (ref_cost, 0.0)]
    best = set(frontier(everything))
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    margin = getattr(comparison, "margin", 0.0)
    ax.axhspan(-margin, 0.0, color="#1a73e8", alpha=0.08, label=f"no worse band (-{margin:g})")
    ax.axhline(0.0, color="#5f6368", lw=0.8)
    picked = comparison.pick.call.label if comparison.pick and comparison.pick.call else None
    for i, (c, (x, y)) in enumerate(zip(calls, points, strict=True)):
        if not math.isfinite(x):
            continue
        lo = y - c.ci_low if math.isfinite(c.ci_low) else 0.0
        hi = c.ci_high - y if math.isfinite(c.ci_high) else 0.0
        color = {"better": "#1b7f3b", "no_worse": "#1a73e8", "worse": "#b3261e"}.get(
            c.call, "#9aa0a6"
        )
        ax.errorbar([x], [y], yerr=[[lo], [hi]], fmt="o", color=color, capsize=3)
        if i in best:
            ax.plot([x], [y], "o", mfc="none", mec="black", ms=12)
        label = short_label(c.label) + (
            "  <- pick" if c.label == picked and comparison.pick.found else ""
        )
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7)
    if math.isfinite(ref_cost):
        ax.plot([ref_cost], [0.0], "s", color="black", label=f"reference: {comparison.reference}")
    keys = [o.split("=", 1)[0].rsplit(".", 1)[-1] for o in calls[0].label.split()]
    ax.text(0.01, 0.01, "points: " + ", ".join(keys), transform=ax.transAxes, fontsize=7)
    ax.set_xlabel(cost_label)
    ax.set_ylabel(f"{comparison.metric} - reference")
    if all(x > 0 for x, _ in everything if math.isfinite(x)):
        ax.set_xscale("log")
    ax.set_title(f"Quality against {cost_label.split(' (')[0]} (ringed: non-dominated)")
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def frontier_pngs(comparison: Any) -> dict[str, bytes]:
    """The frontier plots the jobs' measurements allow, by file name."""
    pngs = {name: frontier_png(comparison, key, label) for name, (key, label) in COSTS.items()}
    return {name: png for name, png in pngs.items() if png is not None}


def sweep_report_html(comparison: Any, jobs: list[Any], pngs: dict[str, bytes]) -> str:
    """A self-contained page: the pick, the table of configurations, the plots."""
    esc = html.escape
    rows = []
    by_num = dict(zip(comparison.nums, comparison.calls, strict=True))
    for j in jobs:
        c = by_num.get(j.num)
        costs = j.costs.get(j.versions[-1], {}) if j.versions else {}
        label = esc(" ".join(j.overrides))
        if j.num == comparison.reference_num:
            cells = ["reference", "", ""]
        elif c is not None:
            cells = [
                esc(c.call),
                f"{c.delta:+.4f}",
                f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}] at {c.confidence:.1%}",
            ]
        else:
            cells = [esc(j.error or comparison.skipped.get(j.num, "not compared")), "", ""]
        size, p95 = costs.get("index_bytes"), costs.get("search_p95_ms")
        cells += ["" if size is None else f"{size:,.0f}", "" if p95 is None else f"{p95:.2f}"]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in [j.num, label, *cells]) + "</tr>")
    images = "".join(
        f'<img alt="{esc(n)}" src="data:image/png;base64,{base64.b64encode(b).decode()}">'
        for n, b in pngs.items()
    )
    pick = esc(comparison.pick.text) if comparison.pick else "configurations not compared"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>evalkit sweep</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;"
        "border-bottom:1px solid #ddd;text-align:left}img{max-width:48%}</style></head><body>"
        f"<h1>Sweep: {esc(comparison.metric)} against {esc(comparison.reference)}</h1>"
        f"<p><b>Pick:</b> {pick}</p>"
        "<p>Each configuration's paired delta against the reference over the same queries "
        "(paired t), intervals Holm-adjusted across the configurations.</p>"
        "<table><tr><th>job</th><th>overrides</th><th>call</th><th>delta</th><th>interval</th>"
        "<th>index bytes</th><th>search p95 ms</th></tr>"
        + "".join(rows)
        + f"</table>{images}</body></html>"
    )
