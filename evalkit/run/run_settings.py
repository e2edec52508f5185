"""The run's settings, typed and frozen: :meth:`RunSettings.from_config` is the one place that
reads the ``DictConfig``, each section checked against its schema before anything is embedded.

>>> from omegaconf import OmegaConf
>>> cfg = OmegaConf.create({"k": 10, "seed": 0, "progress": False, "output_dir": "out",
...     "metrics": ["ndcg@10"], "primary_metric": "ndcg@10",
...     "cache": {"dir": ".cache/evalkit", "enabled": False},
...     "index": {"_target_": "evalkit.index.faiss_index.IndexSpec", "kind": "flat"},
...     "models": {}, "gates": {}, "compare": {}, "tracking": {"enabled": False}})
>>> s = RunSettings.from_config(cfg)
>>> s.k, s.cache.root, s.gates.metric, s.engine.kind
(10, None, 'ndcg@10', 'local')
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.gate_config import GateConfig
from evalkit.config_schema import plain, read_section, read_split, setting, settings_of
from evalkit.data.extra import CONFIG_KEY
from evalkit.embed.cache import CacheSettings
from evalkit.embed.latency_probe import ProbeSettings
from evalkit.embed.latency_store import ReuseSettings
from evalkit.engine.spec import EngineSpec
from evalkit.index.faiss_index import IndexSpec
from evalkit.instantiate import build
from evalkit.metrics.ir import check_metrics, check_primary_metric
from evalkit.redact import SECRET_KEY
from evalkit.track.timeout import CHECK_TIMEOUT_S


@dataclass(frozen=True)
class ReindexSettings:
    """``compare.reindex`` / ``reindex_queries`` / ``reindex_fraction``: the re-index analysis."""

    enabled: bool = setting(True, key="reindex", help="analyse a rolling re-index (A and B mixed)")
    queries: int | None = setting(
        1000,
        key="reindex_queries",
        ge=1,
        help="queries the re-index states are scored on; null = all",
    )
    fraction: float = setting(
        0.5, key="reindex_fraction", gt=0, lt=1, help="the catalog share re-embedded by B"
    )


@dataclass(frozen=True)
class BaselineRun:
    """``compare.baseline_run_id``: the baseline version read back from MLflow."""

    run_id: str | None = setting(
        None, key="baseline_run_id", help="compare against a baseline run already in MLflow"
    )


@dataclass(frozen=True)
class TrackingSettings:
    """The ``tracking`` group (MLflow)."""

    enabled: bool = setting(False, help="log the evaluation to MLflow")
    uri: str | None = setting(None, help="the tracking store: sqlite:///..., http(s)://...")
    experiment: str | None = setting(None, help="the MLflow experiment")
    run_name: str | None = setting(None, help="the parent run's name; null = the versions")
    timeout_s: float = setting(
        CHECK_TIMEOUT_S, gt=0, lt=math.inf, help="seconds a server has to answer the first check"
    )


@dataclass(frozen=True)
class TopLevel:
    """The top-level keys of ``conf/config.yaml`` (the config groups have their own records)."""

    task: str = setting("evaluate", help="evaluate | check | vectors | runs | log | online")
    run_dir: str | None = setting(None, help="task=log: the evaluation's output directory")
    run_checks: bool = setting(False, help="also run the endpoint checks during task=evaluate")
    k: int = setting(100, ge=1, help="retrieval depth replayed for every query")
    metrics: tuple[str, ...] = setting(
        ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100"), help="ranx metrics scored"
    )
    primary_metric: str = setting("ndcg@10", help="the metric the verdict is about")
    numba_cache_dir: str | bool | None = setting(
        None, help="numba's compiled code; null = per user, false = numba's default"
    )
    output_dir: str = setting("outputs", help="where reports and per-run files are written")
    progress: bool = setting(True, help="progress bars (on a terminal)")
    verbose: bool = setting(False, help="the libraries' own chatter (Ray) on stderr")
    seed: int = setting(0, help="the run's seed (latency probe sample, simulations)")


@dataclass(frozen=True)
class Runs:
    """``runs``: ``task=runs``."""

    limit: int = setting(20, ge=1, help="task=runs: how many evaluations to list, newest first")


@dataclass(frozen=True)
class Vectors:
    """``vectors``: ``task=vectors``."""

    drop: str | None = setting(None, help="task=vectors: delete the spec folder starting so")


@dataclass(frozen=True)
class Sweep:
    """``sweep``: how a ``--multirun`` compares its configurations (:mod:`evalkit.sweep`)."""

    reference: str = setting("auto", help="auto | baseline | one job's override(s)")
    cost: str = setting(
        "index_bytes", choices=("index_bytes", "search_p95_ms"), help="what cheapest means"
    )


@dataclass(frozen=True)
class DatasetKeys:
    """The ``dataset`` keys evalkit reads itself for every loader (the loaders' own keys are
    their parameters: ``conf/dataset/*.yaml`` ``_target_``)."""

    extra_judgments: str | None = setting(
        None, help="graded judgments merged into the dataset's own (CSV / TSV / JSONL / Parquet)"
    )
    lowercase: str = setting(
        "none", choices=("none", "queries", "catalog", "both"), help="lower-case texts on load"
    )


@dataclass(frozen=True)
class RunSettings:
    """Everything a run reads of the config."""

    output_dir: Path
    k: int
    seed: int
    progress: bool
    metrics: tuple[str, ...]
    primary_metric: str
    cache: CacheSettings
    index: IndexSpec
    engine: EngineSpec
    gates: GateConfig
    compare: CompareSettings
    probe: ProbeSettings
    reuse: ReuseSettings
    reindex: ReindexSettings
    tracking: TrackingSettings
    baseline_run_id: str | None = None
    run_checks: bool = False
    #: plain sections read by their own layers
    checks: dict[str, Any] | None = None
    clicks: dict[str, Any] | None = None
    #: ``{version name: its config, plain}`` (engine=ray rebuilds the versions on workers)
    model_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the resolved config, secrets dropped: what is logged as config.yaml
    public: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> RunSettings:
        top = read_section(TopLevel, {k: cfg.get(k) for k in settings_of(TopLevel) if k in cfg}, "")
        metrics = check_metrics(list(top.metrics), top.k)
        check_primary_metric(top.primary_metric, metrics)
        compare, reindex, baseline = read_split(
            cfg.get("compare"), "compare", CompareSettings, ReindexSettings, BaselineRun
        )
        probe, reuse = read_split(cfg.get("latency"), "latency", ProbeSettings, ReuseSettings)
        return cls(
            output_dir=Path(top.output_dir),
            k=top.k,
            seed=top.seed,
            progress=top.progress,
            metrics=tuple(metrics),
            primary_metric=top.primary_metric,
            cache=CacheSettings.from_mapping(cfg.get("cache")),
            index=build(cfg.index, "index"),
            engine=build(cfg.engine, "engine") if cfg.get("engine") else EngineSpec(),
            gates=GateConfig.from_mapping(cfg.get("gates"), primary_metric=top.primary_metric),
            compare=compare,
            probe=replace(probe, seed=top.seed),
            reuse=reuse,
            reindex=reindex,
            tracking=read_section(TrackingSettings, cfg.get("tracking"), "tracking"),
            baseline_run_id=baseline.run_id or None,
            run_checks=top.run_checks,
            checks=_section(cfg, "checks"),
            clicks=_section(cfg, "clicks"),
            model_configs={
                n: plain(cfg.models[n], f"models.{n}") for n in (cfg.get("models") or {})
            },
            public=_drop_secrets(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)),
        )


def _section(cfg: DictConfig, name: str) -> dict[str, Any] | None:
    return plain(cfg.get(name), name) if cfg.get(name) is not None else None


def _drop_secrets(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_secrets(v) for k, v in node.items() if not SECRET_KEY.search(str(k))}
    if isinstance(node, list):
        return [_drop_secrets(v) for v in node]
    return node


EVALKIT_DATASET_KEYS = (CONFIG_KEY, "lowercase")


def split_dataset_config(node: Any) -> tuple[Any, str | None]:
    """``(dataset config without :data:`EVALKIT_DATASET_KEYS`, the extra_judgments value)``; the
    copy keeps its parent, so interpolations (``${..repo}``) resolve as before."""
    if not isinstance(node, DictConfig) or not any(k in node for k in EVALKIT_DATASET_KEYS):
        return node, None
    value = node.get(CONFIG_KEY)
    rest = copy.deepcopy(node)
    with open_dict(rest):
        for key in EVALKIT_DATASET_KEYS:
            rest.pop(key, None)
    return rest, (str(value) if value not in (None, "") else None)
