"""The terminal checklist: :func:`checklist_lines` (plain text) and :func:`checklist_table` (the
rich tables ``evalkit`` prints at the end of a comparison), with the slice summary line.

>>> from evalkit.results import VersionResult
>>> from evalkit.compare.verdict import compare_versions
>>> pq = {"ndcg@10": {f"q{i}": i / 20 for i in range(20)}}
>>> v = compare_versions(VersionResult("a", {}, {}, pq, None), [VersionResult("b", {}, {}, pq, None)])
>>> checklist_lines(v)[0]
'Verdict: WARN (exit code 0): b vs baseline a; quality: no worse (ndcg@10 +0.0000 [95% CI +0.0000, +0.0000], p=1)'
"""

from __future__ import annotations

from evalkit.compare.calls import STATUS_TEXT, Quality
from evalkit.compare.gate_rules import judge_more
from evalkit.compare.report.cells import LIST_TITLES, obs_item, quality_line
from evalkit.compare.status import Status
from evalkit.compare.verdict import CandidateComparison, Verdict
from evalkit.metrics.ir import mlflow_name


def _n_slices(n: int) -> str:
    return f"{n} slice" if n == 1 else f"{n} slices"


def _slice_summary(c: CandidateComparison) -> str:
    """Slices called worse / better by name; no-worse, inconclusive and too small ones counted."""
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
    """Plain-text checklist per candidate: the verdict and quality call, then every list."""
    lines = []
    for c in verdict.candidates:
        lines.append(
            f"Verdict: {c.status} (exit code {verdict.exit_code}): "
            f"{c.candidate} vs baseline {c.baseline}; {quality_line(c)}"
        )
        lists = c.checklist()
        for key, title in LIST_TITLES:
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
                        f"    - {i['name']} (observed {obs_item(i)}, expected {i['expected']}): "
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
    """The checklist for the terminal, a :class:`rich.console.Group` of tables."""
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
        for key, label in labels.items():
            for i in lists[key]:
                why, todo = escape(str(i["why"])), escape(str(i["what_to_do"] or ""))
                if key == "passed":
                    text = why
                elif key == "actions":
                    text = f"[bold]{todo}[/] ({why})"
                else:
                    text = why + (f" -> [bold]{todo}[/]" if todo else "")
                row = [label, escape(i["name"]), escape(obs_item(i)), text]
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
