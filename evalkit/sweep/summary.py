"""The end of a ``--multirun`` sweep: one summary table and the worst job's exit code.

:class:`SweepSummary` (a Hydra callback) writes each job's :class:`JobOutcome` to
``<job dir>/sweep_job.json`` in the job's own process and, when the sweep ends, prints one table,
writes ``<sweep dir>/sweep_summary.json`` and exits with the worst outcome (:func:`sweep_exit_code`).

>>> jobs = [JobOutcome(0, ["k=10"], 0, "PASS", "ndcg@10", {"a": 0.5, "b": 0.51}),
...         JobOutcome(1, ["k=5"], 4, "INCONCLUSIVE")]
>>> sweep_exit_code(jobs), sweep_exit_code(jobs + [JobOutcome(2, [], 3, "BLOCK")])
(4, 3)
>>> sweep_exit_code(jobs + [JobOutcome(3, ["k=1"], 1, "ERROR", error="bad k")])
1
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.markup import escape
from rich.table import Table

from evalkit.sweep.jobs import JobOutcome, plain_override, swept_overrides

log = logging.getLogger(__name__)

JOB_FILE = "sweep_job.json"
SUMMARY_FILE = "sweep_summary.json"
EXIT_OK, EXIT_ERROR, EXIT_BLOCK, EXIT_INCONCLUSIVE = 0, 1, 3, 4


def sweep_exit_code(jobs: list[JobOutcome]) -> int:
    """The worst outcome: 3 BLOCK, then a failed job's code (1 error, 2 usage, 130 / 143
    interrupted), then 4 INCONCLUSIVE, then 0 (PASS / WARN)."""
    codes = {j.exit_code for j in jobs}
    if EXIT_BLOCK in codes:
        return EXIT_BLOCK
    failed = sorted(codes - {EXIT_OK, EXIT_INCONCLUSIVE})
    if failed:
        return EXIT_ERROR if EXIT_ERROR in failed else failed[0]
    return EXIT_INCONCLUSIVE if EXIT_INCONCLUSIVE in codes else EXIT_OK


def summary_table(jobs: list[JobOutcome]) -> Table:
    """One row per job: number, overrides, primary metric per version, verdict (or error).

    >>> from rich.console import Console
    >>> c = Console(width=120, record=True, file=open(__import__("os").devnull, "w"))
    >>> c.print(summary_table([JobOutcome(0, ["models=[openai]"], 3, "BLOCK", "ndcg@10", {"a": 0.5})]))
    >>> text = c.export_text()
    >>> "a: 0.5000" in text and "BLOCK" in text and "models=[openai]" in text
    True
    """
    metric = next((j.primary_metric for j in jobs if j.primary_metric), "primary metric")
    table = Table(title=f"Sweep: {len(jobs)} jobs, exit code {sweep_exit_code(jobs)}")
    for col in ("job", "overrides", metric + " per version", "verdict", "exit"):
        table.add_column(col, justify="right" if col in ("job", "exit") else "left")
    for j, overrides in zip(jobs, swept_overrides(jobs)):
        values = ", ".join(f"{v}: {x:.4f}" for v, x in j.metrics.items()) or "-"
        verdict = j.verdict if not j.error else f"{j.verdict}: {j.error}"
        cells = (" ".join(overrides), values, verdict)  # `models=[openai]` is not rich markup
        table.add_row(str(j.num), *(escape(c) for c in cells), str(j.exit_code))
    return table


def write_job(path: Path, outcome: JobOutcome) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(outcome), indent=1), encoding="utf-8")
    return path


def read_jobs(sweep_dir: Path, since: float = 0.0) -> list[JobOutcome]:
    """The job files under ``sweep_dir`` written after ``since`` (epoch s), one per job number."""
    found: dict[int, tuple[float, JobOutcome]] = {}
    for f in sweep_dir.rglob(JOB_FILE):
        mtime = f.stat().st_mtime
        if mtime < since:
            continue
        job = JobOutcome.from_dict(json.loads(f.read_text(encoding="utf-8")))
        if job.num not in found or found[job.num][0] < mtime:
            found[job.num] = (mtime, job)
    return [job for _, (_, job) in sorted(found.items())]


def outcome_of(job_return: JobReturn, num: int) -> JobOutcome:
    """A job's outcome from what its task function returned (or raised)."""
    overrides = list(job_return.overrides or [])
    if job_return.status != JobStatus.COMPLETED:
        try:
            _ = job_return.return_value  # re-raises the job's exception
            err: Any = "the job did not complete"
        except Exception as exc:
            err = exc
        return JobOutcome(num, overrides, EXIT_ERROR, "ERROR", error=_one_line(err))
    value = job_return.return_value
    if not isinstance(value, dict):
        code = int(value) if isinstance(value, int) else EXIT_OK
        return JobOutcome(num, overrides, code)
    return JobOutcome.from_dict({**value, "num": num, "overrides": overrides})


