"""One sweep job's outcome, as its task function returns it and ``sweep_job.json`` holds it, and
the overrides that tell the jobs apart.

>>> swept_overrides([JobOutcome(0, ["a=1", "b=2"], 0), JobOutcome(1, ["a=1", "b=3"], 0)])
[['b=2'], ['b=3']]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JobOutcome:
    """One sweep job: its number, overrides, exit code, verdict (``-``: nothing compared,
    ``ERROR``: failed, ``error`` says why) and primary metric per version."""

    num: int
    overrides: list[str]
    exit_code: int
    verdict: str = "-"
    primary_metric: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    versions: list[str] = field(default_factory=list)  # evaluated versions: A first, then B
    output_dir: str = ""  # the job's output folder (<version>/per_query.csv)
    run_id: str = ""  # the job's MLflow evaluation run
    child_runs: dict[str, str] = field(default_factory=dict)  # version -> its MLflow run
    costs: dict[str, dict[str, float]] = field(default_factory=dict)  # version -> statistics

    @property
    def final_costs(self) -> dict[str, float]:
        """The statistics of the last evaluated version (B), or none."""
        return self.costs.get(self.versions[-1], {}) if self.versions else {}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobOutcome:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def plain_override(text: str) -> str:
    """An override without Hydra's escaping of special characters in its value.

    >>> plain_override(r"models.openai.base_url=http\\://127.0.0.1\\:55000/v1")
    'models.openai.base_url=http://127.0.0.1:55000/v1'
    """
    return re.sub(r"\\(.)", r"\1", text)


def swept_overrides(jobs: list[JobOutcome]) -> list[list[str]]:
    """Each job's overrides whose value differs between jobs (all of them for a single job),
    without Hydra's escaping."""
    plain = [[plain_override(o) for o in j.overrides] for j in jobs]
    if len(jobs) < 2:
        return plain
    common = set.intersection(*(set(p) for p in plain))
    return [[o for o in p if o not in common] or p for p in plain]
