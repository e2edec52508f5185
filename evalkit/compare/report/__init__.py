"""Render a :class:`~evalkit.compare.verdict.Verdict`: report.md, report.html, verdict.json,
the flat comparison metrics for the parent MLflow run, and the terminal checklist.

``report.html`` is self-contained: inline CSS (``report_template.html``) and plots embedded as
base64 PNG drawn with matplotlib's Agg canvas (metric means with bootstrap intervals and deltas,
per-version similarity and primary-metric distributions, and a similarity-vs-click scatter when
the clicks layer supplies it as a PNG file).

MLflow comparison metrics (:func:`comparison_metrics`): for every metric ``m`` (MLflow name,
``ndcg@10`` -> ``ndcg_at_10``) ``delta_m``, ``p_m`` (corrected p, what the gate uses),
``p_raw_m``, ``ci_low_m``/``ci_high_m`` (the interval that agrees with ``p_m``) and its level
``ci_level_m``, ``wins_m``/``ties_m``/``losses_m``; ``queries_needed`` (judged queries in all
that would decide the primary call, when it is inconclusive or no worse but not better); with a
click log ``p_click_<stat>``, ``p_raw_click_<stat>``, ``ci_low_click_<stat>``,
``ci_high_click_<stat>`` for the pooled statistic and ``spearman_within``; then
``top3_agreement``, ``rbo_p0_9``/``rbo_p0_5``, ``mean_cosine_shift``, ``low_score_share_delta``,
``unjudged_at_10_baseline``/``_candidate``, ``latency_p50/p95/p99_ratio``,
``latency_p95_ratio_ci_low``/``_ci_high``, ``throughput_ratio``, ``reindex_<state>_<metric>``
(:mod:`evalkit.compare.reindex`, e.g. ``reindex_mixed_50_candidate_queries_ndcg_at_10``) and
``reindex_rolling_safe`` (1 / 0; absent when the dimensions differ)
and ``verdict_code`` (0 PASS, 1 WARN, 1.5 INCONCLUSIVE, 2 BLOCK).  With several candidates every name is prefixed
``<candidate>/``.  Values that were not measured are left out (MLflow rejects NaN in the UI).

>>> from evalkit.results import VersionResult
>>> from evalkit.compare.verdict import compare_versions
>>> pq = {"ndcg@10": {f"q{i}": i / 20 for i in range(20)}}
>>> v = compare_versions(VersionResult("a", {}, {}, pq, None), [VersionResult("b", {}, {}, pq, None)])
>>> m = comparison_metrics(v)
>>> m["delta_ndcg_at_10"], m["p_ndcg_at_10"]
(0.0, 1.0)
>>> checklist_lines(v)[0]
'Verdict: WARN (exit code 0): b vs baseline a; quality: no worse (ndcg@10 +0.0000 [95% CI +0.0000, +0.0000], p=1)'
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np

from evalkit.compare.gates import GateResult, Status, judge_more
from evalkit.compare.quality import STATUS_TEXT, Quality
from evalkit.compare.thresholds import threshold_key
from evalkit.compare.verdict import CandidateComparison, Verdict
from evalkit.errors import DataError
from evalkit.metrics.ir import mlflow_name

TEMPLATE = "report_template.html"
_COLORS = {"baseline": "#5f6368", "candidate": "#1a73e8", "worse": "#b3261e", "better": "#1b7f3b"}


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


#: ``quality_code`` metric: 0 better, 1 no_worse, 2 inconclusive, 3 worse.
_QUALITY_CODE = {
    Quality.BETTER: 0,
    Quality.NO_WORSE: 1,
    Quality.INCONCLUSIVE: 2,
    Quality.WORSE: 3,
}


def _p_name(p: float) -> str:
    return "rbo_p" + f"{p:g}".replace(".", "_")


def candidate_metrics(c: CandidateComparison) -> dict[str, float]:
    """Flat comparison metrics of one candidate (names as in the module docstring)."""
    out: dict[str, float] = {}
    for m in c.metrics:
        name = mlflow_name(m.metric)
        out[f"delta_{name}"] = m.delta
        out[f"p_{name}"] = m.p_corrected
        out[f"p_raw_{name}"] = m.p_value
        out[f"ci_low_{name}"] = m.ci_low
        out[f"ci_high_{name}"] = m.ci_high
        out[f"ci_level_{name}"] = m.ci_confidence
        out[f"wins_{name}"] = m.wins
        out[f"ties_{name}"] = m.ties
        out[f"losses_{name}"] = m.losses
    if c.overlap is not None:
        out[f"top{c.overlap.k}_agreement"] = c.overlap.agreement
        for p, v in c.overlap.rbo.items():
            out[_p_name(p)] = v
    if c.drift is not None:
        out["mean_cosine_baseline"] = c.drift.baseline_mean
        out["mean_cosine_candidate"] = c.drift.candidate_mean
        out["mean_cosine_shift"] = c.drift.mean_shift
        out["low_score_share_baseline"] = c.drift.baseline_low_share
        out["low_score_share_candidate"] = c.drift.candidate_low_share
        out["low_score_share_delta"] = c.drift.low_share_delta
    for role, version in (("baseline", c.baseline), ("candidate", c.candidate)):
        u = c.unjudged.get(version)
        if u is not None:
            out[f"unjudged_at_{u.k}_{role}"] = u.mean
    for t in c.thresholds:
        key = threshold_key(t.threshold)
        if t.mapped is not None:  # no mapping: no metric (never a cut-off outside the scores)
            out[f"threshold_{key}_mapped"] = t.mapped
        out[f"threshold_{key}_precision_baseline"] = t.baseline_precision
        out[f"threshold_{key}_recall_baseline"] = t.baseline_recall
        out[f"threshold_{key}_precision_candidate"] = t.candidate_precision
        out[f"threshold_{key}_recall_candidate"] = t.candidate_recall
    out["quality_code"] = float(_QUALITY_CODE[c.quality_status])
    lat = c.latency
    out["latency_p50_ratio"] = lat.p50_ratio
    out["latency_p95_ratio"] = lat.p95_ratio
    out["latency_p95_ratio_ci_low"] = lat.p95_ratio_ci_low
    out["latency_p95_ratio_ci_high"] = lat.p95_ratio_ci_high
    out["latency_p99_ratio"] = lat.p99_ratio
    out["throughput_ratio"] = lat.throughput_ratio
    if c.reindex is not None:
        for state, value in c.reindex.scores.items():
            out[f"reindex_{state}_{mlflow_name(c.reindex.metric)}"] = value
        if c.reindex.rolling_safe is not None:
            out["reindex_rolling_safe"] = float(c.reindex.rolling_safe)
    primary = c.primary_call
    if primary is not None and primary.queries_needed is not None:
        out["queries_needed"] = primary.queries_needed
    for q in c.click_quality:
        out[f"p_{q.metric}"] = q.p_corrected
        out[f"p_raw_{q.metric}"] = q.p_value
        out[f"ci_low_{q.metric}"] = q.ci_low
        out[f"ci_high_{q.metric}"] = q.ci_high
    out["verdict_code"] = c.status.code
    return {k: float(v) for k, v in out.items() if _finite(v)}


def comparison_metrics(verdict: Verdict) -> dict[str, float]:
    """Flat ``{name: value}`` for the parent MLflow run (prefixed per candidate if several)."""
    if len(verdict.candidates) == 1:
        return candidate_metrics(verdict.candidates[0])
    return {
        f"{c.candidate}/{k}": v for c in verdict.candidates for k, v in candidate_metrics(c).items()
    }


def verdict_tags(verdict: Verdict) -> dict[str, str]:
    """Tags for the parent run: ``evalkit.verdict`` (PASS/WARN/INCONCLUSIVE/BLOCK), ``evalkit.quality``
    (better / no_worse / worse / inconclusive: the primary metric's call, the least favourable
    over candidates) and ``evalkit.exit_code``."""
    return {
        "evalkit.verdict": str(verdict.status),
        "evalkit.quality": str(verdict.quality),
        "evalkit.exit_code": str(verdict.exit_code),
    }


# ---------------------------------------------------------------------------------------------
# verdict.json


def _jsonable(x: Any) -> Any:
    if is_dataclass(x) and not isinstance(x, type):
        return _jsonable(asdict(x))
    if isinstance(x, Status):
        return str(x)
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def verdict_dict(verdict: Verdict) -> dict[str, Any]:
    """The JSON document: verdict, exit code, gates and comparison metrics per candidate."""
    candidates = []
    for c in verdict.candidates:
        candidates.append(
            {
                "candidate": c.candidate,
                "status": str(c.status),
                "quality_status": str(c.quality_status),
                **c.checklist(),
                "quality": [q.to_dict() for q in c.quality],
                "click_quality": [q.to_dict() for q in c.click_quality],
                "thresholds": [t.to_dict() for t in c.thresholds],
                "reindex": _jsonable(c.reindex.to_dict())
                if hasattr(c.reindex, "to_dict")
                else _jsonable(c.reindex),
                "gates": [g.to_dict() for g in c.gates],
                "comparison_metrics": candidate_metrics(c),
                "metrics": _jsonable(c.metrics),
                "drift": _jsonable(c.drift),
                "overlap": _jsonable(c.overlap),
                "unjudged": _jsonable(c.unjudged),
                "latency": _jsonable(c.latency),
                "slices": [
                    {
                        "slice": s.label,
                        "n_queries": s.n_queries,
                        "status": str(s.status) if s.evaluated else "not_called",
                        "evaluated": s.evaluated,
                        "min_queries": s.min_queries,
                        "ci_clipped": s.ci_clipped,
                        "quality": [
                            q.to_dict() if s.evaluated else {**q.to_dict(), "status": "not_called"}
                            for q in s.quality
                        ],
                        "metrics": _jsonable(s.metrics),
                        "drift": _jsonable(s.drift),
                        "overlap": _jsonable(s.overlap),
                        "unjudged": _jsonable(s.unjudged),
                    }
                    for s in c.slices
                ],
                "regressions": _jsonable(c.regressions),
            }
        )
    lists = verdict.checklist()
    several = len(verdict.candidates) > 1
    return {
        "verdict": str(verdict.status),
        "exit_code": verdict.exit_code,
        "quality_status": str(verdict.quality),
        "passed": lists["passed"],
        "follow_ups": lists["follow_ups"],
        "undecided": lists["undecided"],
        "blockers": lists["blockers"],
        "actions": lists["actions"],
        "quality": (
            {c.candidate: [q.to_dict() for q in c.quality] for c in verdict.candidates}
            if several
            else [q.to_dict() for q in verdict.candidates[0].quality]
        ),
        "baseline": verdict.baseline,
        "dataset": verdict.dataset,
        "embedded_text": verdict.embedded,
        "test": verdict.settings.test,
        "test_label": verdict.test_label,
        "correction": verdict.settings.correction,
        "settings": _jsonable(verdict.settings),
        "gate_config": _jsonable(verdict.gate_config),
        "comparison_metrics": comparison_metrics(verdict),
        "candidates": candidates,
    }


# ---------------------------------------------------------------------------------------------
# terminal checklist


def _obs(g: GateResult) -> str:
    if g.observed is None or not _finite(g.observed):
        return "n/a"
    if g.name == "endpoint_checks":
        return f"{int(g.observed)} failed"
    if g.name.endswith("_agreement"):
        return f"{g.observed:.4f}"
    return f"{g.observed:+.4f}" if abs(g.observed) < 1 else f"{g.observed:g}"


def _obs_item(i: dict[str, Any]) -> str:
    v = i.get("observed")
    if isinstance(v, float):
        return f"{v:+.4f}" if abs(v) < 1 else f"{v:g}"
    return "n/a" if v is None else str(v)


def _quality_line(c: CandidateComparison) -> str:
    q = c.primary_call
    if q is None:
        return "quality: not measured"
    decide = judge_more(q)
    return f"quality: {STATUS_TEXT[q.status]} ({q.describe()})" + (
        f"; to decide: {decide}" if decide else ""
    )


def _n_slices(n: int) -> str:
    return f"{n} slice" if n == 1 else f"{n} slices"


def _slice_summary(c: CandidateComparison) -> str:
    """Slices called worse / better by name; no-worse and inconclusive ones counted (inconclusive
    means the interval spans both 0 and -margin), and the slices too small for a call."""
    groups: dict[Quality, list[str]] = {}
    small = [s for s in c.slices if not s.evaluated]
    for s in c.slices:
        if s.evaluated:
            groups.setdefault(s.status, []).append(s.label)
    parts = [
        f"{STATUS_TEXT[q]}: {', '.join(groups[q])}"
        for q in (Quality.WORSE, Quality.BETTER)
        if groups.get(q)
    ]
    if groups.get(Quality.NO_WORSE):
        parts.append(f"no worse: {_n_slices(len(groups[Quality.NO_WORSE]))}")
    if groups.get(Quality.INCONCLUSIVE):
        margin = next((q.margin for q in c.quality if q.metric == c.primary_metric), None)
        spans = f"0 and -{margin:g}" if margin is not None else "0 and -margin"
        parts.append(
            f"inconclusive (CI spans both {spans}): {_n_slices(len(groups[Quality.INCONCLUSIVE]))}"
        )
    if small:
        parts.append(
            f"not called (fewer than {small[0].min_queries} queries, too few for a call): "
            f"{_n_slices(len(small))}"
        )
    return "; ".join(parts)


def checklist_lines(verdict: Verdict) -> list[str]:
    """Plain-text checklist per candidate: the verdict and quality call, then the blockers,
    passed gates, follow-ups and actions before switching."""
    lines = []
    for c in verdict.candidates:
        lines.append(
            f"Verdict: {c.status} (exit code {verdict.exit_code}): "
            f"{c.candidate} vs baseline {c.baseline}; {_quality_line(c)}"
        )
        lists = c.checklist()
        for key, title in (
            ("blockers", "Blockers"),
            ("undecided", "Not decided: more evidence needed"),
            ("passed", "Passed"),
            ("follow_ups", "Follow-ups (need a decision)"),
            ("actions", "Actions before switching"),
        ):
            if not lists[key]:
                continue
            lines.append(f"  {title}:")
            for i in lists[key]:
                if key == "actions":
                    lines.append(f"    - {i['what_to_do']}  ({i['why']})")
                elif key == "passed":
                    lines.append(f"    - {i['name']}: {i['why']}")
                else:
                    lines.append(
                        f"    - {i['name']} (observed {_obs_item(i)}, expected {i['expected']}): "
                        f"{i['why']}" + (f" -> {i['what_to_do']}" if i["what_to_do"] else "")
                    )
        summary = _slice_summary(c)
        if summary:
            note = "" if verdict.gate_config.slices.affect_verdict else " (informational)"
            lines.append(f"  Slices{note}: {summary}")
    if len(verdict.candidates) > 1:
        lines.append(f"Overall verdict: {verdict.status} (exit code {verdict.exit_code})")
    return lines


def checklist_table(verdict: Verdict):
    """The checklist for the terminal (a :class:`rich.console.Group` of tables): per candidate
    the verdict and quality call, then blockers, passed, follow-ups and actions."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    style = {
        Status.PASS: "green",
        Status.WARN: "yellow",
        Status.INCONCLUSIVE: "bold magenta",
        Status.BLOCK: "bold red",
    }
    q_style = {
        Quality.BETTER: "green",
        Quality.NO_WORSE: "green",
        Quality.INCONCLUSIVE: "yellow",
        Quality.WORSE: "bold red",
    }
    several = len(verdict.candidates) > 1
    names = ", ".join(c.candidate for c in verdict.candidates)
    table = Table(
        title=f"Release verdict: [{style[verdict.status]}]{verdict.status}[/] "
        f"(exit code {verdict.exit_code}), quality [{q_style[verdict.quality]}]"
        f"{STATUS_TEXT[verdict.quality]}[/]",
        caption=f"{names} vs baseline {verdict.baseline}",
    )
    if several:
        table.add_column("candidate", no_wrap=True)
    table.add_column("list", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("observed", justify="right", no_wrap=True)
    table.add_column("why / what to do", overflow="fold", ratio=4)
    labels = {
        "blockers": "[bold red]BLOCK[/]",
        "undecided": "[bold magenta]undecided[/]",
        "passed": "[green]passed[/]",
        "follow_ups": "[yellow]follow-up[/]",
        "actions": "[cyan]action[/]",
    }
    for c in verdict.candidates:
        lists = c.checklist()
        for key in ("blockers", "undecided", "passed", "follow_ups", "actions"):
            for i in lists[key]:
                why, todo = escape(str(i["why"])), escape(str(i["what_to_do"] or ""))
                if key == "passed":
                    text = why
                elif key == "actions":
                    text = f"[bold]{todo}[/] ({why})"
                else:
                    text = why + (f" -> [bold]{todo}[/]" if todo else "")
                row = [labels[key], escape(i["name"]), escape(_obs_item(i)), text]
                table.add_row(*([c.candidate] if several else []), *row)
    parts = [table]
    for c in verdict.candidates:
        q = c.primary_call
        decide = judge_more(q) if q is not None else ""
        if decide:
            parts.append(
                f"{escape(c.candidate)}: {STATUS_TEXT[q.status]} on "
                f"{escape(mlflow_name(c.primary_metric))}; to decide: {escape(decide)}"
            )
    for c in verdict.candidates:
        summary = _slice_summary(c)
        if summary:
            parts.append(f"slices of {c.candidate}: {summary}")
    return Group(*parts)


# ---------------------------------------------------------------------------------------------
# plots (matplotlib Agg canvas, no pyplot global state)


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
    panels = []
    if c.drift is not None and c.drift.hist_edges:
        panels.append(
            (
                ax1,
                c.drift.hist_edges,
                c.drift.baseline_hist,
                c.drift.candidate_hist,
                f"Cosine similarity of {c.drift.n_pairs} judged/logged pairs",
                c.drift.threshold,
            )
        )
    else:
        ax1.text(0.5, 0.5, "pair similarities not available", ha="center", va="center")
        ax1.set_axis_off()
    h = c.primary_hist
    if h:
        panels.append(
            (
                ax2,
                h["edges"],
                h["baseline"],
                h["candidate"],
                f"Per-query {mlflow_name(c.primary_metric)}",
                None,
            )
        )
    for ax, edges, hb, hc, title, threshold in panels:
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
    return _png(fig)


# ---------------------------------------------------------------------------------------------
# markdown + html


def _f(x: Any, fmt: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(x, fmt)


def _pct(x: Any) -> str:
    return _f(x, ".1%")


def _level(m: Any) -> str:
    level = getattr(m, "ci_confidence", getattr(m, "confidence", math.nan))
    if not _finite(level):
        return ""
    family = getattr(m, "family", "")
    adjusted = family in ("secondary", "all") and m.p_corrected != m.p_value
    return f"{'Holm ' if adjusted else ''}{100 * level:.3g}%"


def _interval(low: float, high: float) -> str:
    def b(x: float) -> str:
        if isinstance(x, float) and math.isinf(x):
            return "-inf" if x < 0 else "+inf"
        return _f(x, "+.4f")

    return f"[{b(low)}, {b(high)}]"


def _call_text(q: Any) -> str:
    text = STATUS_TEXT[q.status]
    if not getattr(q, "tested", True) and q.status.shown_no_worse:
        return f"{text} (not claimed: primary not passed)"
    return text


def _metric_rows(c: CandidateComparison | Any) -> list[list[str]]:
    calls = {q.metric: q for q in getattr(c, "quality", [])}
    rows = []
    for m in c.metrics:
        family = getattr(m, "family", "")
        rows.append(
            [
                mlflow_name(m.metric) + (" (primary)" if family == "primary" else ""),
                _f(m.baseline_mean),
                _f(m.candidate_mean),
                _f(m.delta, "+.4f"),
                f"{_interval(m.ci_low, m.ci_high)} {_level(m)}".rstrip(),
                _f(m.p_value, ".3g"),
                "uncorrected" if family == "primary" else _f(m.p_corrected, ".3g"),
                f"{m.wins}/{m.ties}/{m.losses}",
                _call_text(calls[m.metric]) if m.metric in calls else "",
            ]
        )
    for q in getattr(c, "click_quality", []):
        rows.append(
            [
                q.metric,
                "",
                "",
                _f(q.delta, "+.4f"),
                f"{_interval(q.ci_low, q.ci_high)} {_level(q)}".rstrip(),
                _f(q.p_value, ".3g"),
                _f(q.p_corrected, ".3g"),
                "",
                _call_text(q),
            ]
        )
    return rows


_METRIC_HEAD = [
    "metric",
    "baseline",
    "candidate",
    "delta",
    "interval (level; agrees with the p used)",
    "p (two-sided)",
    "p (Holm, secondary family)",
    "W/T/L",
    "quality",
]


def _drift_rows(c: CandidateComparison) -> list[list[str]]:
    rows = []
    if c.drift is not None:
        d = c.drift
        rows += [
            ["mean cosine", _f(d.baseline_mean), _f(d.candidate_mean), _f(d.mean_shift, "+.4f")],
            [
                f"share of pairs below {d.threshold:g}",
                _pct(d.baseline_low_share),
                _pct(d.candidate_low_share),
                _f(d.low_share_delta, "+.4f"),
            ],
        ]
    if c.overlap is not None:
        o = c.overlap
        rows.append([f"top-{o.k} agreement", "", "", _f(o.agreement)])
        rows += [[f"RBO (extrapolated, p={p:g})", "", "", _f(v)] for p, v in o.rbo.items()]
    b, cc = c.unjudged.get(c.baseline), c.unjudged.get(c.candidate)
    if b is not None or cc is not None:
        k = (b or cc).k
        change = cc.mean - b.mean if b is not None and cc is not None else None
        rows.append(
            [
                f"unjudged@{k}",
                _pct(b.mean if b else None),
                _pct(cc.mean if cc else None),
                _f(change, "+.4f"),
            ]
        )
    return rows


def _latency_rows(c: CandidateComparison) -> list[list[str]]:
    rows = []
    lat = c.latency
    for name, s in ((c.baseline, lat.baseline), (c.candidate, lat.candidate)):
        rows.append(
            [
                name,
                str(s.n_requests),
                _f(s.p50 * 1000, ".1f"),
                _f(s.p95 * 1000, ".1f"),
                _f(s.p99 * 1000, ".1f"),
                _f(s.throughput, ".1f"),
                f"{s.batch_size} / {s.concurrency}",
            ]
        )
    rows.append(
        [
            "ratio",
            "",
            _f(lat.p50_ratio, ".2f"),
            _f(lat.p95_ratio, ".2f"),
            _f(lat.p99_ratio, ".2f"),
            _f(lat.throughput_ratio, ".2f"),
            "" if lat.comparable else f"not comparable: {lat.note}",
        ]
    )
    return rows


_LATENCY_HEAD = [
    "version",
    "requests",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "texts/s",
    "batch / concurrency",
]


def _slice_rows(c: CandidateComparison) -> list[list[str]]:
    rows = []
    for s in c.slices:
        q = next((q for q in s.quality if q.metric == c.primary_metric), None)
        rows.append(
            [
                s.label,
                str(s.n_queries),
                _f(q.delta if q else None, "+.4f"),
                f"[{_f(q.ci_low if q else None, '+.4f')}, {_f(q.ci_high if q else None, '+.4f')}]"
                + (" (clipped)" if s.ci_clipped else ""),
                _f(s.overlap.agreement if s.overlap else None),
                _f(s.drift.mean_shift if s.drift else None, "+.4f"),
                _f(s.drift.low_share_delta if s.drift else None, "+.4f"),
                STATUS_TEXT[s.status] if s.evaluated else f"not called (< {s.min_queries} queries)",
            ]
        )
    return rows


def _slice_head(c: CandidateComparison) -> list[str]:
    m = mlflow_name(c.primary_metric)
    return [
        "slice",
        "queries",
        f"delta {m}",
        "CI (Bonferroni, within [-1, 1])",
        "top-k agreement",
        "cosine shift",
        "low-share delta",
        "quality",
    ]


_LIST_TITLES = (
    ("blockers", "Blockers"),
    ("undecided", "Not decided: more evidence needed"),
    ("passed", "Passed"),
    ("follow_ups", "Follow-ups (need a decision)"),
    ("actions", "Actions before switching"),
)
_LIST_HEAD = ["check", "observed", "expected", "why", "what to do"]


def _list_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [str(i["name"]), _obs_item(i), str(i["expected"]), str(i["why"]), str(i["what_to_do"])]
        for i in items
    ]


def _gate_rows(gates: list[GateResult]) -> list[list[str]]:
    return [[g.name, str(g.status), _obs(g), g.threshold, g.reason] for g in gates]


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    def esc(x: str) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(esc(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


@dataclass(frozen=True)
class Section:
    """An extra report table from another layer (e.g. the click correlations)."""

    title: str
    head: list[str]
    rows: list[list[str]]
    note: str = ""


def render_markdown(verdict: Verdict, sections: Sequence[Section] = ()) -> str:
    """``report.md``: verdict, gates, metrics, drift, latency, slices and worst regressions."""
    parts = [
        f"# Release verdict: {verdict.status} (exit code {verdict.exit_code})",
        "",
        f"Baseline **{verdict.baseline}**; dataset {verdict.dataset or '(in memory)'}"
        f"{f' (catalog text embedded: {verdict.embedded})' if verdict.embedded else ''}; "
        f"{verdict.test_label}; the primary metric tested alone at alpha "
        f"{verdict.gate_config.primary_metric.alpha:g}, the secondary family (other metrics, click "
        f"differences) with {verdict.settings.correction} correction among itself; intervals "
        "agree with the p-values beside them; "
        f"{verdict.settings.bootstrap} bootstrap resamples (seed {verdict.settings.seed}).",
    ]
    for c in verdict.candidates:
        parts += [
            "",
            f"## {c.candidate} vs {c.baseline}: {c.status}",
            "",
            f"**{_quality_line(c)}**",
        ]
        lists = c.checklist()
        for key, title in _LIST_TITLES:
            if lists[key]:
                parts += ["", f"### {title}", "", _md_table(_LIST_HEAD, _list_rows(lists[key]))]
        parts += [
            "",
            "## Evidence",
            "",
            "### Gates",
            "",
            _md_table(["gate", "status", "observed", "threshold", "reason"], _gate_rows(c.gates)),
            "",
            "### Quality",
            "",
            _md_table(_METRIC_HEAD, _metric_rows(c)),
            "",
            "### Drift",
            "",
            _md_table(["measure", c.baseline, c.candidate, "change"], _drift_rows(c)),
            "",
            "### Latency",
            "",
            _md_table(_LATENCY_HEAD, _latency_rows(c)),
        ]
        if c.slices:
            parts += ["", "### Slices", "", _md_table(_slice_head(c), _slice_rows(c))]
        if c.regressions:
            parts += ["", f"### Worst regressions ({mlflow_name(c.primary_metric)})", ""]
            for r in c.regressions:
                parts += [
                    f"**{r.query}** (`{r.query_id}`): {r.baseline_value:.4f} -> "
                    f"{r.candidate_value:.4f} ({r.delta:+.4f})",
                    "",
                    _md_table(
                        ["rank", f"{c.baseline}", "grade", f"{c.candidate}", "grade"],
                        _side_by_side(r),
                    ),
                    "",
                ]
    for sec in sections:
        parts += ["", f"## {sec.title}", ""]
        if sec.note:
            parts += [sec.note, ""]
        parts.append(_md_table(sec.head, sec.rows))
    return "\n".join(parts).rstrip() + "\n"


def _side_by_side(r) -> list[list[str]]:
    n = max(len(r.baseline_top), len(r.candidate_top))
    rows = []
    for i in range(n):
        b = r.baseline_top[i] if i < len(r.baseline_top) else ("", "", None)
        c = r.candidate_top[i] if i < len(r.candidate_top) else ("", "", None)
        rows.append(
            [
                str(i + 1),
                b[1],
                "unjudged" if b[0] and b[2] is None else ("" if not b[0] else str(b[2])),
                c[1],
                "unjudged" if c[0] and c[2] is None else ("" if not c[0] else str(c[2])),
            ]
        )
    return rows


def _html_table(head: list[str], rows: list[list[str]], status_col: int | None = None) -> str:
    e = html.escape
    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>")
        for i, cell in enumerate(r):
            text = e(str(cell))
            if (
                status_col is not None
                and i == status_col
                and cell
                in (
                    "PASS",
                    "WARN",
                    "INCONCLUSIVE",
                    "BLOCK",
                )
            ):
                out.append(f'<td><span class="badge {cell}">{text}</span></td>')
            elif (
                cell and (cell[0] in "+-0123456789[" or cell == "n/a") and i > 0 and len(cell) < 32
            ):
                out.append(f'<td class="num">{text}</td>')
            else:
                out.append(f"<td>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _img(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _read_png(path: str | Path) -> bytes:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read the plot: {err.strerror}", file=str(p)) from None
    if not data.startswith(b"\x89PNG"):
        raise DataError("is not a PNG image", file=str(p), expected="a PNG file")
    return data


def render_html(
    verdict: Verdict, scatter_png: str | Path | None = None, sections: Sequence[Section] = ()
) -> str:
    """Self-contained ``report.html`` (inline CSS, plots as base64 PNG)."""
    e = html.escape
    body = []
    scatter = _read_png(scatter_png) if scatter_png else None
    for c in verdict.candidates:
        body.append(
            f'<h2>{e(c.candidate)} vs {e(c.baseline)} <span class="badge {c.status}">'
            f"{c.status}</span></h2>"
        )
        body.append(f"<p><b>{e(_quality_line(c))}</b></p>")
        lists = c.checklist()
        for key, title in _LIST_TITLES:
            if lists[key]:
                body.append(f'<h3 class="list-{key}">{e(title)}</h3>')
                body.append(_html_table(_LIST_HEAD, _list_rows(lists[key])))
        body.append("<h3>Evidence: gates</h3>")
        body.append(
            _html_table(
                ["gate", "status", "observed", "threshold", "reason"], _gate_rows(c.gates), 1
            )
        )
        body.append(
            f"<h3>Quality ({e(verdict.test_label)}; primary at full alpha, secondary family "
            f"{e(verdict.settings.correction)}-corrected)</h3>"
        )
        body.append(_html_table(_METRIC_HEAD, _metric_rows(c)))
        figs = [
            _img(
                plot_metric_bars(c),
                "metric bars",
                "Metric means and deltas, 95% bootstrap intervals",
            ),
            _img(
                plot_distributions(c),
                "score distributions",
                "Per-version distributions of pair similarity and per-query primary metric",
            ),
        ]
        if scatter is not None:
            caption = next(
                (sec.title for sec in sections if sec.title.lower().startswith("similarity")),
                "Similarity vs click rate",
            )
            figs.append(_img(scatter, "similarity vs click", caption))
        body.append('<div class="plots">' + "".join(figs) + "</div>")
        body.append("<h3>Drift</h3>")
        body.append(_html_table(["measure", c.baseline, c.candidate, "change"], _drift_rows(c)))
        body.append("<h3>Latency</h3>")
        body.append(_html_table(_LATENCY_HEAD, _latency_rows(c)))
        if c.slices:
            note = "" if verdict.gate_config.slices.affect_verdict else " (informational)"
            body.append(f"<h3>Slices{note}</h3>")
            body.append(_html_table(_slice_head(c), _slice_rows(c), 7))
        if c.regressions:
            body.append(f"<h3>Worst regressions ({e(mlflow_name(c.primary_metric))})</h3>")
            for r in c.regressions:
                body.append(
                    f"<details open><summary><b>{e(r.query)}</b> <code>{e(r.query_id)}</code>: "
                    f"{r.baseline_value:.4f} &rarr; {r.candidate_value:.4f} ({r.delta:+.4f})"
                    "</summary>"
                    + _html_table(
                        ["rank", c.baseline, "grade", c.candidate, "grade"], _side_by_side(r)
                    )
                    + "</details>"
                )
    for sec in sections:
        body.append(f"<h2>{e(sec.title)}</h2>")
        if sec.note:
            body.append(f"<p>{e(sec.note)}</p>")
        body.append(_html_table(sec.head, sec.rows))
    meta = (
        f"Baseline {verdict.baseline} &middot; dataset {e(verdict.dataset or '(in memory)')} "
        f"{e(f'(catalog text embedded: {verdict.embedded}) ') if verdict.embedded else ''}"
        f"&middot; {e(verdict.test_label)}; primary metric tested alone at alpha "
        f"{verdict.gate_config.primary_metric.alpha:g}, secondary family "
        f"{e(verdict.settings.correction)}-corrected &middot; "
        f"{verdict.settings.bootstrap} bootstrap resamples, seed {verdict.settings.seed}"
    )
    template = Template(resources.files("evalkit.compare.report").joinpath(TEMPLATE).read_text("utf-8"))
    return template.substitute(
        title=e(f"evalkit release verdict: {verdict.status}"),
        meta=meta,
        status=str(verdict.status),
        exit_code=verdict.exit_code,
        body="\n".join(body),
    )


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    verdict_json: Path


def write_report(
    verdict: Verdict,
    out_dir: str | Path,
    scatter_png: str | Path | None = None,
    sections: Sequence[Section] = (),
) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and ``verdict.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out / "report.md", out / "report.html", out / "verdict.json")
    files.markdown.write_text(render_markdown(verdict, sections), encoding="utf-8")
    files.html.write_text(render_html(verdict, scatter_png, sections), encoding="utf-8")
    files.verdict_json.write_text(
        json.dumps(verdict_dict(verdict), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return files
