"""``--multirun`` sweeps: the summary and exit code, the configurations compared, the jobs' paths
and output files.  Configs name the Hydra callback ``evalkit.sweep.SweepSummary``.
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
