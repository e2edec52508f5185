"""The run's settings: built once from the composed Hydra config, typed and frozen.

:meth:`RunSettings.from_config` is the one place that reads the ``DictConfig``; everything below
``evalkit/run/`` and ``evalkit/tasks/`` receives these records (or the plain sections they hold),
never the config itself.  Each section is validated here, so a malformed value fails before any
vector is embedded.

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.gate_config import GateConfig
from evalkit.data.extra import CONFIG_KEY
from evalkit.embed.cache import CacheSettings
from evalkit.embed.latency_probe import ProbeSettings
from evalkit.embed.latency_store import ReuseSettings
from evalkit.engine.spec import EngineSpec
from evalkit.errors import ConfigError
from evalkit.index.faiss_index import IndexSpec
from evalkit.instantiate import build
from evalkit.metrics.ir import check_metrics, check_primary_metric
from evalkit.redact import SECRET_KEY
from evalkit.track.timeout import CHECK_TIMEOUT_S, tracking_timeout


@dataclass(frozen=True)
class ReindexSettings:
    """``compare.reindex`` / ``reindex_queries`` / ``reindex_fraction``: the re-index analysis."""

    enabled: bool = True
    queries: int | None = 1000  # None: every query
    fraction: float = 0.5


@dataclass(frozen=True)
class TrackingSettings:
    """The ``tracking`` group (MLflow)."""

    enabled: bool = False
    uri: str | None = None
    experiment: str | None = None
    run_name: str | None = None
    timeout_s: float = CHECK_TIMEOUT_S  # an http(s) server's answer to the up-front check


@dataclass(frozen=True)
class RunSettings:
    """Everything a run reads of the config, once (see the module docstring)."""

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
        """Validate and read every section of the composed config."""
        metrics = check_metrics(list(cfg.metrics), int(cfg.k))
        check_primary_metric(str(cfg.primary_metric), metrics)
        compare = plain(cfg.get("compare"))
        latency = plain(cfg.get("latency"))
        gates = GateConfig.from_mapping(plain(cfg.get("gates")), primary_metric=cfg.primary_metric)
        tracking = plain(cfg.get("tracking"))
        queries = compare.get("reindex_queries", 1000)
        baseline = compare.get("baseline_run_id")
        return cls(
            output_dir=Path(str(cfg.output_dir)),
            k=int(cfg.k),
            seed=int(cfg.seed),
            progress=bool(cfg.get("progress", True)),
            metrics=tuple(metrics),
            primary_metric=str(cfg.primary_metric),
            cache=CacheSettings.from_mapping(plain(cfg.get("cache"))),
            index=build(cfg.index, "index"),
            engine=build(cfg.engine, "engine") if cfg.get("engine") else EngineSpec(),
            gates=gates,
            compare=CompareSettings.from_mapping(compare),
            probe=ProbeSettings.from_mapping(latency, seed=int(cfg.seed)),
            reuse=ReuseSettings.from_mapping(latency),
            reindex=ReindexSettings(
                enabled=bool(compare.get("reindex", True)),
                queries=None if queries is None else int(queries),
                fraction=float(compare.get("reindex_fraction", 0.5)),
            ),
            tracking=TrackingSettings(
                enabled=bool(tracking.get("enabled", False)),
                uri=tracking.get("uri"),
                experiment=tracking.get("experiment"),
                run_name=tracking.get("run_name") or None,
                timeout_s=tracking_timeout(tracking),
            ),
            baseline_run_id=str(baseline) if baseline else None,
            run_checks=bool(cfg.get("run_checks", False)),
            checks=plain(cfg.get("checks")) if cfg.get("checks") is not None else None,
            clicks=plain(cfg.get("clicks")) if cfg.get("clicks") is not None else None,
            model_configs={n: plain(cfg.models[n]) for n in (cfg.get("models") or {})},
            public=public_config(cfg),
        )


def plain(node: Any) -> dict[str, Any]:
    """A config section as a plain dict (resolved); None -> {}."""
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    if isinstance(node, Mapping):
        return dict(node)
    raise ConfigError(f"expected a config section (a mapping), got {node!r}")


def public_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data, secrets dropped (what is logged and dumped)."""
    return _drop_secrets(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))


def _drop_secrets(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_secrets(v) for k, v in node.items() if not SECRET_KEY.search(str(k))}
    if isinstance(node, list):
        return [_drop_secrets(v) for v in node]
    return node


#: Keys of the dataset section that evalkit reads itself, for every loader (the loaders never
#: see them): ``extra_judgments`` (:mod:`evalkit.data.extra`), ``lowercase``
#: (:func:`evalkit.data.case.lowercase`).
EVALKIT_DATASET_KEYS = (CONFIG_KEY, "lowercase")


def split_dataset_config(node: Any) -> tuple[Any, str | None]:
    """``(dataset config without evalkit's own keys, the extra_judgments value)``: the loaders
    never see :data:`EVALKIT_DATASET_KEYS`.

    The copy keeps its parent, so interpolations (``${..repo}``) resolve as before.
    """
    import copy

    from omegaconf import open_dict

    if not isinstance(node, DictConfig) or not any(k in node for k in EVALKIT_DATASET_KEYS):
        return node, None
    value = node.get(CONFIG_KEY)
    rest = copy.deepcopy(node)
    with open_dict(rest):
        for key in EVALKIT_DATASET_KEYS:
            rest.pop(key, None)
    return rest, (str(value) if value not in (None, "") else None)
