"""``evalkit`` (``task=evaluate``, the default): run the evaluation and print its results.

>>> import os
>>> from rich.console import Console
>>> from evalkit.results import VersionResult
>>> r = VersionResult("a", {}, {"ndcg@10": 0.5}, {"ndcg@10": {"q": 0.5}}, None, extra={"dim": 8})
>>> console = Console(width=100, record=True, file=open(os.devnull, "w"))
>>> console.print(metrics_table([r]))
>>> "ndcg@10" in console.export_text()
True
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table

from evalkit.compare.worklist import WORKLIST_FILE
from evalkit.metrics.judged_only import SUFFIX as JUDGED_ONLY
from evalkit.results import VersionResult
from evalkit.runtime import import_long_lived
from evalkit.terminal import make_console

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.run.evaluation import Evaluation

log = logging.getLogger("evalkit")


def metrics_table(results: list[VersionResult]) -> Table:
    """One column per version (readable in 80 columns), one row per metric and statistic."""
    table = Table(title="Metrics per model version (first column = baseline)")
    table.add_column("metric", style="bold")
    for i, r in enumerate(results):
        table.add_column(r.name + (" (baseline)" if i == 0 else ""), justify="right")
    metrics = list(results[0].overall) if results else []
    for m in metrics:
        table.add_row(m, *(f"{r.overall[m]:.4f}" if m in r.overall else "-" for r in results))
    extra = results[0].extra if results else {}
    for key in sorted(k for k in extra if k.startswith("unjudged_at_") or k.endswith(JUDGED_ONLY)):
        label = key.replace("_at_", "@", 1).replace(JUDGED_ONLY, " judged only").replace("_", " ")
        table.add_row(label, *(f"{r.extra[key]:.4f}" if key in r.extra else "-" for r in results))

    def stat(key: str) -> list[str]:
        return [str(int(r.extra[key])) if key in r.extra else "-" for r in results]

    def p95(r: VersionResult) -> str:
        lat = r.latencies_s
        return f"{float(np.percentile(lat, 95)) * 1000:.1f}" if len(lat) else "-"

    def chunks(r: VersionResult) -> str:
        if "chunks_per_item_mean" not in r.extra:
            return "-"
        mean, most = r.extra["chunks_per_item_mean"], int(r.extra["chunks_per_item_max"])
        return f"{mean:.2f} / {most}, {r.params.get('chunk_pooling')}"

    table.add_section()
    table.add_row("dimensions", *stat("dim"))
    table.add_row("queries scored", *stat("queries_scored"))
    if any(r.extra.get("judged_items_missing") for r in results):  # skip mode kept them judged
        table.add_row("relevant items not in catalog", *stat("judged_items_missing"))
    table.add_row("embedding requests", *stat("embed_requests"))
    if any("embed_tokens" in r.extra for r in results):  # servers that report usage only
        table.add_row("embedding tokens", *stat("embed_tokens"))
    table.add_row("p95 request ms", *(p95(r) for r in results))
    table.add_row("tied scores in top-k", *stat("ties"))
    if any("chunks_per_item_mean" in r.extra for r in results):
        table.add_row("chunks per item (mean / max, pooling)", *(chunks(r) for r in results))
    return table


def click_table(report: Any) -> Table:
    head, rows = report.table()
    table = Table(title=f"Cosine similarity vs {report.label}")
    for col in head:
        table.add_column(col, justify="left" if col == "version" else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_evaluation(evaluation: Evaluation, console: Console | None = None) -> None:
    """Print the data notes, the release checklist, the tables and where the results went."""
    console = console or make_console()
    data = evaluation.data
    label = " (synthetic demo data)" if data.synthetic else ""
    console.print(
        f"[bold]{data.name}[/]{label}: {len(data.catalog)} items, {len(data.queries)} queries, "
        f"judgments: {data.judgments.method if data.judgments else 'none'}; "
        f"catalog text embedded: {data.embedded_label()}",
        markup=True,
        highlight=False,
    )
    if data.skipped:
        console.print("skipped rows: " + ", ".join(f"{k}={v}" for k, v in data.skipped.items()))
    if data.extra_judgments is not None:
        console.print(data.extra_judgments.describe(), highlight=False, soft_wrap=True)
    if evaluation.comparison is not None:  # the answer first: the checklist, then the evidence
        from evalkit.compare import checklist_table

        console.print(checklist_table(evaluation.comparison))
    console.print(metrics_table(evaluation.results))
    if evaluation.click_report is not None:
        console.print(click_table(evaluation.click_report))
    if evaluation.parent_run_id:
        console.print(
            f"MLflow parent run {evaluation.parent_run_id}; outputs in {evaluation.output_dir}"
        )
        if evaluation.ui_url:
            console.print(f"MLflow UI: {evaluation.ui_url}", soft_wrap=True)
        if evaluation.run_url:
            console.print(f"MLflow run: {evaluation.run_url}", soft_wrap=True)
    else:
        console.print(f"outputs in {evaluation.output_dir}")
    worklist = evaluation.worklist
    if worklist is not None and worklist.rows:
        console.print(
            f"judging worklist: {len(worklist.rows)} items -> "
            f"{evaluation.output_dir / WORKLIST_FILE}",
            highlight=False,
            soft_wrap=True,
        )


def used_modules(cfg: Any) -> list[str]:
    """The run's modules that import heavy libraries, for this config.

    >>> used_modules({"tracking": {"enabled": False}, "clicks": {"source": "none"}, "dataset": {}})
    ['evalkit.run.evaluation', 'ranx']
    """
    out = ["evalkit.run.evaluation", "ranx"]
    if (cfg.get("tracking") or {}).get("enabled"):
        out.append("evalkit.run.mlflow_observer")
    return out


def run(cfg: Any, overrides: list[str]) -> dict[str, Any]:
    for module in used_modules(cfg):  # kept out of the garbage collector's walks (runtime.py)
        import_long_lived(module)
    run_evaluation = import_long_lived("evalkit.run.evaluation").run_evaluation
    evaluation = run_evaluation(cfg, overrides)
    print_evaluation(evaluation)
    if evaluation.tracking_error:
        log.error("evalkit: %s", evaluation.tracking_error)
    verdict = evaluation.comparison.status.value if evaluation.comparison else "-"
    metric = str(cfg.primary_metric)
    names = [r.name for r in evaluation.results]
    return {
        "exit_code": evaluation.exit_code,
        "verdict": verdict,
        "primary_metric": metric,
        "metrics": {r.name: r.overall[metric] for r in evaluation.results if metric in r.overall},
        "versions": names,
        "output_dir": str(evaluation.output_dir),
        "run_id": evaluation.parent_run_id or "",
        "child_runs": dict(evaluation.child_run_ids),
        "costs": {
            name: {k: float(v) for k, v in stats.items() if isinstance(v, int | float)}
            for name, stats in evaluation.stats.items()
        },
    }
