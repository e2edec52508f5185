"""What a run tells its observers: tracking is one of them, never wired into the run itself.

The run (:mod:`evalkit.run.evaluation`) calls these hooks, in this order::

    run_started(RunStarted)          once, after the data is loaded
    version_done(VersionDone)        per evaluated version (its files are written)
    version_metrics(name, m, p)      later measurements of a version (latency probe, clicks)
    run_metrics(m, p)                measurements of the evaluation (re-index time, click deltas)
    artifact_written(path)           a file of the evaluation (click scatter, worklist)
    verdict_made(VerdictMade)        once, when versions were compared
    run_ended(status, reason)        FINISHED, FAILED or KILLED (and why); always once started

:class:`~evalkit.run.mlflow_observer.MlflowObserver` implements them with MLflow.  Another
observer subclasses :class:`RunObserver` (no-op defaults) and is passed to
:func:`~evalkit.run.evaluation.run_evaluation` as ``observers=[...]``.

>>> class Count(RunObserver):
...     def __init__(self): self.done = []
...     def version_done(self, done): self.done.append(done.result.name)
>>> Count().run_ended("FINISHED") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.compare.verdict import Verdict
    from evalkit.data.schema import EvalData
    from evalkit.results import VersionResult


@dataclass(frozen=True)
class RunStarted:
    """The evaluation about to run: its data, versions and the parameters that define it."""

    data: EvalData
    versions: tuple[str, ...]  # evaluated here, baseline first unless a logged one is
    baseline: str
    title: str  # "<dataset>: A vs B" (the default parent run name, before overrides)
    params: Mapping[str, Any]
    tags: Mapping[str, str]
    config_file: Path  # config.yaml in the run folder
    overrides: Sequence[str] = ()
    #: version -> run id of a logged baseline
    logged: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionDone:
    """One version evaluated: its result, run statistics and the files written for it."""

    result: VersionResult
    stats: Mapping[str, float]
    files: Mapping[str, Path]
    role: str  # "baseline" or "candidate"
    params: Mapping[str, Any]  # the run's parameters that also describe this version
    checks: Sequence[Any] | None = None  # endpoint checks (run_checks=true)


@dataclass(frozen=True)
class VerdictMade:
    """The comparison's verdict and the report files written for it."""

    verdict: Verdict
    files: Sequence[Path]


class RunObserver:
    """No-op hooks; an observer overrides the ones it needs (see the module docstring)."""

    def run_started(self, started: RunStarted) -> None: ...

    def version_done(self, done: VersionDone) -> None: ...

    def version_metrics(
        self, name: str, metrics: Mapping[str, float], params: Mapping[str, Any] | None = None
    ) -> None: ...

    def run_metrics(
        self, metrics: Mapping[str, float], params: Mapping[str, Any] | None = None
    ) -> None: ...

    def artifact_written(self, path: Path) -> None: ...

    def verdict_made(self, made: VerdictMade) -> None: ...

    def run_ended(self, status: str, reason: str = "") -> None: ...


class Observers(RunObserver):
    """Several observers as one: each hook is called on every observer, in order."""

    def __init__(self, observers: Sequence[RunObserver]) -> None:
        self.observers = list(observers)


def _fan_out(hook: str) -> Any:
    def call(self: Observers, *args: Any, **kwargs: Any) -> None:
        for o in self.observers:
            getattr(o, hook)(*args, **kwargs)

    call.__name__ = hook
    return call


for _hook in [n for n in vars(RunObserver) if not n.startswith("_")]:
    setattr(Observers, _hook, _fan_out(_hook))
