"""``report.html``: the same content as ``report.md``, self-contained: inline CSS from
``report_template.html`` (beside this module, shipped as package data) and the plots of
:mod:`~evalkit.compare.report.figures` embedded as base64 PNG, plus a similarity-vs-click scatter
when the clicks layer supplies it as a PNG file.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from string import Template

from evalkit.compare.report import cells
from evalkit.compare.report.cells import Section
from evalkit.compare.report.figures import plot_distributions, plot_metric_bars
from evalkit.compare.verdict import CandidateComparison, Verdict
from evalkit.errors import DataError
from evalkit.metrics.ir import mlflow_name

TEMPLATE = "report_template.html"


def _html_table(head: list[str], rows: list[list[str]], status_col: int | None = None) -> str:
    """An HTML table: ``status_col``'s statuses as badges, short numeric cells right-aligned.

    >>> _html_table(["gate", "status"], [["x", "PASS"], ["y", "+0.5"]], 1)  # doctest: +ELLIPSIS
    '<table>...<td><span class="badge PASS">PASS</span></td>...<td class="num">+0.5</td>...'
    """
    e = html.escape
    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>")
        out.extend(_cell(cell, i, status_col) for i, cell in enumerate(r))
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


_STATUSES = ("PASS", "WARN", "INCONCLUSIVE", "BLOCK")


def _cell(cell: str, i: int, status_col: int | None) -> str:
    text = html.escape(str(cell))
    if status_col is not None and i == status_col and cell in _STATUSES:
        return f'<td><span class="badge {cell}">{text}</span></td>'
    if cell and (cell[0] in "+-0123456789[" or cell == "n/a") and i > 0 and len(cell) < 32:
        return f'<td class="num">{text}</td>'
    return f"<td>{text}</td>"


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
    scatter = _read_png(scatter_png) if scatter_png else None
    body = [
        line for c in verdict.candidates for line in _candidate_html(verdict, c, scatter, sections)
    ]
    for sec in sections:
        body.append(f"<h2>{e(sec.title)}</h2>")
        if sec.note:
            body.append(f"<p>{e(sec.note)}</p>")
        body.append(_html_table(sec.head, sec.rows))
    template = Template(
        resources.files("evalkit.compare.report").joinpath(TEMPLATE).read_text("utf-8")
    )
    st = verdict.settings
    meta = (
        f"Baseline {verdict.baseline} &middot; dataset {e(verdict.dataset or '(in memory)')} "
        f"{e(f'(catalog text embedded: {verdict.embedded}) ') if verdict.embedded else ''}"
        f"&middot; {e(verdict.test_label)}; primary metric tested alone at alpha "
        f"{verdict.gate_config.primary_metric.alpha:g}, secondary family "
        f"{e(st.correction)}-corrected &middot; "
        f"{st.bootstrap} bootstrap resamples, seed {st.seed}"
    )
    return template.substitute(
        title=e(f"evalkit release verdict: {verdict.status}"),
        meta=meta,
        status=str(verdict.status),
        exit_code=verdict.exit_code,
        body="\n".join(body),
    )


def _candidate_html(
    verdict: Verdict,
    c: CandidateComparison,
    scatter: bytes | None,
    sections: Sequence[Section],
) -> list[str]:
    e = html.escape
    body = [
        f'<h2>{e(c.candidate)} vs {e(c.baseline)} <span class="badge {c.status}">'
        f"{c.status}</span></h2>",
        f"<p><b>{e(cells.quality_line(c))}</b></p>",
    ]
    lists = c.checklist()
    for key, title in cells.LIST_TITLES:
        if lists[key]:
            body.append(f'<h3 class="list-{key}">{e(title)}</h3>')
            body.append(_html_table(cells.LIST_HEAD, cells.list_rows(lists[key])))
    body += [
        "<h3>Evidence: gates</h3>",
        _html_table(cells.GATE_HEAD, cells.gate_rows(c.gates), 1),
        f"<h3>Quality ({e(verdict.test_label)}; primary at full alpha, secondary family "
        f"{e(verdict.settings.correction)}-corrected)</h3>",
        _html_table(cells.METRIC_HEAD, cells.metric_rows(c)),
        '<div class="plots">' + "".join(_figures(c, scatter, sections)) + "</div>",
        "<h3>Drift</h3>",
        _html_table(["measure", c.baseline, c.candidate, "change"], cells.drift_rows(c)),
        "<h3>Latency</h3>",
        _html_table(cells.LATENCY_HEAD, cells.latency_rows(c)),
    ]
    if c.slices:
        note = "" if verdict.gate_config.slices.affect_verdict else " (informational)"
        body += [f"<h3>Slices{note}</h3>", _html_table(cells.slice_head(c), cells.slice_rows(c), 7)]
    return body + _regressions_html(c)


def _figures(
    c: CandidateComparison, scatter: bytes | None, sections: Sequence[Section]
) -> list[str]:
    figs = [
        _img(
            plot_metric_bars(c), "metric bars", "Metric means and deltas, 95% bootstrap intervals"
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
    return figs


def _regressions_html(c: CandidateComparison) -> list[str]:
    if not c.regressions:
        return []
    e = html.escape
    body = [f"<h3>Worst regressions ({e(mlflow_name(c.primary_metric))})</h3>"]
    for r in c.regressions:
        body.append(
            f"<details open><summary><b>{e(r.query)}</b> <code>{e(r.query_id)}</code>: "
            f"{r.baseline_value:.4f} &rarr; {r.candidate_value:.4f} ({r.delta:+.4f})"
            "</summary>"
            + _html_table(
                ["rank", c.baseline, "grade", c.candidate, "grade"], cells.side_by_side(r)
            )
            + "</details>"
        )
    return body
