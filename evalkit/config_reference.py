"""The configuration reference as Markdown, generated from the schema
(:mod:`evalkit.config_schema`) and the target groups (:mod:`evalkit.config_targets`): every key's
type, default (the composed default configuration's, else the record's), allowed values and help.

>>> print(reference_markdown(defaults={}).splitlines()[0])
# Configuration reference
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Iterator, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from evalkit.checks.config import ChecksConfig
from evalkit.clicks.click_settings import ClickSettings
from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.gate_config import GateConfig
from evalkit.config_schema import bounds, settings_of, type_words, without_none
from evalkit.config_targets import targets_markdown
from evalkit.embed.cache import CacheSettings
from evalkit.embed.latency_probe import ProbeSettings
from evalkit.embed.latency_store import ReuseSettings
from evalkit.online.online_settings import OnlineSettings
from evalkit.run.run_settings import (
    BaselineRun,
    DatasetKeys,
    ReindexSettings,
    Runs,
    Sweep,
    TopLevel,
    TrackingSettings,
    Vectors,
)

#: ``{section: the records its keys are read into}``; ``""`` is the top level of config.yaml.
GROUPS: dict[str, tuple[type, ...]] = {
    "": (TopLevel,),
    "dataset": (DatasetKeys,),
    "cache": (CacheSettings,),
    "latency": (ProbeSettings, ReuseSettings),
    "compare": (CompareSettings, ReindexSettings, BaselineRun),
    "gates": (GateConfig,),
    "checks": (ChecksConfig,),
    "clicks": (ClickSettings,),
    "online": (OnlineSettings,),
    "tracking": (TrackingSettings,),
    "runs": (Runs,),
    "vectors": (Vectors,),
    "sweep": (Sweep,),
}


@dataclasses.dataclass(frozen=True)
class KeyDoc:
    key: str
    type: str
    default: Any
    allowed: str
    help: str
    mapping: bool = False


def key_docs(prefix: str, kind: type) -> Iterator[KeyDoc]:
    """Every key of record ``kind`` under ``prefix``, nested records flattened."""
    hints = typing.get_type_hints(kind)
    for name, f in settings_of(kind).items():
        key = f"{prefix}.{name}".lstrip(".")
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from key_docs(key, hint)
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        choices = f.metadata.get("choices")
        allowed = " | ".join(str(_shown(c)) for c in choices) if choices else bounds(f)
        mapping = typing.get_origin(hint) in (dict, Mapping)
        yield KeyDoc(key, type_name(hint), default, allowed, f.metadata["help"], mapping)


def all_key_docs() -> list[KeyDoc]:
    return [
        doc for group, kinds in GROUPS.items() for kind in kinds for doc in key_docs(group, kind)
    ]


def schema_keys() -> set[str]:
    return {doc.key for doc in all_key_docs()}


def default_config(conf_dir: Path | None = None) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from evalkit.usage import CONF_DIR

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir or CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=["output_dir=outputs"])
    finally:
        GlobalHydra.instance().clear()
    return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def reference_markdown(defaults: Mapping[str, Any] | None = None) -> str:
    """The reference page (``defaults`` None: :func:`default_config`)."""
    defaults = default_config() if defaults is None else defaults
    lines = ["# Configuration reference", ""]
    for group, kinds in GROUPS.items():
        lines += [f"## `{group or 'config.yaml'}`", ""]
        lines += ["| key | type | default | allowed | help |", "|---|---|---|---|---|"]
        for kind in kinds:
            for doc in key_docs(group, kind):
                default = _lookup(defaults, doc.key, doc.default)
                cells = (f"`{doc.key}`", doc.type, f"`{_yaml(default)}`", doc.allowed, doc.help)
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    lines += targets_markdown()
    return "\n".join(lines)


def _lookup(cfg: Mapping[str, Any], key: str, fallback: Any) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return fallback
        node = node[part]
    return node


def _shown(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_shown(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _shown(v) for k, v in value.items()}
    return value


def _yaml(value: Any) -> str:
    value = _shown(value)
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(value).replace('"', "") if not isinstance(value, str) else value


def type_name(hint: Any) -> str:
    """A field type in the reference's words.

    >>> type_name(tuple[float, ...] | None), type_name(int)
    ('list of numbers or null', 'integer')
    """
    hint, optional = without_none(hint)
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        text = f"list of {type_words(args[0], plural=True)}"
        text += "" if args[-1] is Ellipsis else f" ({len(args)})"
    elif origin in (dict, Mapping) or hint in (dict, Mapping):
        text = "mapping"
    elif dataclasses.is_dataclass(hint):
        text = "section"
    elif isinstance(hint, type) and issubclass(hint, Enum):
        text = " | ".join(str(m.value) for m in hint)
    else:
        text = type_words(hint).removeprefix("an ").removeprefix("a ")
    return f"{text} or null" if optional else text


if __name__ == "__main__":
    print(reference_markdown())
