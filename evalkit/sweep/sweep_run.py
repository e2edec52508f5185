"""One MLflow run per ``--multirun`` sweep: its jobs' evaluations nested under it, and the
configurations compared with each other (:mod:`evalkit.sweep.configs`) logged on it.

:func:`start_sweep_run` creates the run ``sweep: <dataset> <swept keys>`` and exports its id in
``EVALKIT_SWEEP_RUN_ID`` for the jobs; :func:`finish_sweep_run` logs the comparison's files,
metrics and tags on it (names: docs/reference/mlflow.md), with the quality-versus-cost frontier
plots (each configuration at (cost, delta) with its interval; the no-worse band shaded, the
non-dominated ringed, the pick named) and ``sweep_report.html``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evalkit.compare.report.verdict_json import jsonable
from evalkit.sweep.configs import (
    ConfigCall,
    Pick,
    auto_reference,
    compare_configs,
    frontier,
    parse_overrides,
    pick_cheapest,
)
from evalkit.sweep.jobs import JobOutcome, plain_override, swept_overrides
from evalkit.track.artifacts import PER_QUERY_FILE, read_per_query
from evalkit.track.sweep_parent import SWEEP_RUN_ENV, SWEEP_URI_ENV

log = logging.getLogger(__name__)

TABLE_FILE = "sweep_configs.csv"
RESULT_FILE = "sweep_configs.json"
REPORT_FILE = "sweep_report.html"
NOTE_TAG = "mlflow.note.content"


def swept_keys(task_overrides: list[str]) -> list[str]:
    """The keys a sweep varies (``a=1,2``, ``range(...)``, ``choice(...)``, ``glob(...)``).

    >>> swept_keys(["models=[use_m3,e5_small]", "models.e5_small.dimensions=128,256",
    ...             "index.precision=fp32,sq8"])
    ['models.e5_small.dimensions', 'index.precision']
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    return [o.key_or_group for o in parsed if o.is_sweep_override()]


def dataset_label(config: Any) -> str:
    """``dataset.name``, else the folder of ``dataset.path``, else the dataset group."""
    ds = config.get("dataset") or {}
    if ds.get("name"):
        return str(ds.get("name"))
    if ds.get("path"):
        return Path(str(ds.get("path")).rstrip("/")).name
    try:
        return str(config.hydra.runtime.choices.get("dataset") or "")
    except Exception:
        return ""


def start_sweep_run(config: Any) -> str | None:
    """Create the sweep run and export its id to the jobs (None: tracking off or failed)."""
    tracking = config.get("tracking") or {}
    if not tracking.get("enabled"):
        return None
    from evalkit.track.mlflow_tracker import Tracker
    from evalkit.track.timeout import tracking_timeout

    overrides = list(config.hydra.overrides.task)
    keys = swept_keys(overrides)
    dataset = dataset_label(config)
    try:
        tracker = Tracker(
            str(tracking.uri), str(tracking.experiment), timeout_s=tracking_timeout(tracking)
        )
        run_id = tracker.start_parent(
            " ".join(["sweep:", dataset or "?", *keys]),
            tags={
                "evalkit.task": "sweep",
                "evalkit.sweep.keys": " ".join(keys),
                "evalkit.sweep.overrides": " ".join(plain_override(o) for o in overrides),
                "evalkit.dataset": dataset,
            },
        )
    except Exception as exc:  # a sweep never fails on its summary run: the jobs say why
        log.warning("no sweep run in MLflow: %s", exc)
        return None
    if tracker.offline:
        return None
    os.environ[SWEEP_RUN_ENV] = run_id
    os.environ[SWEEP_URI_ENV] = str(tracking.uri)
    return run_id


@dataclass
class SweepComparison:
    """The configurations compared: the reference, each call, the pick."""

    metric: str
    reference: str  # the reference's label, or "baseline"
    reference_num: int | None
    margin: float = 0.0
    calls: list[ConfigCall] = field(default_factory=list)
    nums: list[int] = field(default_factory=list)  # each call's job number
    pick: Pick | None = None
    reference_costs: dict[str, float] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)  # job number -> why it is not compared

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "reference": self.reference,
            "reference_job": self.reference_num,
            "reference_costs": jsonable(self.reference_costs),
            "configurations": [
                {"job": n, **jsonable(c)} for n, c in zip(self.nums, self.calls, strict=True)
            ],
            "pick": None
            if self.pick is None
            else {
                "found": self.pick.found,
                "label": self.pick.call.label if self.pick.call else None,
                "cost": self.pick.cost_key,
                "cost_share": jsonable(self.pick.share),
                "text": self.pick.text,
            },
            "skipped": jsonable(self.skipped),
        }


