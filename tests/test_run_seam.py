"""The run seam's shape (issue 17): tracking is an observer, one Engine interface, no config below
the run, no import circles."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from evalkit.errors import DataError
from evalkit.run.evaluation import run_evaluation
from evalkit.run.observer import RunObserver

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "evalkit"
#: The command layer and the two packages allowed to read the composed config itself.
CONFIG_READERS = ("evalkit/run/", "evalkit/tasks/", "evalkit/cli.py", "evalkit/usage.py")
#: Hydra callbacks: Hydra hands them the config (their signature is Hydra's).
HYDRA_CALLBACKS = ("evalkit/sweep", "evalkit/engine/job_output.py")


class JsonLines(RunObserver):
    """A second observer, written outside ``run/``: every hook as one JSON line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _write(self, event: str, **fields) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, **fields}, default=str) + "\n")

    def run_started(self, started):
        self._write("run_started", versions=list(started.versions), baseline=started.baseline)

    def version_done(self, done):
        self._write(
            "version_done", version=done.result.name, role=done.role, files=sorted(done.files)
        )

    def run_metrics(self, metrics, params=None):
        self._write("run_metrics", metrics=sorted(metrics))

    def artifact_written(self, path):
        self._write("artifact_written", name=Path(path).name)

    def verdict_made(self, made):
        self._write(
            "verdict_made", status=made.verdict.status.value, files=[p.name for p in made.files]
        )

    def run_ended(self, status, reason=""):
        self._write("run_ended", status=status)


def _adi(tmp_path, shared_data, shared_cache, *extra):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "dataset=beir",
                f"dataset.path={shared_data / 'adi'}",
                f"cache.dir={shared_cache}",
                f"output_dir={tmp_path / 'out'}",
                "tracking=none",
                "progress=false",
                *extra,
            ],
        )


def test_a_second_observer_sees_the_run_without_mlflow(tmp_path, shared_data, shared_cache):
    cfg = _adi(tmp_path, shared_data, shared_cache, "latency.probe=0")
    log = tmp_path / "events.jsonl"
    evaluation = run_evaluation(cfg, observers=[JsonLines(log)])
    events = [json.loads(line) for line in log.read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "run_started" and names[-1] == "run_ended"
    assert events[-1]["status"] == "FINISHED"
    assert [e["version"] for e in events if e["event"] == "version_done"] == ["use_m3", "e5_small"]
    assert [e["role"] for e in events if e["event"] == "version_done"] == ["baseline", "candidate"]
    made = next(e for e in events if e["event"] == "verdict_made")
    assert made["status"] == evaluation.comparison.status.value
    assert made["files"] == ["report.md", "report.html", "verdict.json"]
    assert {"event": "run_metrics", "metrics": ["reindex_seconds"]} in events
    if evaluation.worklist is not None:
        assert {"event": "artifact_written", "name": "judging_worklist.csv"} in events
    assert evaluation.parent_run_id is None  # no MLflow observer: nothing tracked


def test_a_failing_run_ends_its_observers_failed(tmp_path, shared_data, shared_cache):
    cfg = _adi(
        tmp_path, shared_data, shared_cache,
        "models=[use_m3,precomputed]",  # the candidate's vector files are missing
        f"models.precomputed.catalog={tmp_path / 'missing.npy'}",
        f"models.precomputed.queries={tmp_path / 'missing.npy'}",
    )  # fmt: skip
    log = tmp_path / "events.jsonl"
    with pytest.raises(DataError, match="missing.npy"):
        run_evaluation(cfg, observers=[JsonLines(log)])
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events[0]["event"] == "run_started"
    assert events[-1] == {"event": "run_ended", "status": "FAILED"}


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8")


def test_nothing_below_run_and_tasks_names_the_config():
    offenders = [
        rel
        for rel, text in _sources()
        if "DictConfig" in text and not rel.startswith(CONFIG_READERS + HYDRA_CALLBACKS)
    ]
    assert offenders == []


def test_no_engine_branches_and_no_sniffing_of_versions():
    offenders = []
    for rel, text in _sources():
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Compare)
                and isinstance(node.left, ast.Name)
                and node.left.id == "engine"
                and any(isinstance(c, ast.Constant) and c.value is None for c in node.comparators)
            ):
                offenders.append(f"{rel}:{node.lineno} engine compared with None")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("hasattr", "getattr")
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in ("version", "v", "model")
            ):
                offenders.append(f"{rel}:{node.lineno} {node.func.id}({node.args[0].id}, ...)")
    assert offenders == []


def _import_graph() -> dict[str, set[str]]:
    """Module -> modules it imports (every import: top level, lazy, TYPE_CHECKING)."""
    mods: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            for t in targets:
                hit = resolve(t)
                if hit and hit != mod:
                    graph[mod].add(hit)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_import_graph_has_no_circles():
    graph = _import_graph()
    assert "evalkit.pairs" in graph and graph["evalkit.run.evaluation"]
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
