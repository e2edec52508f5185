"""Command-line overrides as MLflow params (plain values, parsed by Hydra's own parser) and, in a
``--multirun`` sweep, the swept values in run names, so the jobs' runs are told apart.

>>> override_params([r"tracking.uri=http\\://127.0.0.1\\:55000", "models=[a,b]", "+x.y=1", "~z"])
{'override.tracking.uri': 'http://127.0.0.1:55000', 'override.models': ['a', 'b'], 'override.x.y': 1}
>>> run_name("demo: a vs b", ["models.b.dimensions=128", "seed=1"], swept={"models.b.dimensions"})
'demo: a vs b [models.b.dimensions=128]'
>>> version_run_name("b", ["models.b.dimensions=128", "models.a.batch_size=8", "k=10"],
...                  swept={"models.b.dimensions", "models.a.batch_size", "k"})
'b [dimensions=128, k=10]'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

log = logging.getLogger(__name__)


def _parse(overrides: Iterable[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    out = []
    for text in overrides:
        try:
            out.extend(parser.parse_overrides([text]))
        except Exception:  # Hydra accepted it already; a parse failure here is not fatal
            log.debug("cannot parse override %r", text)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def override_params(overrides: Iterable[str]) -> dict[str, Any]:
    """``override.<key>`` -> plain value for every value override (deletions are left out)."""
    params: dict[str, Any] = {}
    for o in _parse(overrides):
        if o.is_delete() or o.is_sweep_override():
            continue
        params[f"override.{o.key_or_group}"] = _plain(o.value())
    return params


def swept_keys(sweep_dir: str | Path | None = None) -> set[str]:
    """Keys swept by the running ``--multirun`` (empty outside a sweep)."""
    if sweep_dir is None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return set()
        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return set()
        sweep_dir = hc.sweep.dir
    path = Path(sweep_dir) / "multirun.yaml"
    try:
        task = OmegaConf.load(path).hydra.overrides.task
    except Exception:  # launchers that write no multirun.yaml: name runs without overrides
        return set()
    return {o.key_or_group for o in _parse(task) if o.is_sweep_override()}


def run_name(base: str, overrides: Iterable[str], swept: set[str] | None = None) -> str:
    """``base``, plus ``[key=value, ...]`` of the swept overrides (plain values) in a sweep."""
    shown = [f"{k}={v}" for k, v in _swept(overrides, swept)]
    return f"{base} [{', '.join(shown)}]" if shown else base


def _swept(overrides: Iterable[str] | None, swept: set[str] | None) -> list[tuple[str, str]]:
    """``(key, shown value)`` of the swept value overrides (``None``: the running Hydra job's)."""
    swept = swept_keys() if swept is None else swept
    if not swept:
        return []
    if overrides is None:
        from hydra.core.hydra_config import HydraConfig

        overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    return [
        (o.key_or_group, _show(o.value()))
        for o in _parse(overrides)
        if o.key_or_group in swept and not o.is_delete() and not o.is_sweep_override()
    ]


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


def version_run_name(
    version: str, overrides: Iterable[str] | None = None, swept: set[str] | None = None
) -> str:
    """The model version, plus ``[key=value, ...]`` of the swept overrides that apply to it (its
    own ``models.<version>.`` keys unprefixed, keys outside ``models``); ``overrides`` default to
    the running Hydra job's."""
    own = f"models.{version}."
    shown = [
        f"{k.removeprefix(own)}={v}"
        for k, v in _swept(overrides, swept)
        if k.startswith(own) or not (k == "models" or k.startswith("models."))
    ]
    return f"{version} [{', '.join(shown)}]" if shown else version
