"""``--multirun`` sweeps: the summary and exit code (:mod:`evalkit.sweep.summary`), and the jobs
Hydra's Ray launcher runs elsewhere: their paths (:mod:`evalkit.sweep.ray_jobs`) and output
files (:mod:`evalkit.sweep.job_output`).

The summary's names are importable from here: configs name the Hydra callback
``evalkit.sweep.SweepSummary`` (``conf/config.yaml``).
"""

from evalkit.sweep.summary import (
    JOB_FILE,
    SUMMARY_FILE,
    JobOutcome,
    SweepSummary,
    outcome_of,
    read_jobs,
    summary_table,
    sweep_exit_code,
    write_job,
)

__all__ = [
    "JOB_FILE",
    "SUMMARY_FILE",
    "JobOutcome",
    "SweepSummary",
    "outcome_of",
    "read_jobs",
    "summary_table",
    "sweep_exit_code",
    "write_job",
]
