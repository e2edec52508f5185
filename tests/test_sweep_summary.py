"""The sweep summary's pure parts: worst exit code, job files, outcomes of failed jobs."""

from __future__ import annotations

import os
import time

from hydra.core.utils import JobReturn, JobStatus

from evalkit.sweep import JOB_FILE, JobOutcome, outcome_of, read_jobs, sweep_exit_code, write_job


def test_worst_code_is_block_then_error_then_ok():
    ok, warn = JobOutcome(0, [], 0, "PASS"), JobOutcome(1, [], 0, "WARN")
    err, block = JobOutcome(2, [], 1, "ERROR", error="x"), JobOutcome(3, [], 3, "BLOCK")
    assert sweep_exit_code([ok, warn]) == 0
    assert sweep_exit_code([ok, err]) == 1
    assert sweep_exit_code([err, block, ok]) == 3
    assert sweep_exit_code([]) == 0


def test_read_jobs_keeps_this_sweeps_latest_file_per_job(tmp_path):
    old = write_job(tmp_path / "0" / JOB_FILE, JobOutcome(0, ["k=1"], 3, "BLOCK"))
    os.utime(old, (time.time() - 3600, time.time() - 3600))  # an earlier sweep in the same dir
    started = time.time() - 60
    write_job(tmp_path / "1" / JOB_FILE, JobOutcome(1, ["k=2"], 0, "PASS", "ndcg@10", {"a": 0.5}))
    write_job(tmp_path / "x" / "2" / JOB_FILE, JobOutcome(2, ["k=3"], 1, "ERROR", error="bad"))
    jobs = read_jobs(tmp_path, since=started)
    assert [j.num for j in jobs] == [1, 2] and jobs[0].metrics == {"a": 0.5}
    assert sweep_exit_code(jobs) == 1


def test_outcome_of_a_failed_and_a_completed_job():
    failed = JobReturn(overrides=["k=5"], status=JobStatus.FAILED)
    failed.return_value = ValueError("boom\nsecond line")
    out = outcome_of(failed, 4)
    assert (out.num, out.exit_code, out.verdict) == (4, 1, "ERROR")
    assert out.error == "ValueError: boom second line" and out.overrides == ["k=5"]
    done = JobReturn(overrides=["k=10"], status=JobStatus.COMPLETED)
    done.return_value = {"exit_code": 3, "verdict": "BLOCK", "metrics": {"a": 0.1}}
    assert outcome_of(done, 0) == JobOutcome(0, ["k=10"], 3, "BLOCK", metrics={"a": 0.1})
