"""Shared pieces of the Markdown and HTML writers (and the terminal checklist): cell formatting
(``n/a`` for what was not measured), the one-line quality call, and the row builders with their
column heads; each writer turns these rows into its own table syntax.

>>> _f(None), _f(0.12345), _pct(0.25)
('n/a', '0.1235', '25.0%')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from evalkit.compare.calls import STATUS_TEXT
from evalkit.compare.gate_rules import GateResult, judge_more
from evalkit.compare.verdict import CandidateComparison
from evalkit.metrics.ir import mlflow_name


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


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


def _obs(g: GateResult) -> str:
    if g.observed is None or not _finite(g.observed):
        return "n/a"
    if g.name == "endpoint_checks":
        return f"{int(g.observed)} failed"
    if g.name.endswith("_agreement"):
        return f"{g.observed:.4f}"
    return f"{g.observed:+.4f}" if abs(g.observed) < 1 else f"{g.observed:g}"


def obs_item(i: dict[str, Any]) -> str:
    v = i.get("observed")
    if isinstance(v, float):
        return f"{v:+.4f}" if abs(v) < 1 else f"{v:g}"
    return "n/a" if v is None else str(v)


def quality_line(c: CandidateComparison) -> str:
    q = c.primary_call
    if q is None:
        return "quality: not measured"
    decide = judge_more(q)
    return f"quality: {STATUS_TEXT[q.status]} ({q.describe()})" + (
        f"; to decide: {decide}" if decide else ""
    )


@dataclass(frozen=True)
class Section:
    """An extra report table from another layer (e.g. the click correlations)."""

    title: str
    head: list[str]
    rows: list[list[str]]
    note: str = ""


def metric_rows(c: CandidateComparison | Any) -> list[list[str]]:
    def test(m: Any, p_corrected: str) -> list[str]:
        interval = f"{_interval(m.ci_low, m.ci_high)} {_level(m)}".rstrip()
        return [_f(m.delta, "+.4f"), interval, _f(m.p_value, ".3g"), p_corrected]

    calls = {q.metric: q for q in getattr(c, "quality", [])}
    rows = []
    for m in c.metrics:
        primary = getattr(m, "family", "") == "primary"
        name = mlflow_name(m.metric) + (" (primary)" if primary else "")
        p = "uncorrected" if primary else _f(m.p_corrected, ".3g")
        call = _call_text(calls[m.metric]) if m.metric in calls else ""
        wtl = f"{m.wins}/{m.ties}/{m.losses}"
        rows.append([name, _f(m.baseline_mean), _f(m.candidate_mean), *test(m, p), wtl, call])
    for q in getattr(c, "click_quality", []):
        rows.append([q.metric, "", "", *test(q, _f(q.p_corrected, ".3g")), "", _call_text(q)])
    return rows


METRIC_HEAD = [
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


def drift_rows(c: CandidateComparison) -> list[list[str]]:
    rows = []
    if (d := c.drift) is not None:
        low = [_pct(d.baseline_low_share), _pct(d.candidate_low_share)]
        rows += [
            ["mean cosine", _f(d.baseline_mean), _f(d.candidate_mean), _f(d.mean_shift, "+.4f")],
            [f"share of pairs below {d.threshold:g}", *low, _f(d.low_share_delta, "+.4f")],
        ]
    if c.overlap is not None:
        o = c.overlap
        rows.append([f"top-{o.k} agreement", "", "", _f(o.agreement)])
        rows += [[f"RBO (extrapolated, p={p:g})", "", "", _f(v)] for p, v in o.rbo.items()]
    b, cc = c.unjudged.get(c.baseline), c.unjudged.get(c.candidate)
    if b is not None or cc is not None:
        k = (b or cc).k
        change = _f(cc.mean - b.mean if b is not None and cc is not None else None, "+.4f")
        rows.append(
            [f"unjudged@{k}", _pct(b.mean if b else None), _pct(cc.mean if cc else None), change]
        )
    return rows


def latency_rows(c: CandidateComparison) -> list[list[str]]:
    def version(name: str, s: Any) -> list[str]:
        ms = [_f(x * 1000, ".1f") for x in (s.p50, s.p95, s.p99)]
        load = f"{s.batch_size} / {s.concurrency}"
        return [name, str(s.n_requests), *ms, _f(s.throughput, ".1f"), load]

    lat = c.latency
    ratios = [_f(r, ".2f") for r in (lat.p50_ratio, lat.p95_ratio, lat.p99_ratio)]
    throughput = _f(lat.throughput_ratio, ".2f")
    note = "" if lat.comparable else f"not comparable: {lat.note}"
    return [
        version(c.baseline, lat.baseline),
        version(c.candidate, lat.candidate),
        ["ratio", "", *ratios, throughput, note],
    ]


LATENCY_HEAD = [
    "version",
    "requests",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "texts/s",
    "batch / concurrency",
]


def slice_rows(c: CandidateComparison) -> list[list[str]]:
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


def slice_head(c: CandidateComparison) -> list[str]:
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


LIST_TITLES = (
    ("blockers", "Blockers"),
    ("undecided", "Not decided: more evidence needed"),
    ("passed", "Passed"),
    ("follow_ups", "Follow-ups (need a decision)"),
    ("actions", "Actions before switching"),
)


LIST_HEAD = ["check", "observed", "expected", "why", "what to do"]


def list_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [str(i["name"]), obs_item(i), str(i["expected"]), str(i["why"]), str(i["what_to_do"])]
        for i in items
    ]


GATE_HEAD = ["gate", "status", "observed", "threshold", "reason"]


def gate_rows(gates: list[GateResult]) -> list[list[str]]:
    return [[g.name, str(g.status), _obs(g), g.threshold, g.reason] for g in gates]


def side_by_side(r) -> list[list[str]]:
    def cells(top: list, i: int) -> list[str]:
        item, title, grade = top[i] if i < len(top) else ("", "", None)
        return [title, "unjudged" if item and grade is None else ("" if not item else str(grade))]

    n = max(len(r.baseline_top), len(r.candidate_top))
    return [[str(i + 1), *cells(r.baseline_top, i), *cells(r.candidate_top, i)] for i in range(n)]
