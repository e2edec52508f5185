"""``report.md``: the verdict, the checklist lists, then the evidence (gates, quality, drift,
latency, slices, worst regressions) and any extra :class:`~evalkit.compare.report.cells.Section`.

>>> print(_md_table(["a", "b"], [["1", "x|y"]]))
| a | b |
|---|---|
| 1 | x\\|y |
"""

from __future__ import annotations

from collections.abc import Sequence

from evalkit.compare.report import cells
from evalkit.compare.report.cells import Section
from evalkit.compare.verdict import Verdict
from evalkit.metrics.ir import mlflow_name


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    def esc(x: str) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(esc(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def render_markdown(verdict: Verdict, sections: Sequence[Section] = ()) -> str:
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

    def table(title: str, head: list[str], rows: list[list[str]]) -> list[str]:
        return ["", title, "", _md_table(head, rows)]

    for c in verdict.candidates:
        quality = f"**{cells.quality_line(c)}**"
        parts += ["", f"## {c.candidate} vs {c.baseline}: {c.status}", "", quality]
        lists = c.checklist()
        for key, title in cells.LIST_TITLES:
            if lists[key]:
                parts += table(f"### {title}", cells.LIST_HEAD, cells.list_rows(lists[key]))
        parts += ["", "## Evidence"]
        parts += table("### Gates", cells.GATE_HEAD, cells.gate_rows(c.gates))
        parts += table("### Quality", cells.METRIC_HEAD, cells.metric_rows(c))
        drift_head = ["measure", c.baseline, c.candidate, "change"]
        parts += table("### Drift", drift_head, cells.drift_rows(c))
        parts += table("### Latency", cells.LATENCY_HEAD, cells.latency_rows(c))
        if c.slices:
            parts += table("### Slices", cells.slice_head(c), cells.slice_rows(c))
        if c.regressions:
            parts += ["", f"### Worst regressions ({mlflow_name(c.primary_metric)})", ""]
            for r in c.regressions:
                parts += [
                    f"**{r.query}** (`{r.query_id}`): {r.baseline_value:.4f} -> "
                    f"{r.candidate_value:.4f} ({r.delta:+.4f})",
                    "",
                    _md_table(
                        ["rank", f"{c.baseline}", "grade", f"{c.candidate}", "grade"],
                        cells.side_by_side(r),
                    ),
                    "",
                ]
    for sec in sections:
        parts += ["", f"## {sec.title}", "", *([sec.note, ""] if sec.note else [])]
        parts.append(_md_table(sec.head, sec.rows))
    return "\n".join(parts).rstrip() + "\n"
