"""The canary's report: ``verdict.json``, ``report.md``, ``report.html`` (plots embedded) and the
terminal checklist, from an :class:`~evalkit.online.analysis.OnlineResult`.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evalkit.compare.status import Status, jsonable

LISTS = (
    ("blockers", Status.BLOCK),
    ("undecided", Status.INCONCLUSIVE),
    ("follow_ups", Status.WARN),
    ("passed", Status.PASS),
)


@dataclass(frozen=True)
class OnlineFiles:
    """What the report wrote (all in ``folder``)."""

    folder: Path
    verdict_json: Path
    markdown: Path
    html: Path
    plots: dict[str, Path] = field(default_factory=dict)

    def all(self) -> list[Path]:
        return [self.verdict_json, self.markdown, self.html, *self.plots.values()]


def checklist(result: Any) -> dict[str, list[dict[str, Any]]]:
    """``passed`` / ``follow_ups`` / ``undecided`` / ``blockers`` / ``actions`` (as offline)."""
    items = {name: [g.item() for g in result.gates if g.status == s] for name, s in LISTS}
    return {**items, "actions": list(result.actions)}


def verdict_dict(result: Any) -> dict[str, Any]:
    """The ``verdict.json`` document."""
    return jsonable(
        {
            "task": "online",
            "verdict": str(result.status),
            "exit_code": result.exit_code,
            "simulated": result.simulated,
            "versions": {"control": result.versions[0], "treatment": result.versions[1]},
            **checklist(result),
            "calls": {k: q.to_dict() for k, q in result.calls.items()},
            "metrics": result.metrics,
            "notes": list(result.notes),
            "daily": result.daily,
            "slices": result.slices,
            "offline": result.offline,
            "params": result.params,
        }
    )


def _plots(result: Any, folder: Path) -> dict[str, Path]:
    from evalkit.online import canary_plots as plots

    out: dict[str, Path] = {}
    sim = result.simulated
    if result.daily:
        days = sorted({r["day"] for r in result.daily})
        per_arm = {}
        for arm in ("control", "treatment"):
            rows = {r["day"]: r for r in result.daily if r["arm"] == arm}
            per_arm[result.label(arm)] = tuple(
                [rows[d][k] if d in rows else math.nan for d in days]
                for k in ("ctr", "low", "high")
            )
        out["daily_ctr"] = plots.plot_daily_ctr(
            days, per_arm, folder / "daily_ctr.png", simulated=sim
        )
    per_arm_plots = (
        ("score_ctr", result.score_curves, plots.plot_score_ctr),
        ("latency_cdf", result.latencies, plots.plot_latency_cdf),
        ("position_ctr", result.position_ctr, plots.plot_position_ctr),
    )
    for key, values, plot in per_arm_plots:
        if values:
            labelled = {result.label(a): v for a, v in values.items()}
            out[key] = plot(labelled, folder / f"{key}.png", simulated=sim)
    return out


def _rows(lists: dict[str, list[dict[str, Any]]]):
    """Each checklist item's list, check, observed value as shown and why / what to do."""
    for name, _ in LISTS:
        for i in lists[name]:
            obs = i["observed"]
            shown = "n/a" if obs is None else f"{obs:+.4g}" if isinstance(obs, float) else obs
            todo = f" -> {i['what_to_do']}" if i["what_to_do"] else ""
            yield name, i["name"], shown, f"{i['why']}{todo}"


