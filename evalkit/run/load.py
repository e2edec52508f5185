"""The run's inputs, checked before anything is embedded: the model versions and the data."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from evalkit.data.case import case_mismatch_warning, lowercase
from evalkit.data.digest import fingerprint_data
from evalkit.data.extra import merge_extra_judgments
from evalkit.data.schema import EvalData
from evalkit.embed.model_version import ModelVersion
from evalkit.errors import ConfigError
from evalkit.instantiate import build
from evalkit.metrics.ir import check_scorable
from evalkit.run.run_settings import split_dataset_config

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.clicks.stage import ClickStage

log = logging.getLogger(__name__)


def load_versions(cfg: DictConfig) -> list[ModelVersion]:
    """The selected model versions (``models=[...]``), the baseline first."""
    if not cfg.models:
        raise ConfigError("no model version selected: use e.g. models=[use_m3,e5_small]")
    versions = [build(cfg.models[name], f"model version {name!r}") for name in cfg.models]
    for name, v in zip(cfg.models, versions):
        if v.name != name:
            raise ConfigError(f"conf/models/{name}.yaml names its version {v.name!r}; use {name!r}")
    return versions


def load_data(cfg: DictConfig, clicks: dict[str, Any] | None) -> tuple[EvalData, ClickStage | None]:
    """The dataset, its click log and extra judgments, checked to be scorable."""
    dataset_cfg, extra_judgments = split_dataset_config(cfg.dataset)
    data: EvalData = build(dataset_cfg, "dataset")
    data = lowercase(data, cfg.dataset.get("lowercase"))  # dataset.lowercase, any loader
    data, click_stage = with_clicks(data, clicks)
    data = merge_extra_judgments(data, extra_judgments)  # dataset.extra_judgments, any loader
    if data.judgments is None or not data.judgments.qrels:
        raise ConfigError(
            f"dataset {data.name!r} has no judgments: give human judgments or a click log "
            "to derive them from (clicks=log)"
        )
    check_scorable(data.judgments.qrels, data.queries.ids, data.judgments.source)
    versions = [str(name) for name in cfg.get("models") or ()]
    case = case_mismatch_warning(data.queries.texts, data.embedded_texts(), versions=versions)
    if case:
        log.warning("dataset %r (queries %s): %s", data.name, data.queries.source or "-", case)
    return data, click_stage


def with_clicks(data: EvalData, clicks_cfg: Any) -> tuple[EvalData, ClickStage | None]:
    """Attach the configured click log: its new queries, its judgments when used, its digest in
    the fingerprint (else a log the dataset brought itself is kept)."""
    if clicks_cfg is None or clicks_cfg.get("source", "none") == "none":
        return data, None
    from evalkit.clicks.stage import load_clicks  # the click stage only with a click log

    stage = load_clicks(clicks_cfg, data)
    if stage is None:
        return data, None
    queries, n = data.queries, len(stage.new_queries)
    if n:
        queries = replace(
            queries,
            ids=[*queries.ids, *stage.new_queries],
            texts=[*queries.texts, *stage.new_queries.values()],
            language=None if queries.language is None else [*queries.language, *[""] * n],
            frequency=None if queries.frequency is None else [*queries.frequency, *[0.0] * n],
            attributes={k: [*v, *[""] * n] for k, v in queries.attributes.items()},
        )
    judgments = stage.judgments if stage.judgments is not None else data.judgments
    fingerprint = fingerprint_data(
        data.catalog,
        queries,
        judgments,
        data.text_field,
        clicks=stage.log.digest(),
        known={"catalog": data.fingerprint.get("catalog", "")},
        title_separator=data.title_separator,
    )
    data = replace(
        data, queries=queries, judgments=judgments, clicks=stage.log, fingerprint=fingerprint
    )
    return data, stage