def _one_line(err: Any) -> str:
    text = f"{type(err).__name__}: {err}" if isinstance(err, BaseException) else str(err)
    return " ".join(text.split())[:300]


class SweepSummary(Callback):
    """Hydra callback: collect each job's outcome, print the table, exit with the worst code."""

    def __init__(self, exit: bool = True) -> None:
        self.exit = exit
        self.started = 0.0
        self.run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from evalkit.sweep.sweep_run import start_sweep_run

        self.started = time.time() - 1.0  # file mtimes may be rounded to the second
        if config.get("task", "evaluate") == "evaluate":
            self.run_id = start_sweep_run(config)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        out = Path(config.hydra.runtime.output_dir)
        outcome = outcome_of(job_return, int(config.hydra.job.num))
        write_job(out / JOB_FILE, outcome)
        # the job's tables are in its stdout.txt (job_output.py): one line here
        line = f"job {outcome.num} ({' '.join(plain_override(o) for o in outcome.overrides)}): "
        line += outcome.verdict if not outcome.error else f"ERROR: {outcome.error}"
        print(f"{line} -> {out / 'stdout.txt'}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from evalkit.terminal import make_console

        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = read_jobs(sweep_dir, self.started)
        if not jobs:
            log.warning("no sweep job results found under %s", sweep_dir)
            return
        code = sweep_exit_code(jobs)
        console = make_console()
        console.print(summary_table(jobs))
        plain = [{**asdict(j), "overrides": [plain_override(o) for o in j.overrides]} for j in jobs]
        summary = json.dumps({"exit_code": code, "jobs": plain}, indent=1)
        (sweep_dir / SUMMARY_FILE).write_text(summary, encoding="utf-8")
        self._compare(config, sweep_dir, jobs, console)
        if code and self.exit:
            sys.stdout.flush()
            raise SystemExit(code)

    def _compare(
        self, config: DictConfig, sweep_dir: Path, jobs: list[JobOutcome], console
    ) -> None:
        from evalkit.sweep.sweep_run import compare_sweep, finish_sweep_run

        settings = config.get("sweep") or {}
        gate = (config.get("gates") or {}).get("primary_metric") or {}
        comparison = None
        if len(jobs) > 1 and config.get("task", "evaluate") == "evaluate":
            try:
                comparison = compare_sweep(
                    jobs,
                    reference=str(settings.get("reference", "auto")),
                    cost=str(settings.get("cost", "index_bytes")),
                    margin=float(gate.get("margin", 0.01)),
                    alpha=float(gate.get("alpha", 0.05)),
                )
            except Exception as exc:  # the jobs' own results stand; say why there is no pick
                log.warning("the sweep's configurations could not be compared: %s", exc)
        if comparison is not None and comparison.pick is not None:
            console.print(
                f"Sweep pick ({comparison.metric}, reference {escape(comparison.reference)}): "
                f"{escape(comparison.pick.text)}",
                highlight=False,
                soft_wrap=True,
            )
        files = finish_sweep_run(self.run_id, sweep_dir, comparison, jobs)
        if files:
            console.print(f"sweep report: {sweep_dir / 'sweep_report.html'}", highlight=False)