def _per_query(job: JobOutcome, version: str, metric: str) -> dict[str, float] | None:
    """From ``<job output>/<version>/per_query.csv``, else its MLflow run (a Ray job elsewhere)."""
    path = Path(job.output_dir) / version / PER_QUERY_FILE if job.output_dir else None
    if path is None or not path.is_file():
        path = _download_per_query(job, version)
    return None if path is None else read_per_query(path).get(metric) or None


def _download_per_query(job: JobOutcome, version: str) -> Path | None:
    run_id = job.child_runs.get(version)
    uri = os.environ.get(SWEEP_URI_ENV)
    if not run_id or not uri:
        return None
    try:
        from mlflow import MlflowClient

        dst = tempfile.mkdtemp(prefix="evalkit-sweep-")
        return Path(MlflowClient(tracking_uri=uri).download_artifacts(run_id, PER_QUERY_FILE, dst))
    except Exception as exc:
        log.warning("job %d: cannot read %s's per-query values: %s", job.num, version, exc)
        return None


def compare_sweep(
    jobs: list[JobOutcome], reference: str, cost: str, margin: float, alpha: float
) -> SweepComparison | None:
    """The sweep's configurations compared (None: fewer than two comparable jobs)."""
    metric = next((j.primary_metric for j in jobs if j.primary_metric), "")
    labels = {j.num: " ".join(o) for j, o in zip(jobs, swept_overrides(jobs), strict=True)}
    out = SweepComparison(metric=metric, reference=reference, reference_num=None, margin=margin)
    usable = []
    for j in jobs:
        if j.error or not j.versions:
            out.skipped[j.num] = j.error or "no evaluated version"
            continue
        usable.append(j)
    if not metric or not usable:
        return None
    values: dict[int, dict[str, float]] = {}
    for j in usable:
        v = _per_query(j, j.versions[-1], metric)
        if v is None:
            out.skipped[j.num] = f"no per-query {metric} of {j.versions[-1]}"
        else:
            values[j.num] = v
    usable = [j for j in usable if j.num in values]
    if reference == "baseline":
        configs, refs, nums = [], [], []
        for j in usable:
            base = _per_query(j, j.versions[0], metric) if len(j.versions) > 1 else None
            if base is None:
                out.skipped[j.num] = "no baseline version to compare with"
                continue
            configs.append((labels[j.num], values[j.num]))
            refs.append(base)
            nums.append(j.num)
        out.calls = compare_configs(None, configs, margin=margin, alpha=alpha, references=refs)
        out.nums = nums
        out.reference = "baseline (each job's " + (usable[0].versions[0] if usable else "A") + ")"
    else:
        ref_job = _reference_job(usable, reference)
        if ref_job is None:
            log.warning(
                "sweep.reference=%s matches no finished job; configurations are not compared",
                reference,
            )
            return out
        out.reference_num, out.reference = ref_job.num, labels[ref_job.num]
        out.reference_costs = ref_job.final_costs
        others = [j for j in usable if j.num != ref_job.num]
        out.calls = compare_configs(
            values[ref_job.num],
            [(labels[j.num], values[j.num]) for j in others],
            margin=margin,
            alpha=alpha,
        )
        out.nums = [j.num for j in others]
    by_num = {j.num: j for j in usable}
    out.calls = [
        ConfigCall(**{**asdict(c), "costs": by_num[n].final_costs})
        for n, c in zip(out.nums, out.calls, strict=True)
    ]
    out.pick = pick_cheapest(
        out.calls, out.reference, out.reference_costs, cost_key=cost, metric=metric
    )
    return out


def _reference_job(jobs: list[JobOutcome], reference: str) -> JobOutcome | None:
    if reference == "auto":
        i = auto_reference([parse_overrides(s) for s in swept_overrides(jobs)])
        return None if i is None else jobs[i]
    want = parse_overrides([plain_override(o) for o in reference.split()])
    for j in jobs:
        have = parse_overrides([plain_override(o) for o in j.overrides])
        if all(have.get(k) == v for k, v in want.items()):
            return j
    return None