def _markdown(result: Any, lists: dict[str, list[dict[str, Any]]], plots: dict[str, Path]) -> str:
    c, t = result.versions
    lines = [
        f"# Online A/B (canary){' - SIMULATED' if result.simulated else ''}: {c} (control) vs "
        f"{t} (treatment)",
        "",
        f"**Verdict: {result.status}** (exit code {result.exit_code})",
        "",
        "| list | check | observed | why / what to do |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {check} | {shown} | {why} |" for name, check, shown, why in _rows(lists)]
    for a in lists["actions"]:
        lines.append(f"| action | {a['name']} | {a.get('observed', '')} | {a['why']} |")
    lines += ["", "## Figures", "", "| metric | value |", "|---|---|"]
    lines += [f"| `{k}` | {v:.6g} |" for k, v in sorted(result.metrics.items())]
    if result.offline:
        off = result.offline
        lines += [
            "",
            "## Beside the offline evaluation",
            "",
            f"Offline run `{off['run_id']}` ({off['name']}): verdict {off['verdict']}, quality "
            f"{off['quality']}.",
            "",
            "| offline metric | value |",
            "|---|---|",
            *[f"| `{k}` | {v:.4g} |" for k, v in off["metrics"].items()],
        ]
    if result.slices:
        lines += [
            "",
            "## Slices (request CTR, B - A)",
            "",
            "| slice | units | delta | interval | call |",
            "|---|---|---|---|---|",
        ]
        for s in result.slices:
            lines.append(
                f"| {s['slice']} | {s['units']} | {s['delta']:+.4f} | [{s['ci_low']:+.4f}, "
                f"{s['ci_high']:+.4f}] | {s['call']} |"
            )
    if result.notes:
        lines += ["", "## Not measured", "", *[f"- {n}" for n in result.notes]]
    if plots:
        lines += ["", "## Plots", "", *[f"![{k}]({p.name})" for k, p in plots.items()]]
    return "\n".join(lines) + "\n"


def _html(markdown: str, plots: dict[str, Path]) -> str:
    body = html.escape(markdown)
    images = "".join(
        f'<h3>{html.escape(k)}</h3><img alt="{html.escape(k)}" '
        f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}"/>'
        for k, p in plots.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>evalkit online A/B</title>"
        "<style>body{font-family:sans-serif;margin:2em}pre{white-space:pre-wrap}"
        "img{max-width:900px}</style></head><body>"
        f"<pre>{body}</pre>{images}</body></html>\n"
    )


def write_online_report(result: Any, folder: str | Path) -> OnlineFiles:
    """Write the plots, ``verdict.json``, ``report.md`` and ``report.html`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plots = _plots(result, folder)
    lists = checklist(result)
    files = OnlineFiles(
        folder, folder / "verdict.json", folder / "report.md", folder / "report.html", plots
    )
    doc = verdict_dict(result)
    files.verdict_json.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", "utf-8")
    markdown = _markdown(result, lists, plots)
    files.markdown.write_text(markdown, encoding="utf-8")
    files.html.write_text(_html(markdown, plots), encoding="utf-8")
    return files


def print_online(result: Any, console: Console, files: OnlineFiles, ui: str | None) -> None:
    """The verdict and its checklist on the terminal (stdout)."""
    c, t = result.versions
    sim = " (SIMULATED canary)" if result.simulated else ""
    console.print(
        f"online A/B{sim}: {c} (control) vs {t} (treatment); {result.params.get('rows', 0):,} "
        f"impressions, unit {result.params.get('unit', '-')}",
        highlight=False,
        soft_wrap=True,
    )
    table = Table(title=f"Rollout verdict: {result.status} (exit code {result.exit_code})")
    for col in ("list", "check", "observed", "why / what to do"):
        table.add_column(col, justify="right" if col == "observed" else "left")
    lists = checklist(result)
    for name, check, shown, why in _rows(lists):
        label = {"follow_ups": "follow-up", "blockers": "BLOCK"}.get(name, name)
        table.add_row(label, check, str(shown), escape(why))
    for a in lists["actions"]:
        table.add_row("action", a["name"], escape(str(a.get("observed", ""))), escape(a["why"]))
    console.print(table)
    if result.offline:
        off = result.offline
        deltas = ", ".join(f"{k} {v:+.4f}" for k, v in off["metrics"].items())
        console.print(
            f"offline ({off['run_id']}): verdict {off['verdict']}, quality {off['quality']}; {deltas}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    for note in result.notes:
        console.print(f"not measured: {note}", highlight=False, soft_wrap=True, markup=False)
    if ui:
        console.print(f"MLflow UI: {ui}", soft_wrap=True)
    console.print(f"outputs in {files.folder}", soft_wrap=True)