def finish_sweep_run(
    run_id: str | None, sweep_dir: Path, comparison: SweepComparison | None, jobs: list[JobOutcome]
) -> list[Path]:
    """Write the comparison's files into ``sweep_dir`` (returned) and log them on the sweep run."""
    files: list[Path] = []
    if comparison is not None:
        files.append(sweep_dir / RESULT_FILE)
        files[-1].write_text(json.dumps(comparison.to_dict(), indent=1), encoding="utf-8")
        files.append(_write_table(sweep_dir / TABLE_FILE, comparison, jobs))
        pngs = frontier_pngs(comparison)
        for name, png in pngs.items():
            (sweep_dir / name).write_bytes(png)
            files.append(sweep_dir / name)
        files.append(sweep_dir / REPORT_FILE)
        files[-1].write_text(sweep_report_html(comparison, jobs, pngs), encoding="utf-8")
    if run_id is None:
        return files
    uri = os.environ.get(SWEEP_URI_ENV)
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        if comparison is not None:
            _log_comparison(client, run_id, comparison)
        for f in files:
            client.log_artifact(run_id, str(f))
        summary = sweep_dir / "sweep_summary.json"
        if summary.is_file():
            client.log_artifact(run_id, str(summary))
        failed = any(j.error for j in jobs)
        client.set_terminated(run_id, "FAILED" if failed and comparison is None else "FINISHED")
    except Exception as exc:
        log.warning("could not log the sweep run %s: %s", run_id, exc)
    finally:
        os.environ.pop(SWEEP_RUN_ENV, None)
        os.environ.pop(SWEEP_URI_ENV, None)
    return files


def _log_comparison(client: Any, run_id: str, c: SweepComparison) -> None:
    stats = ("delta", "ci_low", "ci_high")
    metrics = {
        f"{stat}_{n}": getattr(call, stat)
        for n, call in zip(c.nums, c.calls, strict=True)
        for stat in (*stats, "p_holm")
    }
    pick = c.pick
    if pick is not None and pick.call is not None and pick.found:
        metrics.update({f"pick_{stat}": getattr(pick.call, stat) for stat in stats})
        metrics["pick_cost_share"] = pick.share
    text = pick.text if pick is not None else "configurations not compared"
    tags = {
        "evalkit.sweep.pick": pick.call.label if pick and pick.found and pick.call else "none",
        "evalkit.sweep.reference": c.reference,
        "evalkit.summary": text,
        NOTE_TAG: f"**Pick:** {text}\n\nReference: {c.reference}; {len(c.calls)} "
        f"configurations compared on {c.metric} (paired t, Holm across configurations).",
    }
    import time

    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if math.isfinite(v)],
        tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()],
    )


def _write_table(path: Path, c: SweepComparison, jobs: list[JobOutcome]) -> Path:
    cost_keys = ("index_bytes", "index_bytes_per_vector", "search_p50_ms", "search_p95_ms",
                 "embed_requests", "embed_seconds", "embed_tokens",
                 "chunks_per_item_mean")  # fmt: skip
    by_num = {n: call for n, call in zip(c.nums, c.calls, strict=True)}
    labels = {j.num: " ".join(o) for j, o in zip(jobs, swept_overrides(jobs), strict=True)}
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["job", "configuration", "call", "delta", "ci_low", "ci_high", "confidence",
                    "p", "p_holm", *cost_keys, "error"])  # fmt: skip
        for j in jobs:
            call = by_num.get(j.num)
            costs = j.final_costs
            if j.num == c.reference_num:
                row = ["reference", "", "", "", "", "", ""]
            elif call is not None:
                row = [call.call, call.delta, call.ci_low, call.ci_high, call.confidence,
                       call.p_value, call.p_holm]  # fmt: skip
            else:
                row = ["", "", "", "", "", "", ""]
            w.writerow([j.num, labels[j.num], *row, *(costs.get(k, "") for k in cost_keys),
                        j.error or c.skipped.get(j.num, "")])  # fmt: skip
    return path


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
        costs = j.final_costs
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
